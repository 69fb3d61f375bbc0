"""Issue 14: a send over 4 SMTP connections killed with SIGKILL leaves at most the window in doubt.

The server answers the first ANSWERED messages, then holds every later one unanswered, so that
when the child is killed each of the 4 connections has one message in flight. Of those held, the
server may already have queued some (it took the message, the client never heard so) or none:
only the ones it queued may reach a reader twice, and only through --resend-pending. A second
test kills the send at a moment nobody chose, while a slow relay keeps all 4 connections busy.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.providers import State
from newsletter.send.ledger import locked, read_ledger
from tests.fakes.smtp import FakeSMTP, RecordingHandler
from tests.helpers import write_list

SLUG = "the-fear-of-entering-the-room"
CONNECTIONS = 4
READERS = 30
ANSWERED = 10  # messages the server answers before it starts holding them


class StallingHandler(RecordingHandler):
    """Answers the first `answer` messages; holds every later one, unanswered, until released.

    The first `queue` of those held are recorded (queued) before the hold; the others are not, and
    get 451 once released. After the release every message is taken as usual.
    """

    def __init__(self, answer: int, queue: int) -> None:
        super().__init__()
        self.answer, self.queue = answer, queue
        self.arrived = 0
        self.held: list[tuple[str, tuple[str, int]]] = []  # (recipient, the connection it came over)
        self.queued: list[str] = []  # held, but already in the server's hands
        self.all_held = threading.Event()  # every connection has a message in flight
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.arrived += 1
            number = self.arrived
        if number <= self.answer or self.release.is_set():
            return await super().handle_DATA(server, session, envelope)
        queued = number - self.answer <= self.queue
        if queued:
            await super().handle_DATA(server, session, envelope)  # recorded; the answer never goes
        with self.lock:
            recipient = envelope.rcpt_tos[0].lower()
            self.held.append((recipient, session.peer))
            if queued:
                self.queued.append(recipient)
            if len(self.held) == CONNECTIONS:
                self.all_held.set()
        while not self.release.is_set():
            await asyncio.sleep(0.02)
        return "250 2.0.0 queued" if queued else "451 4.3.0 not queued"


def smtp_environment(port: int) -> dict[str, str]:
    return {"NEWSLETTER_DELIVERY__PROVIDER": "smtp", "NEWSLETTER_SMTP__HOST": "127.0.0.1",
            "NEWSLETTER_SMTP__PORT": str(port), "NEWSLETTER_SMTP__SECURITY": "none",
            "NEWSLETTER_SMTP__CONNECTIONS": str(CONNECTIONS)}


def send_and_kill(folder: Path, env: dict[str, str], ready: Callable[[], bool], why: str) -> None:
    """Run `newsletter send --yes` in a child; SIGKILL it as soon as `ready()` (polled, within a minute)."""
    child = subprocess.Popen([sys.executable, "-m", "newsletter", "send", SLUG, "--yes"], cwd=folder,
                             env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not ready() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert ready(), why
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL, "the send finished before it could be killed"
    finally:
        child.kill()


@pytest.mark.parametrize("queued", [0, 2, CONNECTIONS], ids=["none-queued", "some-queued", "all-queued"])
def test_smtp_with_four_connections_killed_leaves_only_the_messages_in_flight_in_doubt(
        newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, queued: int) -> None:
    addresses = write_list(newsletter_dir, READERS)
    handler = StallingHandler(answer=ANSWERED, queue=queued)
    server = FakeSMTP(handler).start()
    env = smtp_environment(server.port)
    ledger = newsletter_dir / "sends" / f"{SLUG}.jsonl"
    try:
        try:
            send_and_kill(newsletter_dir, env, handler.all_held.is_set,
                          f"only {len(handler.held)} messages were ever held at once")
        finally:
            handler.release.set()
        held = {recipient for recipient, _ in handler.held}
        assert len(held) == CONNECTIONS and len({peer for _, peer in handler.held}) == CONNECTIONS
        answered = {m.rcpt_tos[0].lower() for m in handler.messages} - set(handler.queued)
        assert len(answered) == ANSWERED

        state = read_ledger(ledger)
        assert set(state.in_doubt()) == held  # at most the window, and exactly what was in flight
        assert set(state.emails(State.SENT)) == answered  # every answer the send heard is recorded
        assert len(state.entries) == ANSWERED + CONNECTIONS  # the rest never started: not sent
        got = set(handler.delivered_to())
        assert got <= set(state.emails(State.SENT)) | set(state.in_doubt())  # nobody the server got is lost
        assert not list(newsletter_dir.rglob("*.tmp")), "the killed send left a temp file"
        with locked(ledger):  # the kill released the lock (a held one raises SendError at once)
            pass

        for name, value in env.items():
            monkeypatch.setenv(name, value)
        rerun = runner.invoke(app, ["send", SLUG, "--yes"])
        assert rerun.exit_code == 1, rerun.output  # some are still in doubt
        assert (f"Sent {READERS - ANSWERED - CONNECTIONS}, skipped {ANSWERED} (already sent), failed 0, "
                f"in doubt {CONNECTIONS}") in rerun.output
        assert Counter(handler.delivered_to()) == Counter(set(addresses) - held | set(handler.queued))

        done = runner.invoke(app, ["send", SLUG, "--yes", "--resend-pending"])
        assert done.exit_code == 0, done.output
        assert f"Sent {CONNECTIONS}, skipped {READERS - CONNECTIONS}" in done.output
        # Everyone once; twice only those the server had queued when the send was killed.
        assert Counter(handler.delivered_to()) == Counter(addresses) + Counter(handler.queued)
        final = read_ledger(ledger)
        assert sorted(final.emails(State.SENT)) == addresses and not final.in_doubt()
        assert "status: sent" in (newsletter_dir / "issues" / f"2026-11-23-{SLUG}.md").read_text()
        assert not list(newsletter_dir.rglob("*.tmp"))
    finally:
        server.stop()


def test_smtp_with_four_connections_killed_while_messages_flow_loses_nobody_and_serves_nobody_twice(
        newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    readers = 80
    addresses = write_list(newsletter_dir, readers)
    handler = RecordingHandler(delay=0.05)  # a relay at work: the 4 connections are rarely idle
    server = FakeSMTP(handler).start()
    env = smtp_environment(server.port)
    ledger = newsletter_dir / "sends" / f"{SLUG}.jsonl"
    try:
        send_and_kill(newsletter_dir, env, lambda: handler.data_count >= 20 and handler.most_in_data == CONNECTIONS,
                      f"the send stopped after {handler.data_count} messages, {handler.most_in_data} at once")
        handler.delay = 0.0
        state = read_ledger(ledger)
        sent, in_doubt = set(state.emails(State.SENT)), set(state.in_doubt())
        assert len(in_doubt) <= CONNECTIONS  # at most the window
        assert len(sent) >= 20 - CONNECTIONS and set(state.entries) == sent | in_doubt
        assert sent <= set(handler.delivered_to())  # recorded sent only once the server said so
        assert set(handler.delivered_to()) <= sent | in_doubt  # nobody the server got is "never sent"
        with locked(ledger):
            pass

        for name, value in env.items():
            monkeypatch.setenv(name, value)
        rerun = runner.invoke(app, ["send", SLUG, "--yes"])
        assert rerun.exit_code == (1 if in_doubt else 0), rerun.output
        assert (f"Sent {readers - len(sent) - len(in_doubt)}, skipped {len(sent)} (already sent), failed 0, "
                f"in doubt {len(in_doubt)}") in rerun.output
        counts = Counter(handler.delivered_to())
        assert set(counts) >= set(addresses) - in_doubt and max(counts.values()) == 1  # the in doubt left alone

        done = runner.invoke(app, ["send", SLUG, "--yes", "--resend-pending"])
        assert done.exit_code == 0, done.output
        assert f"Sent {len(in_doubt)}, skipped {readers - len(in_doubt)}" in done.output
        final = Counter(handler.delivered_to())
        assert set(final) == set(addresses)
        assert {a for a, n in final.items() if n > 1} <= {a for a in in_doubt if counts[a] == 1}  # twice: only those
        assert max(final.values()) <= 2  # the server had when --resend-pending sent them again
        assert sorted(read_ledger(ledger).emails(State.SENT)) == addresses
        assert not list(newsletter_dir.rglob("*.tmp"))
    finally:
        server.stop()
