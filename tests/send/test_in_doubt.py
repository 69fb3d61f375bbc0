"""Issue 9: after a kill -9, in doubt means "maybe handed over", and a killed outbox leaves no temp file.

A send is a child process killed with SIGKILL: over SMTP while the server holds one message
(so exactly that one is in flight), and to the outbox part way through a list of 1,500.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.send.ledger import read_ledger
from tests.fakes.smtp import FakeSMTP, RecordingHandler
from tests.helpers import write_list

SLUG = "the-fear-of-entering-the-room"


class HoldingHandler(RecordingHandler):
    """Holds message number `hold` (never answering) until released; it is never queued."""

    def __init__(self, hold: int) -> None:
        super().__init__()
        self.hold = hold
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_count + 1 == self.hold and not self.release.is_set():
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 not queued"
        return await super().handle_DATA(server, session, envelope)


def kill(child: subprocess.Popen[bytes]) -> None:
    child.send_signal(signal.SIGKILL)
    assert child.wait(30) == -signal.SIGKILL


def test_smtp_killed_mid_batch_leaves_only_the_message_in_flight_in_doubt(
        newsletter_dir: Path, runner: CliRunner, monkeypatch: Any) -> None:
    addresses = write_list(newsletter_dir, 30)  # one batch of 100: before issue 9, all 30 were left in doubt
    handler = HoldingHandler(hold=12)
    server = FakeSMTP(handler).start()
    env = {"NEWSLETTER_DELIVERY__PROVIDER": "smtp", "NEWSLETTER_SMTP__HOST": "127.0.0.1",
           "NEWSLETTER_SMTP__PORT": str(server.port), "NEWSLETTER_SMTP__SECURITY": "none"}
    try:
        child = subprocess.Popen([sys.executable, "-m", "newsletter", "send", SLUG, "--yes"], cwd=newsletter_dir,
                                 env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert handler.holding.wait(60), "the send never reached its 12th message"
            kill(child)
        finally:
            child.kill()
            handler.release.set()
        state = read_ledger(newsletter_dir / "sends" / f"{SLUG}.jsonl")
        assert state.emails("pending") == [addresses[11]]  # only the one in flight
        assert state.emails("sent") == addresses[:11] and len(state.entries) == 12

        for name, value in env.items():
            monkeypatch.setenv(name, value)
        rerun = runner.invoke(app, ["send", SLUG, "--yes"])
        assert rerun.exit_code == 1, rerun.output  # one is still in doubt
        assert "Sent 18, skipped 11 (already sent), failed 0, in doubt 1" in rerun.output
        done = runner.invoke(app, ["send", SLUG, "--yes", "--resend-pending"])
        assert done.exit_code == 0 and "Sent 1, skipped 29" in done.output
        delivered = handler.delivered_to()
        assert sorted(delivered) == addresses  # everyone once, nobody twice
    finally:
        server.stop()


def test_outbox_killed_part_way_leaves_at_most_one_in_doubt_and_no_temp_file(
        newsletter_dir: Path, runner: CliRunner) -> None:
    addresses = write_list(newsletter_dir, 1500)
    folder = newsletter_dir / "outbox" / SLUG
    child = subprocess.Popen([sys.executable, "-m", "newsletter", "send", SLUG, "--yes"], cwd=newsletter_dir,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(folder.glob("*.eml"))) < 150:
            time.sleep(0.02)
        kill(child)
    finally:
        child.kill()
    written = len(list(folder.glob("*.eml")))
    assert 150 <= written < 1500, "the send finished before it could be killed"
    state = read_ledger(folder / ".ledger.jsonl", rehearsal=True)
    assert len(state.emails("pending")) <= 1 and len(state.emails("sent")) >= written - 1

    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name.split("-", 1)[1][:-4] for p in folder.glob("*.eml")) == addresses
    assert not list(folder.rglob("*.tmp")) and not list(folder.rglob(".*.tmp"))
    assert not (newsletter_dir / "sends").exists()


def test_a_temp_file_a_killed_outbox_left_is_removed_by_the_next_run(newsletter_dir: Path,
                                                                      runner: CliRunner) -> None:
    folder = newsletter_dir / "outbox" / SLUG
    killer = ("import os, signal, sys\nfrom pathlib import Path\nfrom newsletter.files import atomic_open\n"
              "with atomic_open(Path(sys.argv[1])) as fh:\n"
              "    fh.write(b'half a message'); fh.flush(); os.kill(os.getpid(), signal.SIGKILL)\n")
    died = subprocess.run([sys.executable, "-c", killer, str(folder / "00001-ada.lovelace@example.com.eml")],
                          check=False)
    assert died.returncode == -signal.SIGKILL
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")], "no temp file to clean up"
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 0, result.output
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert len(list(folder.glob("*.eml"))) == 9
    assert all(json.loads(line) for line in (folder / ".ledger.jsonl").read_text().splitlines())
