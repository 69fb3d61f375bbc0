"""What recording every hand-off in the ledger costs: 2,000 messages to the outbox and over SMTP.

    python bench/bench_send_ledger.py [--messages 2000] [--runs 3]   (from the repository root)

Each send runs as a child process (`newsletter send --yes`) in a fresh copy of the newsletter
with N active subscribers, to the outbox and to an aiosmtpd server on 127.0.0.1 in this
process. Prints the wall time of each run, and the ledger's size in lines (each hand-off is
fsynced before it happens, so the lines show how many fsyncs the ledger made), then the cost
of the ledger alone: N durable (fsynced) appends of a one-address pending record in this
process. Compare with the figures printed by a checkout from before a change. Nothing fails on
a timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_send import SLUG, make_folder  # noqa: E402
from tests.fakes.smtp import FakeSMTP, RecordingHandler  # noqa: E402


def ledger_lines(folder: Path) -> int:
    """Lines in every ledger the send wrote (the real one, and the outbox's own if there is one)."""
    found = [*folder.glob("sends/*.jsonl"), *folder.glob("outbox/*/.ledger.jsonl")]
    return sum(len(p.read_bytes().splitlines()) for p in found)


def one_send(n: int, provider: str) -> tuple[float, int, int]:
    """(seconds, ledger lines, exit status) of one send of n messages."""
    folder = make_folder(n)
    env = {**os.environ, "NEWSLETTER_DELIVERY__PROVIDER": provider, "PYTHONPATH": str(ROOT)}
    server = None
    if provider == "smtp":
        server = FakeSMTP(RecordingHandler(keep_data=False)).start()
        env.update(NEWSLETTER_SMTP__HOST="127.0.0.1", NEWSLETTER_SMTP__PORT=str(server.port),
                   NEWSLETTER_SMTP__SECURITY="none")
    try:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "newsletter", "send", SLUG, "--yes"], cwd=folder, env=env,
                              capture_output=True, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            print(done.stdout.decode(errors="replace")[-1500:], done.stderr.decode(errors="replace")[-1500:])
        return seconds, ledger_lines(folder), done.returncode
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder.parent, ignore_errors=True)


def ledger_alone(n: int) -> float:
    """Seconds for n durable appends of a one-address pending record (one fsync each)."""
    from newsletter.providers.base import State
    from newsletter.send.ledger import LedgerWriter

    with tempfile.TemporaryDirectory() as folder:
        writer = LedgerWriter(Path(folder) / "x.jsonl")
        started = time.perf_counter()
        for i in range(n):
            writer.recipients(State.IN_DOUBT, "bench", 1, [f"reader{i:06d}@example.com"], durable=True)
        seconds = time.perf_counter() - started
        writer.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    for provider in ("outbox", "smtp"):
        times = []
        for _ in range(args.runs):
            seconds, lines, code = one_send(args.messages, provider)
            times.append(seconds)
            print(f"{provider}: {args.messages:,} messages in {seconds:.2f} s "
                  f"({args.messages / seconds:,.0f}/s), ledger {lines:,} lines (exit {code})")
        print(f"{provider}: median {statistics.median(times):.2f} s")
    seconds = ledger_alone(args.messages)
    print(f"ledger alone: {args.messages:,} durable appends in {seconds:.2f} s "
          f"({seconds / args.messages * 1000:.2f} ms each)")


if __name__ == "__main__":
    main()
