"""A send killed with SIGKILL part way, then run again: nobody served twice, nobody lost.

With one recipient per request the send has enough batches to start its body-building worker
process, so this also shows that a killed send leaves no worker behind and no lock held.
With a window of requests in flight ([sendgrid] concurrency), the others go on while the third
hangs; the send is killed once they are recorded, so exactly the hung request is in doubt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.providers import State
from newsletter.send.ledger import read_ledger
from tests.fakes import fixtures
from tests.fakes.fixtures import API_KEY
from tests.fakes.sendgrid import FakeSendGrid

SLUG = "the-fear-of-entering-the-room"
ACTIVE = {"ada.lovelace@example.com", "grace.hopper@example.org", "marek@example.net", "amira.haddad@example.com",
          "sofia.ruiz@example.org", "kenji.watanabe@example.jp", "lena.fischer@example.de", "noah.b@example.com",
          "priya.nair@example.in"}

sendgrid_server = fixtures.sendgrid_server  # a pytest fixture, shared by the test modules



def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text()}


def wait_for_sent(ledger: Path, n: int) -> None:
    deadline = time.monotonic() + 30
    while len(read_ledger(ledger).emails(State.SENT)) < n and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("concurrency", [1, 4, 16])
def test_sigkill_mid_send_then_rerun_then_resend_pending(
        sendgrid_server: FakeSendGrid, newsletter_dir: Path, runner: CliRunner, concurrency: int) -> None:
    env = {**os.environ, "SENDGRID_API_KEY": API_KEY, "NEWSLETTER_SENDGRID__HOST": sendgrid_server.url,
           "NEWSLETTER_DELIVERY__PROVIDER": "sendgrid", "NEWSLETTER_SENDGRID__BATCH_SIZE": "1",
           "NEWSLETTER_SENDGRID__CONCURRENCY": str(concurrency)}
    before = 2 if concurrency == 1 else 8  # sent when the kill comes: all but the hung one, with a window
    ledger = newsletter_dir / "sends" / f"{SLUG}.jsonl"
    sendgrid_server.faults = {3: "hang"}  # the third request is held; SendGrid never takes it
    child = subprocess.Popen([sys.executable, "-m", "newsletter", "send", SLUG, "--yes"], cwd=newsletter_dir,
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert sendgrid_server.hanging.wait(60), "the send never reached its third batch"
        workers = children_of(child.pid)
        wait_for_sent(ledger, before)
        assert workers, "no body-building worker was started"
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        child.kill()
        sendgrid_server.release.set()
    deadline = time.monotonic() + 10
    while alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(workers), "the worker outlived the killed send"
    first = set(sendgrid_server.counts())
    assert len(first) == before and all(n == 1 for n in sendgrid_server.counts().values())
    records = [json.loads(line) for line in ledger.read_text().splitlines()]
    in_flight = set(read_ledger(ledger).in_doubt())
    assert len(in_flight) == 1 and not in_flight & first  # the hung request, which SendGrid never took
    if concurrency == 1:
        assert records[-1]["event"] == "pending" and set(records[-1]["to"]) == in_flight

    env_vars = {k: v for k, v in env.items() if k.startswith(("NEWSLETTER_", "SENDGRID_"))}
    rerun = runner.invoke(app, ["send", SLUG, "--yes"], env=env_vars)
    assert rerun.exit_code == 1, rerun.output  # something is still in doubt
    assert f"Sent {8 - before}, skipped {before} (already sent), failed 0, in doubt 1" in rerun.output
    counts = sendgrid_server.counts()
    assert all(n == 1 for n in counts.values()) and set(counts) == ACTIVE - in_flight  # reported, not resent

    done = runner.invoke(app, ["send", SLUG, "--yes", "--resend-pending"], env=env_vars)
    assert done.exit_code == 0, done.output
    assert "Sent 1, skipped 8" in done.output
    assert sendgrid_server.counts() == dict.fromkeys(ACTIVE, 1)
    assert "status: sent" in (newsletter_dir / "issues" / f"2026-11-23-{SLUG}.md").read_text()
