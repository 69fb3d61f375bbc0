"""Benchmark SMTP over parallel connections (issue 14) against bare smtplib and mailmerge.

    python bench/bench_smtp_parallel.py [--runs 3] [--only 2000|10000]   (from the repository root; about 12 minutes)

Against aiosmtpd on 127.0.0.1 taking a set time over each message (like a relay), side by side,
medians of --runs:

1. 2,000 messages, 20 ms a message: `newsletter send` with [smtp] connections = 4, and with 1
   (the issue's baseline, 47.5 s); 4 bare smtplib connections in 4 threads sending the same
   messages (built per recipient by the same MessageFactory, so the same bodies and substitutions,
   and no ledger); mailmerge (a connection per message). Goals: within 1.2x of the bare
   connections, at least 5x faster than mailmerge.
2. 10,000 messages, 0 ms: the same three (4 connections). Goal: at least 4x faster than mailmerge.

Each send runs as a child process (startup, list and render included, for all three); the server
runs in this process. Figures are printed; nothing fails on a timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import threading
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_send import NEWSLETTER, SLUG, mailmerge_files, make_folder, run_child  # noqa: E402

from tests.fakes.smtp import FakeSMTP, RecordingHandler  # noqa: E402

SECRET = "bench-unsubscribe-secret-0123456789abcdef"  # the token links need one: the same for all


def bare_connections(folder: Path, port: int, connections: int) -> None:
    """The yardstick: N smtplib connections in N threads, each message built as the send builds it."""
    import csv
    import smtplib

    from newsletter.config import load_settings
    from newsletter.issues import find_issue
    from newsletter.providers.base import Letter, Outgoing
    from newsletter.providers.mime import MessageFactory
    from newsletter.render.compose import render_issue
    from newsletter.render.message import recipient_for

    settings = load_settings(folder / "newsletter.toml")
    letter = Letter(render_issue(find_issue(settings.issues_dir, SLUG), settings), settings, SECRET)
    factory = MessageFactory(letter)
    with open(folder / "subscribers.csv", encoding="utf-8") as fh:
        people = [Outgoing(i, recipient_for(settings, row["email"], row["name"], SECRET))
                  for i, row in enumerate(csv.DictReader(fh), 1)]

    def work(slot: int) -> None:
        with smtplib.SMTP("127.0.0.1", port) as conn:
            for out in people[slot::connections]:
                data, _ = factory.build(out.recipient)
                conn.sendmail("hailey@haileyscomet.example.com", [out.recipient.email], data)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def one_run(folder: Path, delay: float, args: Callable[[int], list[str]], connections: int) -> tuple[float, int]:
    """Seconds for one send through a fresh server; how many messages it got."""
    shutil.rmtree(folder / "sends", ignore_errors=True)
    server = FakeSMTP(RecordingHandler(keep_data=False, delay=delay)).start()
    env = {**os.environ, "NEWSLETTER_DELIVERY__PROVIDER": "smtp", "NEWSLETTER_SMTP__HOST": "127.0.0.1",
           "NEWSLETTER_SMTP__PORT": str(server.port), "NEWSLETTER_SMTP__SECURITY": "none",
           "NEWSLETTER_SMTP__CONNECTIONS": str(connections), "NEWSLETTER_UNSUBSCRIBE_SECRET": SECRET,
           "PYTHONPATH": str(ROOT)}
    try:
        seconds, _, code = run_child(args(server.port), folder, env)
        if code != 0:
            print(f"  (exit {code})")
        return seconds, len(server.handler.delivered_to())
    finally:
        server.stop()


def scenario(n: int, delay: float, runs: int, with_one: bool) -> None:
    folder = make_folder(n)
    mailmerge = shutil.which("mailmerge") or str(Path(sys.executable).parent / "mailmerge")
    contenders: list[tuple[str, Callable[[int], list[str]], int]] = [
        ("newsletter send, 4 connections", lambda port: [*NEWSLETTER, "send", SLUG, "--yes"], 4),
        ("4 bare smtplib connections", lambda port: [sys.executable, __file__, "--bare", str(folder), str(port)], 4),
    ]
    if with_one:
        contenders.append(("newsletter send, 1 connection", lambda port: [*NEWSLETTER, "send", SLUG, "--yes"], 1))
    if Path(mailmerge).exists():
        contenders.append(("mailmerge", lambda port: [mailmerge, *mailmerge_files(folder, port)], 1))
    else:
        print("mailmerge is not installed (pip install mailmerge); skipped")
    medians: dict[str, float] = {}
    print(f"\nSMTP, {n:,} messages, {delay * 1000:.0f} ms a message, median of {runs}:")
    for name, make_args, connections in contenders:
        times = []
        for _ in range(runs):
            seconds, delivered = one_run(folder, delay, make_args, connections)
            times.append(seconds)
            if delivered != n:
                print(f"  {name}: {delivered:,} delivered of {n:,}!")
        medians[name] = statistics.median(times)
        print(f"  {name:<34} {medians[name]:7.2f} s  ({n / medians[name]:,.0f}/s)  runs: "
              + ", ".join(f"{t:.2f}" for t in times))
    ours = medians["newsletter send, 4 connections"]
    print(f"  newsletter send / 4 bare connections = {ours / medians['4 bare smtplib connections']:.2f}x")
    if "mailmerge" in medians:
        print(f"  mailmerge / newsletter send = {medians['mailmerge'] / ours:.1f}x")
    shutil.rmtree(folder.parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", type=int, choices=(2_000, 10_000), help="only the scenario of this many messages")
    parser.add_argument("--bare", nargs=2, metavar=("FOLDER", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_connections(Path(args.bare[0]), int(args.bare[1]), 4)
        return
    print(f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}; load average {os.getloadavg()[0]:.2f}")
    if args.only in (None, 2_000):
        scenario(2_000, 0.020, args.runs, with_one=True)
    if args.only in (None, 10_000):
        scenario(10_000, 0.0, args.runs, with_one=False)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
