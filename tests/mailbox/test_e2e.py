"""End to end: an issue sent through SMTP with VERP, two of its recipients bounce into a real Dovecot,
`newsletter subscribers bounces` marks them, and nothing happens twice (not even after a SIGKILL)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from tests.fakes import fixtures, imap
from tests.fakes.imap import MailboxUser
from tests.fakes.smtp import FakeSMTP

smtp_env = fixtures.smtp_env  # a pytest fixture, shared by the test modules
smtp_server = fixtures.smtp_server  # a pytest fixture, shared by the test modules
dovecot = imap.dovecot  # pytest fixtures: one Dovecot for the session, a fresh mailbox user per test
imap_mailbox = imap.imap_mailbox

SLUG = "the-fear-of-entering-the-room"
RETURN_PATH = "bounces@haileyscomet.example.com"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mailbox"
BOUNCED = {"marek@example.net": "postfix-user-unknown.eml", "lena.fischer@example.de": "exim-mailbox-unavailable.eml"}
STRANGER = "postfix-not-on-the-list.eml"  # recognised and moved, but changes no row
LEFT_ALONE = ("auto-reply-out-of-office.eml", "malformed.eml")  # not bounces: stay where they are, unread
ROOT = Path(__file__).resolve().parent.parent.parent


def statuses(folder: Path) -> dict[str, str]:
    with (folder / "subscribers.csv").open(encoding="utf-8-sig") as f:
        return {row["email"]: row["status"] for row in csv.DictReader(f)}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture
def sent(smtp_env: FakeSMTP, imap_mailbox: MailboxUser, runner: CliRunner,
         monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """The issue sent with VERP; each recipient's MAIL FROM and Message-ID; the mailbox configured."""
    env = {"NEWSLETTER_SMTP__RETURN_PATH": RETURN_PATH, "NEWSLETTER_MAILBOX__HOST": "127.0.0.1",
           "NEWSLETTER_MAILBOX__PORT": str(imap_mailbox.port), "NEWSLETTER_MAILBOX__SECURITY": "none",
           "NEWSLETTER_MAILBOX__USERNAME": imap_mailbox.username,
           "NEWSLETTER_MAILBOX__PROCESSED_FOLDER": "Processed", "MAILBOX_PASSWORD": imap_mailbox.password}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 0, result.output
    by_recipient = {}
    for message in smtp_env.handler.messages:
        [to] = message.rcpt_tos
        assert message.mail_from.startswith("bounces+") and message.mail_from.endswith("@haileyscomet.example.com")
        assert message.message()["From"] == "Hailey Tai <hailey@haileyscomet.example.com>"
        by_recipient[to.lower()] = message.mail_from.encode(), str(message.message()["Message-ID"]).encode()
    assert len({mail_from for mail_from, _ in by_recipient.values()}) == 9  # one return path each
    for email, name in BOUNCED.items():  # the fixture DSNs, made about this very send
        raw = fixture(name)
        mail_from, message_id = by_recipient[email]
        assert mail_from in raw  # the fixtures carry the real VERP token for this slug and the test secret
        old_id = raw.split(b"Message-ID: ")[-1].split(b"\r\n")[0]
        imap_mailbox.append(raw.replace(old_id, message_id))
    for name in (STRANGER, *LEFT_ALONE):
        imap_mailbox.append(fixture(name))
    return {email: mail_from for email, (mail_from, _) in by_recipient.items()}


