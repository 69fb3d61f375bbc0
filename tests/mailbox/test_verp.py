"""VERP: each recipient's own MAIL FROM, opaque, and the way back from a bounce to a send."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.config import load_settings
from newsletter.mailbox.sends import load_sends
from newsletter.mailbox.verp import (
    TOKEN_CHARS,
    recipient_from_verp,
    token_for,
    token_in,
    verp_address,
)
from newsletter.subscribers.schema import email_key
from tests.conftest import TEST_UNSUBSCRIBE_SECRET
from tests.fakes import fixtures
from tests.fakes.smtp import FakeSMTP

smtp_env = fixtures.smtp_env  # a pytest fixture, shared by the test modules
smtp_server = fixtures.smtp_server  # a pytest fixture, shared by the test modules

SLUG = "the-fear-of-entering-the-room"
RETURN_PATH = "bounces@haileyscomet.example.com"
SECRETS = ("newest-secret", "older-secret")


def test_the_token_hides_the_address_and_fits_a_local_part() -> None:
    token = token_for(SECRETS, "ada.lovelace@example.com", "issue-one")
    address = verp_address(RETURN_PATH, token)
    assert address == f"bounces+{token}@haileyscomet.example.com"
    assert len(token) == TOKEN_CHARS and token.isalnum() and token.islower()
    assert "ada" not in address and "lovelace" not in address
    assert token != token_for(SECRETS, "ada.lovelace@example.com", "issue-two")  # names the send too
    assert token != token_for(("another-secret",), "ada.lovelace@example.com", "issue-one")


def test_the_way_back_finds_issue_and_address_under_any_secret_and_any_case() -> None:
    sends = {"issue-one": ["grace@example.org", "ada.lovelace@example.com"], "issue-two": ["ada.lovelace@example.com"]}
    old = verp_address(RETURN_PATH, token_for(SECRETS[1:], "ada.lovelace@example.com", "issue-two"))
    assert recipient_from_verp(old, RETURN_PATH, SECRETS, sends) == ("issue-two", "ada.lovelace@example.com")
    shouted = verp_address(RETURN_PATH, token_for(SECRETS, "grace@example.org", "issue-one")).upper()
    assert recipient_from_verp(f"<{shouted}>", RETURN_PATH, SECRETS, sends) == ("issue-one", "grace@example.org")


@pytest.mark.parametrize("address", [
    "bounces@haileyscomet.example.com",  # no token
    "bounces+" + "a" * TOKEN_CHARS + "@haileyscomet.example.com",  # a forged token
    "bounces+" + "a" * (TOKEN_CHARS - 1) + "@haileyscomet.example.com",  # too short
    "other+" + "a" * TOKEN_CHARS + "@haileyscomet.example.com",  # another local part
    "bounces+" + "a" * TOKEN_CHARS + "@evil.example",  # another domain
    "", "\x00\r\n", "x" * 100_000,
])
def test_an_address_that_is_no_token_of_ours_stands_for_nobody(address: str) -> None:
    sends = {"issue-one": ["ada.lovelace@example.com"]}
    assert recipient_from_verp(address, RETURN_PATH, SECRETS, sends) is None


def test_a_token_sent_to_someone_not_in_the_ledger_stands_for_nobody() -> None:
    address = verp_address(RETURN_PATH, token_for(SECRETS, "stranger@example.com", "issue-one"))
    assert token_in(address, RETURN_PATH) is not None
    assert recipient_from_verp(address, RETURN_PATH, SECRETS, {"issue-one": ["ada@example.com"]}) is None


@given(st.emails(), st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=80))
def test_every_address_of_every_issue_comes_back(email: str, issue: str) -> None:
    key = email_key(email)
    address = verp_address(RETURN_PATH, token_for(SECRETS, key, issue))
    assert recipient_from_verp(address, RETURN_PATH, SECRETS, {issue: [key]}) == (issue, key)


def _verp_env(monkeypatch: pytest.MonkeyPatch, verp: str = "true") -> None:
    monkeypatch.setenv("NEWSLETTER_SMTP__RETURN_PATH", RETURN_PATH)
    monkeypatch.setenv("NEWSLETTER_SMTP__VERP", verp)


def test_a_send_gives_each_recipient_its_own_mail_from_and_keeps_the_from_header(
        smtp_env: FakeSMTP, newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    _verp_env(monkeypatch)
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 0, result.output
    received = smtp_env.handler.messages
    assert len(received) == 9 and len({m.mail_from for m in received}) == 9
    sends = load_sends(load_settings(newsletter_dir / "newsletter.toml"))
    for message in received:
        [to] = message.rcpt_tos
        assert message.mail_from.startswith("bounces+") and message.mail_from.endswith("@haileyscomet.example.com")
        assert to.split("@")[0] not in message.mail_from
        assert message.message()["From"] == "Hailey Tai <hailey@haileyscomet.example.com>"
        back = sends.by_verp(message.mail_from, RETURN_PATH, (TEST_UNSUBSCRIBE_SECRET,))
        assert back == (SLUG, to.lower())
        assert sends.by_message_id(str(message.message()["Message-ID"])) == (SLUG, to.lower())


def test_without_verp_the_return_path_is_the_one_mail_from(
        smtp_env: FakeSMTP, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    _verp_env(monkeypatch, "false")
    assert runner.invoke(app, ["send", SLUG, "--yes"]).exit_code == 0
    assert {m.mail_from for m in smtp_env.handler.messages} == {RETURN_PATH}


def test_without_a_return_path_mail_from_is_the_sender_as_before(smtp_env: FakeSMTP, runner: CliRunner) -> None:
    assert runner.invoke(app, ["send", SLUG, "--yes"]).exit_code == 0
    assert {m.mail_from for m in smtp_env.handler.messages} == {"hailey@haileyscomet.example.com"}


def test_verp_without_the_secret_is_refused_before_anything_goes_out(
        smtp_env: FakeSMTP, newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    _verp_env(monkeypatch)
    monkeypatch.setenv("NEWSLETTER_READERS__URL", "")  # so only VERP needs the secret
    monkeypatch.delenv("NEWSLETTER_UNSUBSCRIBE_SECRET")
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 1
    assert "NEWSLETTER_UNSUBSCRIBE_SECRET is not set: [smtp] verp" in result.output
    assert "Traceback" not in result.output and smtp_env.handler.messages == []


@pytest.mark.parametrize(("value", "message"), [
    ("Bounces <bounces@example.com>", "must be a bare address"),
    ("bounces", "must be a bare address"),
    ("b" * 40 + "@example.com", "too long for a VERP token"),
])
def test_a_bad_return_path_is_named(newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
                                    value: str, message: str) -> None:
    monkeypatch.setenv("NEWSLETTER_SMTP__RETURN_PATH", value)
    result = runner.invoke(app, ["send", SLUG, "--dry-run"])
    assert result.exit_code == 1
    assert "NEWSLETTER_SMTP__RETURN_PATH" in result.output and message in result.output


def test_outbox_rehearsals_are_not_sends(newsletter_dir: Path) -> None:
    ledger = newsletter_dir / "sends" / f"{SLUG}.jsonl"
    ledger.parent.mkdir(exist_ok=True)
    records = [{"event": "run", "run": "r1", "at": "2026-01-01T00:00:00Z", "provider": "outbox", "issue": SLUG},
               {"event": "sent", "run": "r1", "batch": 1, "at": "2026-01-01T00:00:00Z", "to": ["a@example.com"],
                "detail": "<x@y>"}]
    ledger.write_text("".join(json.dumps(r) + "\n" for r in records))
    sends = load_sends(load_settings(newsletter_dir / "newsletter.toml"))
    assert sends.recipients == {} and sends.by_message_id("<x@y>") is None
