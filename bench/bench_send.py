"""Benchmark `newsletter send` against local servers, and against what a peer would do.

    python bench/bench_send.py            (from the repository root; takes about a minute)

1. SendGrid: 100,000 subscribers to the SendGrid-speaking test server (tests/fakes/sendgrid.py,
   validating every body against SendGrid's schema). Reports the requests, the wall time and
   the peak memory of the `newsletter send` process. Then a bare loop that builds and posts 100
   requests of 1000 personalizations with the `sendgrid` library's Mail helpers, to the same
   server. Targets: exactly 100 requests, < 5 s, < 300 MB, and no slower than the bare loop.
2. SMTP: 2,000 messages to a local aiosmtpd server, against mailmerge (pip install mailmerge; a
   peer tool that opens a connection per message) sending the same list to the same server.
   Target: at least 3x faster.

The SendGrid server runs as a process of its own, the SMTP server in this process; each send
runs as a child process, so client and server use separate cores. Figures are printed; nothing fails on a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.smtp import FakeSMTP, RecordingHandler  # noqa: E402
from tests.helpers import copy_newsletter  # noqa: E402

SLUG = "the-fear-of-entering-the-room"
KEY = "SG.bench-key"
NEWSLETTER = [sys.executable, "-m", "newsletter"]


def make_folder(n: int) -> Path:
    """A copy of the newsletter with n active subscribers."""
    folder = copy_newsletter(ROOT, Path(tempfile.mkdtemp(prefix="bench-send-")) / "letter", subscribers=False)
    with open(folder / "subscribers.csv", "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["email", "name", "status", "tags", "created_at", "updated_at", "source"])
        for i in range(n):
            out.writerow([f"reader{i:06d}@example.com", f"Reader Number{i}", "active", "", "2026-01-01T00:00:00Z",
                          "2026-01-01T00:00:00Z", "bench"])
    return folder


def tree_rss(pid: int) -> int:
    """Resident memory in bytes of a process and all its descendants (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, ValueError):
            continue
        total += next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total


def as_installed() -> None:
    """Compile the package's bytecode once, as `pip install` does for an installed package.

    A checkout run with PYTHONDONTWRITEBYTECODE set (this machine sets it) would otherwise compile
    every module of newsletter/ again in every child process, ours and the yardsticks' alike.
    """
    import compileall

    compileall.compile_dir(ROOT / "newsletter", quiet=1)


