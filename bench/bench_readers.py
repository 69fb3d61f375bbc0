"""The reader service under load: RFC 8058 one-click unsubscribe POSTs from a real load generator.

    python bench/bench_readers.py [--seconds 30] [--connections 16] [--threads 2] [--rate R]
                                  [--max-requests 150000]
                                  (from the repository root; needs wrk: sudo apt-get install wrk)

Starts `newsletter serve` (waitress, [readers] threads) on a free 127.0.0.1 port in a fresh copy of
the repository's newsletter, then runs wrk against it with a Lua script that rotates valid
unsubscribe tokens of 1,000 list members, each request a `POST <base>unsubscribe/<token>` with the
body `List-Unsubscribe=One-Click`. The run is bounded in time (--seconds) and in count (each wrk
thread stops after its share of --max-requests). Flat out (the default), each connection sends its
next request as soon as the answer comes: that measures capacity, and the latency of a queue kept
full. With --rate R each connection pauses about connections/R seconds between requests, so the
load offered is a little under R (each connection also waits for its answer): that measures the
latency at a given rate (wrk has no open-loop mode; wrk2 is not in Debian). Then the service is
stopped and its inbox read: every 200 must be an event on disk. Prints requests a second, p50/p99
latency, errors and lost events beside the goal (>= 300 requests a second for 30 s, none lost,
p99 < 100 ms). Both wrk and the service run on this machine, so they share its cores. Nothing
fails on a timing; the exit status is 1 only when an event was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.subscribers.inbox import EventType, Inbox  # noqa: E402
from tests.helpers import copy_newsletter  # noqa: E402
from tests.web.running import BASE_PATH, Service, unsubscribe_token  # noqa: E402

READERS = 1000
LUA = r"""
-- One-click unsubscribe POSTs, rotating valid tokens; each thread stops after its share.
local path = "@PATH@"
local max_per_thread = @MAX@
local pause_ms = @PAUSE@  -- per connection between requests (--rate); 0: as fast as the service answers
local tokens = {}
for line in io.lines("@TOKENS@") do tokens[#tokens + 1] = line end
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  ok, other, sent = 0, 0, 0
  wrk.method = "POST"
  wrk.body = "List-Unsubscribe=One-Click"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  sent = sent + 1
  return wrk.format(nil, path .. tokens[((id * 7919 + sent) % #tokens) + 1])
end

function delay()
  if pause_ms == 0 then return 0 end
  return pause_ms * (0.5 + math.random())  -- jittered, so the connections do not march in step
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
  if ok + other >= max_per_thread then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local ok_total, other_total = 0, 0
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    other_total = other_total + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "ok": %d, "non200": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, ok_total, other_total, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def write_script(folder: Path, max_requests: int, threads: int, pause_ms: float = 0.0) -> Path:
    """The Lua script with the tokens of READERS list members in a file beside it."""
    tokens = folder / "tokens.txt"
    tokens.write_text("".join(unsubscribe_token(f"reader{n}@example.com") + "\n" for n in range(READERS)))
    script = folder / "one_click.lua"
    per_thread = max(1, max_requests // threads)
    script.write_text(LUA.replace("@PATH@", BASE_PATH + "unsubscribe/").replace("@MAX@", str(per_thread))
                      .replace("@PAUSE@", f"{pause_ms:.3f}")
                      .replace("@TOKENS@", str(tokens)))
    return script


def run_wrk(url: str, script: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run wrk once; its RESULT line as a dict."""
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s", "--timeout", "2s",
               "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.seconds + 60, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line.removeprefix("RESULT ")))
    raise SystemExit(f"wrk printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def unsubscribe_events(folder: Path) -> int:
    """Unsubscribe events on disk in the service's inbox."""
    return sum(1 for event, _ in Inbox(folder / "inbox").scan() if event.type is EventType.UNSUBSCRIBED)


def report(result: dict[str, Any], events: int, args: argparse.Namespace) -> bool:
    """Print the figures beside the goal; True when nothing was lost."""
    seconds = result["duration_us"] / 1e6
    rate = result["requests"] / seconds
    errors = result["connect"] + result["read"] + result["write"] + result["timeout"] + result["non200"]
    lost = max(0, result["ok"] - events)
    extra = max(0, events - result["ok"])
    rows = [
        ("one-click POSTs answered", f"{result['requests']:,} in {seconds:.1f} s", f"for {args.seconds} s"),
        ("requests a second", f"{rate:,.0f}", ">= 300"),
        ("latency p50 / p99 / max", f"{result['p50_us'] / 1000:.1f} / {result['p99_us'] / 1000:.1f} / "
                                     f"{result['max_us'] / 1000:.1f} ms", "p99 < 100 ms"),
        ("errors (socket, timeout, non-200)", f"{errors}", "0"),
        ("200s / events on disk", f"{result['ok']:,} / {events:,}", "equal"),
        ("lost (200 without an event)", f"{lost}", "0"),
    ]
    offered = f"paced to offer about {args.rate:g}/s" if args.rate else "flat out"
    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.seconds}s {offered}, {READERS:,} rotating tokens, "
          f"load average before: {args.load:.2f}")
    print(f"{'':38} {'measured':>28}   goal")
    for name, measured, goal in rows:
        print(f"{name:38} {measured:>28}   {goal}")
    if result["requests"] >= args.max_requests:
        print(f"(stopped at --max-requests {args.max_requests:,} before the time was up: the rate above is too low)")
    if extra:
        print(f"({extra} events more than 200s: requests in flight when wrk stopped, recorded but not counted)")
    return lost == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--rate", type=float, default=0,
                        help="pace each connection to offer about this many requests a second in all (0: flat out)")
    parser.add_argument("--max-requests", type=int, default=150_000, help="stop after this many answers")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: install Debian's package with `sudo apt-get install wrk`", file=sys.stderr)
        return 1
    args.load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-readers-") as tmp:
        folder = copy_newsletter(ROOT, Path(tmp) / "letter")
        pause_ms = 1000 * args.connections / args.rate if args.rate else 0.0
        script = write_script(Path(tmp), args.max_requests, args.threads, pause_ms)
        service = Service(folder).start()
        try:
            result = run_wrk(service.url, script, args)
            time.sleep(0.5)  # let the requests still in flight finish before counting
        finally:
            service.stop()
        if service.process is not None and service.process.returncode not in (0, -15):
            print(service.output()[-3000:], file=sys.stderr)
        return 0 if report(result, unsubscribe_events(folder), args) else 1


if __name__ == "__main__":
    sys.exit(main())