def test_two_bounces_mark_two_readers_once(sent: dict[str, bytes], imap_mailbox: MailboxUser, newsletter_dir: Path,
                                           runner: CliRunner) -> None:
    before = statuses(newsletter_dir)
    dry = runner.invoke(app, ["subscribers", "bounces", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert statuses(newsletter_dir) == before and len(imap_mailbox.messages()) == 5
    result = runner.invoke(app, ["subscribers", "bounces"])
    assert result.exit_code == 0, result.output
    after = statuses(newsletter_dir)
    assert {e: s for e, s in after.items() if before[e] != s} == {e: "bounced" for e in BOUNCED}
    assert SLUG in result.output  # each bounce is tied to its issue
    assert "stranger@example.com: not on the list" in result.output
    assert len(imap_mailbox.messages("Processed")) == 3
    left = imap_mailbox.messages()
    assert len(left) == 2 and all("\\Seen" not in flags for _, flags in left)  # untouched, still unread
    list_bytes = (newsletter_dir / "subscribers.csv").read_bytes()
    again = runner.invoke(app, ["subscribers", "bounces"])
    assert again.exit_code == 0, again.output
    assert (newsletter_dir / "subscribers.csv").read_bytes() == list_bytes
    assert len(imap_mailbox.messages("Processed")) == 3 and len(imap_mailbox.messages()) == 2


KILL_AT_MOVE = """
import os, signal, sys
from newsletter.mailbox import imap
imap.Mailbox.mark_processed = lambda self, uids: os.kill(os.getpid(), signal.SIGKILL)
from newsletter.cli import app
sys.argv = ["newsletter", "subscribers", "bounces"]
app()
"""


def test_killed_between_the_list_write_and_the_move_a_rerun_changes_nothing_more(
        sent: dict[str, bytes], imap_mailbox: MailboxUser, newsletter_dir: Path, runner: CliRunner) -> None:
    before = statuses(newsletter_dir)
    killed = subprocess.run([sys.executable, "-c", KILL_AT_MOVE], cwd=newsletter_dir, env={**os.environ,
                            "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=60)
    assert killed.returncode == -9, killed.stderr.decode()
    after = statuses(newsletter_dir)
    assert {e: s for e, s in after.items() if before[e] != s} == {e: "bounced" for e in BOUNCED}
    assert len(imap_mailbox.messages()) == 5  # nothing moved
    list_bytes = (newsletter_dir / "subscribers.csv").read_bytes()
    inbox = sorted(p.name for p in (newsletter_dir / "inbox").rglob("*") if p.is_file())
    rerun = runner.invoke(app, ["subscribers", "bounces"])
    assert rerun.exit_code == 0, rerun.output
    assert (newsletter_dir / "subscribers.csv").read_bytes() == list_bytes
    assert sorted(p.name for p in (newsletter_dir / "inbox").rglob("*") if p.is_file()) == inbox
    assert len(imap_mailbox.messages("Processed")) == 3 and len(imap_mailbox.messages()) == 2


@pytest.mark.parametrize(("env", "words"), [
    ({"MAILBOX_PASSWORD": "not-the-password"}, "refused"),
    ({"NEWSLETTER_MAILBOX__FOLDER": "No Such Folder"}, "No Such Folder"),
    ({"NEWSLETTER_MAILBOX__SECURITY": "tls"}, "TLS"),  # the plain port does not speak TLS
    ("tls-untrusted", "certificate"),
])
def test_a_mailbox_that_cannot_be_read_is_one_line_and_changes_nothing(
        sent: dict[str, bytes], imap_mailbox: MailboxUser, newsletter_dir: Path, runner: CliRunner,
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str] | str, words: str) -> None:
    if env == "tls-untrusted":  # the IMAPS port, with a certificate nobody here trusts
        env = {"NEWSLETTER_MAILBOX__SECURITY": "tls", "NEWSLETTER_MAILBOX__PORT": str(imap_mailbox.tls_port)}
    assert isinstance(env, dict)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    list_bytes = (newsletter_dir / "subscribers.csv").read_bytes()
    result = runner.invoke(app, ["subscribers", "bounces"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and words.lower() in lines[0].lower() and "Traceback" not in result.output
    assert len([line for line in lines if line.startswith("error")]) <= 1
    assert "not-the-password" not in result.output and imap_mailbox.password not in result.output
    assert (newsletter_dir / "subscribers.csv").read_bytes() == list_bytes
    assert len(imap_mailbox.messages()) == 5 and imap_mailbox.messages("Processed") == []
