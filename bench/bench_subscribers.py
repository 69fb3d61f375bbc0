"""Benchmark the subscriber list against issue 3's targets. Run by hand, never in CI:

    python bench/bench_subscribers.py [--rows 1000000] [--export-rows 100000] [--repeat 3]

Generates, in a temp folder, a list of ROWS subscribers and a Mailchimp-style export ZIP of
EXPORT_ROWS members (subscribed, unsubscribed and cleaned files; half of them already on the
list), then runs each operation in its own process and prints wall time, CPU time and peak
memory (max RSS of that process). Targets (on a 2-core machine):

    loading for a send (iter_active)    <= 3x a bare csv.reader pass over the same file
    `subscribers add` on the list       < 2.5 s
    `subscribers count`                 < 3 s
    importing the export                < 10 s
    peak memory                         < 4x the file size
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["email", "name", "status", "tags", "created_at", "updated_at", "source"]
FIRST = ["Ada", "Grace", "Marek", "Amira", "Jon", "Sofía", "Kenji", "Pat", "Lena", "Noah", "Priya", "Zoë"]
LAST = ["Lovelace", "Hopper", "Haddad", "Olsen", "Ruiz", "Watanabe", "Morgan", "Fischer", "Brennan", "Nair"]
DOMAINS = ["example.com", "example.org", "gmail.com", "yahoo.co.uk", "proton.me", "fastmail.fm"]
STATUSES = ["active"] * 90 + ["unsubscribed"] * 6 + ["bounced"] * 3 + ["complained"]
TAGS = ["", "", "", "books", "film", "art;film", "founding;books"]
MAILCHIMP = ("Email Address,First Name,Last Name,Address,Phone Number,Birthday,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,"
             "CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,{extra}LEID,EUID,NOTES,TAGS")
EXTRA = {"subscribed": "LAST_CHANGED,", "unsubscribed": "UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_CAMPAIGN_ID,"
         "UNSUB_REASON,UNSUB_REASON_OTHER,", "cleaned": "CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,CLEAN_CAMPAIGN_ID,"}


def make_list(path: Path, rows: int) -> list[str]:
    """Write the list; return its addresses."""
    rng, emails = random.Random(1), []
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            when = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{i % 60:02d}:00Z"
            emails.append(f"{first.lower()}.{i}@{rng.choice(DOMAINS)}")
            writer.writerow([emails[-1], f"{first} {last}", rng.choice(STATUSES),
                             rng.choice(TAGS), when, when, rng.choice(["cli", "import:substack"])])
    return emails


def make_mailchimp_zip(path: Path, rows: int, on_list: list[str]) -> None:
    """Half the members are already on the list (the same people), half are new."""
    rng = random.Random(2)
    files: dict[str, list[tuple[str, int, str, str]]] = {"subscribed": [], "unsubscribed": [], "cleaned": []}
    existing = rng.sample(range(len(on_list)), min(rows // 2, len(on_list)))
    for i in range(rows):
        kind = rng.choices(list(files), weights=[90, 7, 3])[0]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        number = existing[i // 2] if i % 2 and i // 2 < len(existing) else len(on_list) + i
        email = on_list[number] if number < len(on_list) else f"{first.lower()}.{number}@{rng.choice(DOMAINS)}"
        files[kind].append((email, number, first, last))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for kind, members in files.items():
            lines = [MAILCHIMP.format(extra=EXTRA[kind])]
            for address, number, first, last in members:
                status_cols = {"subscribed": ['"2026-01-02 03:04:05"'],
                               "unsubscribed": ['"2026-06-01 12:00:00"', "June", "abc", "Other", ""],
                               "cleaned": ['"2026-07-01 12:00:00"', "July", "abd"]}[kind]
                lines.append(",".join([address, first, last, "", "", "", "2", '"2025-12-01 10:00:00"', "",
                                       '"2025-12-01 10:05:00"', "", "", "", "", "", "", "", "", *status_cols,
                                       str(number), f"{number:x}", "", '"""books"",""film"""']))
            archive.writestr(f"{kind}_members_export_bench.csv", "\r\n".join(lines) + "\r\n")


def measure(argv: list[str], cwd: Path) -> tuple[float, float, int]:
    """Run argv; return (wall seconds, CPU seconds, peak RSS bytes) of that process alone."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def best(argv: list[str], cwd: Path, repeat: int, prepare: Callable[[], object] | None = None
         ) -> tuple[float, float, int]:
    """The fastest wall and CPU time of `repeat` runs, and the largest peak memory."""
    runs = []
    for _ in range(repeat):
        if prepare is not None:
            prepare()
        runs.append(measure(argv, cwd))
    return _best(runs)


