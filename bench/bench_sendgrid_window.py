"""Benchmark SendGrid sends with a window of requests in flight, side by side with bare library loops.

    python bench/bench_sendgrid_window.py              (from the repository root; about 3 minutes)
    python bench/bench_sendgrid_window.py --million    (also the peak memory of a 1M-recipient send)

The SendGrid emulator (tests/fakes/sendgrid.py) runs in a process of its own, schema checks off,
answering every mail-send request after a configurable latency. Each figure is the median of 3
runs, `newsletter send` and its yardstick taking turns against a fresh emulator:

1. 100,000 recipients at 300 ms a request: `newsletter send` with [sendgrid] concurrency 8 vs a
   bare loop of 8 threads posting with the `sendgrid` library (goal: within 1.25x).
2. 100,000 at 0 ms: `newsletter send` with its default window vs a bare sequential library loop
   (goal: within 1.1x).

The bare loops are honest: the same rendered content and top-level fields (built once, by the
same function), 1000 personalizations a request, each byte for byte the one `newsletter send`
makes (the same substitutions, List-Unsubscribe headers and signed reader-service link, made with
hmac and itsdangerous as any program would; checked on one person at the start), posted by the
library to the same emulator. They read no list, keep no ledger and check nothing: that is the
yardstick.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import html
import os
import shutil
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_send import KEY, NEWSLETTER, SLUG, make_folder, run_child, sendgrid_process, stats  # noqa: E402

SECRET = "bench-unsubscribe-secret"


def emulator(latency: float) -> contextlib.AbstractContextManager[str]:
    """The SendGrid emulator in its own process, schema checks off; yields its URL."""
    return sendgrid_process("--no-validate", "--latency", str(latency))


def ours(folder: Path, latency: float, concurrency: int | None) -> tuple[float, float, str]:
    """(seconds, peak MB of the process tree, what the emulator saw) for one `newsletter send`."""
    with emulator(latency) as url:
        env = {**os.environ, "SENDGRID_API_KEY": KEY, "NEWSLETTER_SENDGRID__HOST": url,
               "NEWSLETTER_DELIVERY__PROVIDER": "sendgrid", "NEWSLETTER_UNSUBSCRIBE_SECRET": SECRET,
               "PYTHONPATH": str(ROOT)}
        if concurrency is not None:
            env["NEWSLETTER_SENDGRID__CONCURRENCY"] = str(concurrency)
        shutil.rmtree(folder / "sends", ignore_errors=True)  # a fresh send each time
        seconds, rss, code = run_child([*NEWSLETTER, "send", SLUG, "--yes"], folder, env)
        got = stats(url)
    return seconds, rss, (f"{got['mail_requests']} requests, {got['recipients']:,} recipients, "
                          f"at most {got['max_per_recipient']} each, exit {code}")


def bare(n: int, latency: float, threads: int) -> tuple[float, float, str]:
    """The same for the bare library loop, in a child process."""
    with emulator(latency) as url:
        args = [sys.executable, __file__, "--bare", url, str(n), str(threads)]
        seconds, rss, code = run_child(args, ROOT, {**os.environ, "PYTHONPATH": str(ROOT)})
        got = stats(url)
    return seconds, rss, f"{got['mail_requests']} requests, {got['recipients']:,} recipients, exit {code}"


def bare_loop(url: str, n: int, threads: int) -> None:
    """Build and post n // 1000 bodies with the sendgrid library, `threads` at a time.

    Each person's personalization is the one `newsletter send` makes, byte for byte (checked on the
    first person before the clock matters): the same substitutions, the same List-Unsubscribe
    headers, the same signed reader-service link (an HMAC reader id signed by itsdangerous, used
    as any program would use it). Nothing else: no list, no ledger, no address checks.
    """
    from itsdangerous import Signer
    from sendgrid import SendGridAPIClient

    from newsletter.config import load_settings
    from newsletter.models import Recipient
    from newsletter.providers.base import Letter
    from newsletter.providers.sendgrid.body import mail_body, personalization
    from newsletter.render.sample import render_and_check
    from newsletter.tokens import UNSUBSCRIBE_SALT

    settings = load_settings(ROOT / "newsletter.toml")
    settings = dataclasses.replace(settings, delivery=dataclasses.replace(settings.delivery, provider="sendgrid"))
    _, rendered, _ = render_and_check(settings, SLUG)
    letter = Letter(rendered, settings, SECRET)
    top = mail_body(letter, [], [])  # content and top-level fields, once
    links = settings.readers_url + "unsubscribe/"
    mailto = f"<mailto:{settings.delivery.unsubscribe_mailto}?subject=unsubscribe>"
    key = SECRET.encode()
    signer = Signer(SECRET, salt=UNSUBSCRIBE_SALT, key_derivation="hmac", digest_method=hashlib.sha256)

    def person(i: int) -> dict[str, Any]:
        email, name = f"reader{i:06d}@example.com", f"Reader Number{i}"
        mac = hmac.new(key, b"reader-id\0" + email.encode(), hashlib.sha256).digest()[:16]
        link = links + signer.sign(base64.urlsafe_b64encode(mac).decode().rstrip("=")).decode()
        return {"to": [{"email": email, "name": name}],
                "substitutions": {"%%TEXT_UNSUBSCRIBE_URL%%": link, "%%EMAIL%%": html.escape(email),
                                  "%%UNSUBSCRIBE_URL%%": html.escape(link)},
                "headers": {"List-Unsubscribe": f"<{link}>, {mailto}",
                            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}}

    ours = personalization(letter, Recipient("reader000007@example.com", "Reader Number7"))
    assert person(7) == ours, f"the bare loop's bodies drifted from ours:\n{person(7)}\n{ours}"
    clients = [SendGridAPIClient(KEY, host=url) for _ in range(threads)]

    def post(batch: int) -> None:
        client = clients[batch % threads]
        body = {**top, "personalizations": [person(i) for i in range(batch * 1000, (batch + 1) * 1000)]}
        assert client.client.mail.send.post(request_body=body).status_code == 202

    if threads == 1:
        for batch in range(n // 1000):
            post(batch)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(post, range(n // 1000)))


def side_by_side(title: str, folder: Path, n: int, latency: float, concurrency: int | None, threads: int,
                 goal: float) -> None:
    mine: list[float] = []
    theirs: list[float] = []
    for run in range(1, 4):
        seconds, rss, seen = ours(folder, latency, concurrency)
        mine.append(seconds)
        print(f"  run {run}: newsletter send {seconds:6.2f} s, peak {rss:4.0f} MB ({seen})", flush=True)
        seconds, rss, seen = bare(n, latency, threads)
        theirs.append(seconds)
        print(f"  run {run}: bare loop       {seconds:6.2f} s, peak {rss:4.0f} MB ({seen})", flush=True)
    a, b = statistics.median(mine), statistics.median(theirs)
    verdict = "met" if a / b <= goal else "NOT met"
    print(f"{title}: newsletter send {a:.2f} s | bare loop {b:.2f} s | ratio {a / b:.2f} (goal <= {goal}: {verdict})\n",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--million", action="store_true", help="also the peak memory of a 1,000,000 send")
    parser.add_argument("--bare", nargs=3, metavar=("URL", "N", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_loop(args.bare[0], int(args.bare[1]), int(args.bare[2]))
        return
    n = args.subscribers
    folder = make_folder(n)
    print(f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}; medians of 3\n")
    side_by_side(f"{n:,} at {args.latency * 1000:.0f} ms/request, concurrency 8 vs 8 threads", folder, n,
                 args.latency, 8, 8, 1.25)
    side_by_side(f"{n:,} at 0 ms, default concurrency vs sequential", folder, n, 0.0, None, 1, 1.1)
    shutil.rmtree(folder.parent, ignore_errors=True)
    if args.million:
        big = make_folder(1_000_000)
        seconds, rss, seen = ours(big, 0.0, None)
        print(f"1,000,000 at 0 ms: newsletter send {seconds:.1f} s, peak {rss:.0f} MB for the process tree "
              f"(goal < 250 MB) ({seen})")
        shutil.rmtree(big.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