def run_child(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB of the child and its own children together, exit status)."""
    as_installed()
    started = time.perf_counter()
    child = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], tree_rss(child.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = child.stdout.read() if child.stdout else b""
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(output.decode(errors="replace")[-2000:])
    return elapsed, max(peak[0], usage.ru_maxrss * 1024) / 2**20, code


def bare_loop(url: str, batches: int, size: int) -> None:
    """The comparison: Mail helpers, 1000 personalizations a request, posted with the library."""
    from sendgrid import SendGridAPIClient
    from sendgrid.helpers.mail import Content, From, Mail, Personalization, Subject, Substitution, To

    from newsletter.config import load_settings
    from newsletter.render.sample import render_and_check

    settings = load_settings(ROOT / "newsletter.toml")
    _, rendered, _ = render_and_check(settings, SLUG)
    client = SendGridAPIClient(KEY, host=url)
    client.client.timeout = 30
    for b in range(batches):
        mail = Mail()
        mail.from_email = From("hailey@haileyscomet.example.com", "Hailey Tai")
        mail.subject = Subject(rendered.subject)
        mail.add_content(Content("text/plain", rendered.text))
        mail.add_content(Content("text/html", rendered.html))
        for i in range(size):
            n = b * size + i
            p = Personalization()
            p.add_to(To(f"bare{n:06d}@example.com", f"Reader Number{n}"))
            for key, value in (("%%NAME%%", f"Reader Number{n}"), ("%%FIRST_NAME%%", "Reader"),
                               ("%%EMAIL%%", f"bare{n:06d}@example.com"), ("%%TEXT_NAME%%", f"Reader Number{n}"),
                               ("%%UNSUBSCRIBE_URL%%", "mailto:unsubscribe@haileyscomet.example.com"),
                               ("%%TEXT_UNSUBSCRIBE_URL%%", "mailto:unsubscribe@haileyscomet.example.com")):
                p.add_substitution(Substitution(key, value))
            mail.add_personalization(p)
        response = client.send(mail)
        assert response.status_code == 202


@contextlib.contextmanager
def sendgrid_process(*options: str) -> Iterator[str]:
    """The SendGrid-speaking server in a process of its own (as a real one would be); yields its URL.

    `options` go to tests/fakes/sendgrid.py (--no-validate, --latency SECONDS).
    """
    server = subprocess.Popen([sys.executable, "-m", "tests.fakes.sendgrid", "--key", KEY, *options], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield server.stdout.readline().strip()
    finally:
        server.terminate()
        server.wait()


def stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/_fake/stats") as answer:
        return dict(json.load(answer))


def bench_sendgrid(n: int) -> None:
    folder = make_folder(n)
    with sendgrid_process() as url:
        env = {**os.environ, "SENDGRID_API_KEY": KEY, "NEWSLETTER_SENDGRID__HOST": url,
               "NEWSLETTER_DELIVERY__PROVIDER": "sendgrid", "PYTHONPATH": str(ROOT)}
        seconds, rss, code = run_child([*NEWSLETTER, "send", SLUG, "--yes"], folder, env)
        got = stats(url)
        print(f"sendgrid: newsletter send, {n:,} subscribers: {seconds:.2f} s, peak {rss:.0f} MB, "
              f"{got['mail_requests']} requests, {got['recipients']:,} recipients, "
              f"at most {got['max_per_recipient']} message each (exit {code})")
    with sendgrid_process() as url:
        args = [sys.executable, __file__, "--bare-loop", url, str(n // 1000)]
        bare, rss, code = run_child(args, ROOT, {**os.environ, "PYTHONPATH": str(ROOT)})
        print(f"sendgrid: bare Mail-helper loop, {n // 1000} x 1000: {bare:.2f} s, peak {rss:.0f} MB, "
              f"{stats(url)['mail_requests']} requests (exit {code})")
    print(f"sendgrid: newsletter send / bare loop = {seconds / bare:.2f}")
    shutil.rmtree(folder.parent, ignore_errors=True)


def mailmerge_files(folder: Path, port: int) -> list[str]:
    """A mailmerge template carrying the same rendered issue (HTML and text), its database and config."""
    from newsletter.config import load_settings
    from newsletter.render.sample import render_and_check

    _, rendered, _ = render_and_check(load_settings(folder / "newsletter.toml"), SLUG)

    def jinja(text: str) -> str:
        for token, field in (("%%EMAIL%%", "email"), ("%%NAME%%", "name"), ("%%UNSUBSCRIBE_URL%%", "unsub"),
                             ("%%TEXT_UNSUBSCRIBE_URL%%", "unsub"), ("%%TEXT_NAME%%", "name")):
            text = text.replace(token, "{% endraw %}{{" + field + "}}{% raw %}")
        return "{% raw %}" + text + "{% endraw %}"

    (folder / "mm_template.txt").write_text(
        "TO: {{email}}\nSUBJECT: " + rendered.subject + "\nFROM: Hailey Tai <hailey@haileyscomet.example.com>\n"
        'MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="b0undary"\n\n'
        "--b0undary\nContent-Type: text/plain; charset=utf-8\n\n" + jinja(rendered.text) +
        "\n--b0undary\nContent-Type: text/html; charset=utf-8\n\n" + jinja(rendered.html) + "\n--b0undary--\n",
        encoding="utf-8")
    with open(folder / "subscribers.csv", encoding="utf-8") as src, \
            open(folder / "mm_database.csv", "w", newline="", encoding="utf-8") as dst:
        out = csv.writer(dst)
        out.writerow(["email", "name", "unsub"])
        for row in csv.DictReader(src):
            out.writerow([row["email"], row["name"], "mailto:unsubscribe@haileyscomet.example.com"])
    (folder / "mm_server.conf").write_text(f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = Never\n"
                                           "ratelimit = 0\n")
    return ["--template", "mm_template.txt", "--database", "mm_database.csv", "--config", "mm_server.conf",
            "--no-dry-run", "--no-limit", "--output-format", "raw"]


def bench_smtp(n: int) -> None:
    folder = make_folder(n)
    mailmerge = shutil.which("mailmerge") or str(Path(sys.executable).parent / "mailmerge")
    for name, make_args in (
        ("newsletter send", lambda port: [*NEWSLETTER, "send", SLUG, "--yes"]),
        ("mailmerge", lambda port: [mailmerge, *mailmerge_files(folder, port)]),
    ):
        server = FakeSMTP(RecordingHandler(keep_data=False)).start()
        env = {**os.environ, "NEWSLETTER_DELIVERY__PROVIDER": "smtp", "NEWSLETTER_SMTP__HOST": "127.0.0.1",
               "NEWSLETTER_SMTP__PORT": str(server.port), "NEWSLETTER_SMTP__SECURITY": "none",
               "PYTHONPATH": str(ROOT)}
        try:
            if name == "mailmerge" and not Path(mailmerge).exists():
                print("smtp: mailmerge is not installed (pip install mailmerge); skipped")
                continue
            seconds, rss, code = run_child(make_args(server.port), folder, env)
            delivered = server.handler.delivered_to()
            print(f"smtp: {name}, {n:,} messages: {seconds:.2f} s ({n / seconds:,.0f}/s), peak {rss:.0f} MB, "
                  f"{len(delivered):,} delivered over {server.handler.connections:,} connections (exit {code})")
            if name == "newsletter send":
                ours = seconds
            else:
                print(f"smtp: mailmerge / newsletter send = {seconds / ours:.1f}x")
        finally:
            server.stop()
    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--smtp-messages", type=int, default=2_000)
    parser.add_argument("--bare-loop", nargs=2, metavar=("URL", "BATCHES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_loop:
        bare_loop(args.bare_loop[0], int(args.bare_loop[1]), 1000)
        return
    print(f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}; "
          f"bench process peak so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    bench_sendgrid(args.subscribers)
    bench_smtp(args.smtp_messages)


if __name__ == "__main__":
    main()
