"""A send honours every unsubscribe received before it starts: it applies (or pulls) the inbox first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.render.message import NO_SECRET_TOKEN
from newsletter.subscribers.inbox import EventType, Inbox
from newsletter.subscribers.schema import email_key
from newsletter.subscribers.store import load_subscribers
from newsletter.tokens import Tokens
from tests.helpers import one_error_line
from tests.send.test_cli import SLUG, outbox
from tests.subscribers.test_pull import TOKEN, FakeService

SECRET = "send-readers-secret-0123456789"  # noqa: S105 - a test secret


@pytest.fixture
def letter(newsletter_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSLETTER_UNSUBSCRIBE_SECRET", SECRET)
    return newsletter_dir


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FakeService]:
    fake = FakeService(tmp_path / "remote-inbox")
    yield fake
    fake.close()


def link_of(address: str) -> str:
    """The reader id the link in this reader's message carries."""
    tokens = Tokens((SECRET,))
    rid = tokens.open_unsubscribe(tokens.unsubscribe_token(email_key(address)))
    assert rid is not None
    return rid


def record(inbox_dir: Path, type: EventType, **fields: object) -> None:
    inbox = Inbox(inbox_dir)
    try:
        inbox.record(type, "web", **fields)
    finally:
        inbox.close()


def status(folder: Path, address: str) -> str:
    return next(s.status for s in load_subscribers(folder / "subscribers.csv").rows if s.email == address)


def send(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["send", SLUG, "--yes", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_an_unsubscribe_in_the_inbox_is_honoured_by_the_next_send(letter: Path) -> None:
    record(letter / "inbox", EventType.UNSUBSCRIBED, reader=link_of("ada.lovelace@example.com"))
    record(letter / "inbox", EventType.CONFIRMED, email="nadia@example.com", name="Nadia Ali")
    code, out = send()
    assert code == 0, out
    assert "Inbox: 2 new events: 1 added" in out
    written = outbox(letter)
    assert "ada.lovelace@example.com" not in written and "nadia@example.com" in written
    assert status(letter, "ada.lovelace@example.com") == "unsubscribed"


def test_dry_run_and_test_apply_nothing(letter: Path) -> None:
    record(letter / "inbox", EventType.UNSUBSCRIBED, reader=link_of("ada.lovelace@example.com"))
    before = (letter / "subscribers.csv").read_bytes()
    code, out = send("--dry-run")
    assert code == 0, out
    assert "1 reader event in inbox/ not applied yet: the send applies them first" in out
    code, out = send("--test", "me@example.com")
    assert code == 0, out
    assert (letter / "subscribers.csv").read_bytes() == before
    assert not (letter / "inbox" / "applied.json").exists()


def test_a_remote_service_is_pulled_before_recipients_are_chosen(
        letter: Path, service: FakeService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_READERS__URL", service.url)
    monkeypatch.setenv("NEWSLETTER_READERS__REMOTE", "true")
    monkeypatch.setenv("NEWSLETTER_READERS_TOKEN", TOKEN)
    service.inbox.record(EventType.UNSUBSCRIBED, "web", reader=link_of("grace.hopper@example.org"))
    code, out = send()
    assert code == 0, out
    assert f"Pulled 1 event from {service.url}" in out
    assert "grace.hopper@example.org" not in outbox(letter)
    assert status(letter, "grace.hopper@example.org") == "unsubscribed"


def test_an_unreachable_service_stops_the_send_unless_told_to_go_on(
        letter: Path, service: FakeService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_READERS__URL", service.url)
    monkeypatch.setenv("NEWSLETTER_READERS__REMOTE", "true")
    monkeypatch.setenv("NEWSLETTER_READERS_TOKEN", TOKEN)
    service.close()
    result = CliRunner().invoke(app, ["send", SLUG, "--yes"])
    assert "cannot reach the reader service" in one_error_line(result) and "--skip-pull" in result.stderr
    assert not (letter / "outbox").exists()
    code, out = send("--skip-pull")
    assert code == 0, out
    assert "not fetched from the reader service (--skip-pull)" in out
    assert len(outbox(letter)) == 9


def test_a_real_send_without_the_secret_is_refused_before_anything_goes_out(
        letter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_UNSUBSCRIBE_SECRET")
    monkeypatch.setenv("SMTP_PASSWORD", "x")
    result = CliRunner().invoke(app, ["send", SLUG, "--yes", "--provider", "smtp"])
    line = one_error_line(result)
    assert "NEWSLETTER_UNSUBSCRIBE_SECRET is not set: [readers] url's unsubscribe links need a secret" in line
    assert not (letter / "sends").exists()


def test_a_rehearsal_without_the_secret_warns_and_its_links_say_they_do_not_work(
        letter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_UNSUBSCRIBE_SECRET")
    code, out = send()
    assert code == 0, out
    assert "NEWSLETTER_UNSUBSCRIBE_SECRET is not set: this rehearsal's unsubscribe links carry a placeholder" in out
    msg = outbox(letter)["ada.lovelace@example.com"]
    assert msg["List-Unsubscribe"].startswith(f"<https://haileyscomet.example.com/r/unsubscribe/{NO_SECRET_TOKEN}>")