def _best(runs: list[tuple[float, float, int]]) -> tuple[float, float, int]:
    return min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs)


PY = sys.executable
BARE = "import csv,sys\nwith open(sys.argv[1],newline='',encoding='utf-8') as f:\n for row in csv.reader(f): pass"
SEND = ("import sys\nfrom pathlib import Path\nfrom newsletter.subscribers.store import iter_active\n"
        "for s in iter_active(Path(sys.argv[1])): pass")
LOAD = ("import sys\nfrom pathlib import Path\nfrom newsletter.subscribers.store import load_subscribers\n"
        "load_subscribers(Path(sys.argv[1]))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each operation; the best is shown")
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)  # internal: write the inputs there
    args = parser.parse_args()
    if args.generate:
        emails = make_list(args.generate / "pristine.csv", args.rows)
        make_mailchimp_zip(args.generate / "mailchimp.zip", args.export_rows, emails)
        (args.generate / "sample.txt").write_text(emails[args.rows // 2])
        return
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        lst, export, pristine = tmp / "subscribers.csv", tmp / "mailchimp.zip", tmp / "pristine.csv"
        started = time.perf_counter()
        # Generated in a child process: a parent holding a million strings would inflate every
        # child's peak RSS (the fork copies its pages before exec).
        subprocess.run([PY, __file__, "--rows", str(args.rows), "--export-rows", str(args.export_rows),
                        "--generate", str(tmp)], check=True)
        someone = (tmp / "sample.txt").read_text()
        size = pristine.stat().st_size
        print(f"generated {args.rows:,} rows ({size / 1e6:.1f} MB) and a {args.export_rows:,}-row Mailchimp ZIP "
              f"in {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.2f}; best of {args.repeat}")

        def fresh() -> None:
            shutil.copyfile(pristine, tmp / "copy.csv")
            os.replace(tmp / "copy.csv", lst)

        fresh()
        cli = [PY, "-m", "newsletter", "subscribers"]
        # The bare pass and the send's load run in turns, so that both meet the same machine.
        pairs = [(measure([PY, "-c", BARE, str(lst)], tmp), measure([PY, "-c", SEND, str(lst)], tmp))
                 for _ in range(args.repeat)]
        ratios = sorted(send[1] / bare[1] for bare, send in pairs)
        results = {
            "bare csv.reader pass": _best([bare for bare, _ in pairs]),
            "load for a send (iter_active)": _best([send for _, send in pairs]),
            "load_subscribers (all rows)": best([PY, "-c", LOAD, str(lst)], tmp, args.repeat),
            "subscribers add": best([*cli, "add", "new.person@example.com", "--subscribers", str(lst)], tmp,
                                    args.repeat, fresh),
            "subscribers count": best([*cli, "count", "--subscribers", str(lst)], tmp, args.repeat),
            "subscribers stats": best([*cli, "stats", "--subscribers", str(lst)], tmp, args.repeat),
            "subscribers unsubscribe": best([*cli, "unsubscribe", someone, "--subscribers", str(lst)],
                                            tmp, args.repeat, fresh),
            "import export into an empty list": best([*cli, "import", str(export), "--subscribers",
                                                      str(tmp / "empty.csv")], tmp, args.repeat,
                                                     lambda: (tmp / "empty.csv").unlink(missing_ok=True)),
            "import export into the big list": best([*cli, "import", str(export), "--subscribers", str(lst)], tmp,
                                                     args.repeat, fresh),
        }
        bare = results["bare csv.reader pass"]
        print(f"\n{'operation':<36}{'wall s':>8}{'cpu s':>8}{'peak MB':>9}{'x file':>8}  target")
        targets = {"load for a send (iter_active)": f"<= {3 * bare[0]:.2f} s (3x bare)", "subscribers add": "< 2.5 s",
                   "subscribers count": "< 3 s", "import export into an empty list": "< 10 s",
                   "import export into the big list": "< 10 s"}
        for name, (wall, cpu, rss) in results.items():
            print(f"{name:<36}{wall:>8.2f}{cpu:>8.2f}{rss / 1e6:>9.0f}{rss / size:>8.2f}  {targets.get(name, '')}")
        send = results["load for a send (iter_active)"]
        print(f"\nsend load / bare pass: best {send[0] / bare[0]:.2f}x wall, {send[1] / bare[1]:.2f}x cpu; "
              f"median of the paired runs {ratios[len(ratios) // 2]:.2f}x cpu (target <= 3x)")
        print(f"peak memory, worst: {max(r[2] for r in results.values()) / size:.2f}x the file (target < 4x)")


if __name__ == "__main__":
    main()
