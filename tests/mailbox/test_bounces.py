"""`newsletter subscribers bounces` against a real Dovecot: recognise, record, apply, then move; errors are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli.app import app
from newsletter.subscribers.inbox import Inbox
from newsletter.subscribers.store import load_subscribers
from tests.fakes import imap
from tests.fakes.imap import MailboxUser
from tests.helpers import one_error_line
from tests.mailbox import samples

dovecot = imap.dovecot  # pytest fixtures, shared by the test modules
imap_mailbox = imap.imap_mailbox

ISSUE = "the-fear-of-entering-the-room"


def configure(root: Path, user: MailboxUser, monkeypatch: pytest.MonkeyPatch, **keys: object) -> None:
    """Point newsletter.toml's [mailbox] at the test user (plain IMAP on loopback unless keys say)."""
    values = {"host": "127.0.0.1", "port": user.port, "security": "none", "username": user.username,
              "processed_folder": "Processed", **keys}
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
    with open(root / "newsletter.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[mailbox]\n" + lines)
    monkeypatch.setenv("MAILBOX_PASSWORD", user.password)


def ledger(folder: Path, email: str, message_id: str) -> None:
    """A send ledger in which `email` was sent the issue with this Message-ID."""
    (folder / "sends").mkdir(exist_ok=True)
    records = [{"event": "run", "run": "r1", "at": "2026-11-29T09:00:00Z", "provider": "smtp", "issue": ISSUE},
               {"event": "sent", "run": "r1", "batch": 1, "at": "2026-11-29T09:00:01Z", "to": [email],
                "detail": message_id}]
    (folder / "sends" / f"{ISSUE}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def statuses(folder: Path) -> dict[str, str]:
    return {s.email: s.status for s in load_subscribers(folder / "subscribers.csv").rows}


def run(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, ["subscribers", "bounces", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_bounce_complaint_and_unsubscribe_change_the_list_and_are_moved(
        newsletter_dir: Path, imap_mailbox: MailboxUser, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(newsletter_dir, imap_mailbox, monkeypatch)
    ledger(newsletter_dir, "ada.lovelace@example.com", samples.NEWSLETTER_ID)
    for message in (samples.postfix_dsn(), samples.arf(original_id="<other@x>"), samples.unsubscribe_mail(),
                    samples.auto_reply()):
        imap_mailbox.append(message)
    before = statuses(newsletter_dir)

    out = run(runner)

    after = statuses(newsletter_dir)
    assert after["ada.lovelace@example.com"] == "bounced"
    assert after["marek@example.net"] == "complained"
    assert after["amira.haddad@example.com"] == "unsubscribed"
    assert {k: v for k, v in after.items() if k not in ("ada.lovelace@example.com", "marek@example.net",
                                                         "amira.haddad@example.com")} == \
        {k: v for k, v in before.items() if k not in ("ada.lovelace@example.com", "marek@example.net",
                                                      "amira.haddad@example.com")}
    assert "ada.lovelace@example.com: bounced (was active) [the-fear-of-entering-the-room]" in out
    assert "'Undelivered Mail Returned to Sender'" in out and "2026-11-29 10:00" in out
    assert "Moved 3 messages to Processed." in out
    [(raw, flags)] = imap_mailbox.messages()  # the auto-reply stays, still unread
    assert b"Automatic reply" in raw and "\\Seen" not in flags
    assert len(imap_mailbox.messages("Processed")) == 3
    events = {e.email: e for e, _ in Inbox(newsletter_dir / "inbox").scan()}
    assert events["ada.lovelace@example.com"].source == "mailbox"
    assert events["ada.lovelace@example.com"].issue == ISSUE  # the Message-ID named the send
    assert events["ada.lovelace@example.com"].detail.startswith("5.1.1")


def test_a_dry_run_changes_nothing_anywhere(
        newsletter_dir: Path, imap_mailbox: MailboxUser, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(newsletter_dir, imap_mailbox, monkeypatch)
    imap_mailbox.append(samples.postfix_dsn())
    before = (newsletter_dir / "subscribers.csv").read_bytes()

    out = run(runner, "--dry-run")

    assert "ada.lovelace@example.com: bounced (was active)" in out
    assert "Dry run" in out
    assert (newsletter_dir / "subscribers.csv").read_bytes() == before
    assert not (newsletter_dir / "inbox" / "events.jsonl").exists()
    [(_, flags)] = imap_mailbox.messages()
    assert "\\Seen" not in flags and "Processed" not in flags


def test_a_message_left_behind_by_a_crash_changes_nothing_twice(
        newsletter_dir: Path, imap_mailbox: MailboxUser, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """The list written, the move not done (kill -9 in between): the rerun only moves the message."""
    configure(newsletter_dir, imap_mailbox, monkeypatch)
    imap_mailbox.append(samples.postfix_dsn())
    run(runner)
    imap_mailbox.append(samples.postfix_dsn())  # the same message, back as if it had never been moved
    events = (newsletter_dir / "inbox" / "events.jsonl").read_bytes()
    listed = (newsletter_dir / "subscribers.csv").read_bytes()

    out = run(runner)

    assert "already bounced" in out
    assert (newsletter_dir / "inbox" / "events.jsonl").read_bytes() == events
    assert (newsletter_dir / "subscribers.csv").read_bytes() == listed
    assert imap_mailbox.messages() == []


def test_soft_bounces_count_until_the_threshold(
        newsletter_dir: Path, imap_mailbox: MailboxUser, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(newsletter_dir, imap_mailbox, monkeypatch, soft_bounces=2, soft_bounce_days=15)
    imap_mailbox.append(samples.postfix_dsn(status="4.2.2", message_id="<s1@mx>",
                                            date="Sun, 1 Nov 2026 10:00:00 +0000"))
    out = run(runner)
    assert "soft bounce 1 of 2 in 15 days" in out
    assert statuses(newsletter_dir)["ada.lovelace@example.com"] == "active"
    imap_mailbox.append(samples.postfix_dsn(status="4.2.2", message_id="<s2@mx>",
                                            date="Sun, 29 Nov 2026 10:00:00 +0000"))  # 28 days later
    out = run(runner)
    assert "soft bounce 1 of 2" in out  # the first is outside the window
    assert statuses(newsletter_dir)["ada.lovelace@example.com"] == "active"
    imap_mailbox.append(samples.postfix_dsn(status="4.2.2", message_id="<s3@mx>",
                                            date="Mon, 30 Nov 2026 10:00:00 +0000"))
    out = run(runner)
    assert "bounced (was active): 2 soft bounces in 15 days" in out
    assert statuses(newsletter_dir)["ada.lovelace@example.com"] == "bounced"
    history = json.loads((newsletter_dir / "inbox" / "soft_bounces.json").read_text())["soft_bounces"]
    assert len(history) == 3


def test_without_a_processed_folder_messages_are_flagged_and_skipped_next_time(
        newsletter_dir: Path, imap_mailbox: MailboxUser, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(newsletter_dir, imap_mailbox, monkeypatch, processed_folder="")
    imap_mailbox.append(samples.postfix_dsn())
    assert "Flagged 1 message as processed." in run(runner)
    [(_, flags)] = imap_mailbox.messages()
    assert "$NewsletterProcessed" in flags and "\\Seen" not in flags
    assert "0 changed the list" in run(runner) and "1 message read" not in run(runner)


def test_a_bounce_for_nobody_on_the_list_and_one_naming_nobody(
        newsletter_dir: Path, imap_mailbox: MailboxUser, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(newsletter_dir, imap_mailbox, monkeypatch)
    imap_mailbox.append(samples.postfix_dsn(recipient="stranger@example.com", original_id="<x@y>"))
    imap_mailbox.append(b"From: MAILER-DAEMON@mx.example\r\nSubject: Undeliverable: hello\r\n"
                        b"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <vague@mx>\r\n\r\nIt failed.\r\n")
    before = (newsletter_dir / "subscribers.csv").read_bytes()
    out = run(runner)
    assert "stranger@example.com: not on the list" in out
    assert "not attributed: 2026-11-29 10:00 'Undeliverable: hello'" in out
    assert (newsletter_dir / "subscribers.csv").read_bytes() == before
    [(raw, _)] = imap_mailbox.messages()  # the vague one stays for a person to read
    assert b"vague" in raw


def test_a_wrong_password_is_one_line_and_changes_nothing(
        newsletter_dir: Path, imap_mailbox: MailboxUser, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(newsletter_dir, imap_mailbox, monkeypatch)
    monkeypatch.setenv("MAILBOX_PASSWORD", "not-the-password")
    imap_mailbox.append(samples.postfix_dsn())
    line = one_error_line(runner.invoke(app, ["subscribers", "bounces"]))
    assert "login as" in line and "refused" in line and "not-the-password" not in line
    assert not (newsletter_dir / "inbox").exists()


def test_no_such_folder(newsletter_dir: Path, imap_mailbox: MailboxUser, runner: CliRunner,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    configure(newsletter_dir, imap_mailbox, monkeypatch, folder="Bounces")
    assert "no such folder: 'Bounces'" in one_error_line(runner.invoke(app, ["subscribers", "bounces"]))
    monkeypatch.setenv("NEWSLETTER_MAILBOX__FOLDER", "INBOX")
    monkeypatch.setenv("NEWSLETTER_MAILBOX__PROCESSED_FOLDER", "Done")
    assert "no such folder: 'Done'" in one_error_line(runner.invoke(app, ["subscribers", "bounces"]))


def test_tls_with_the_servers_certificate_and_without(
        newsletter_dir: Path, imap_mailbox: MailboxUser, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(newsletter_dir, imap_mailbox, monkeypatch, security="tls", port=imap_mailbox.tls_port)
    line = one_error_line(runner.invoke(app, ["subscribers", "bounces"]))
    assert "TLS failed" in line and "not trusted" in line
    monkeypatch.setenv("NEWSLETTER_MAILBOX__CA_FILE", str(imap_mailbox.cert))
    assert "0 messages read" in run(runner)
    monkeypatch.setenv("NEWSLETTER_MAILBOX__SECURITY", "starttls")
    monkeypatch.setenv("NEWSLETTER_MAILBOX__PORT", str(imap_mailbox.port))
    assert "0 messages read" in run(runner)


def test_unreachable_and_unset(newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes.smtp import free_port

    assert "[mailbox] host is not set" in one_error_line(runner.invoke(app, ["subscribers", "bounces"]))
    monkeypatch.setenv("NEWSLETTER_MAILBOX__HOST", "127.0.0.1")
    monkeypatch.setenv("NEWSLETTER_MAILBOX__USERNAME", "hailey")
    monkeypatch.setenv("NEWSLETTER_MAILBOX__PORT", str(free_port()))
    assert "MAILBOX_PASSWORD is not set" in one_error_line(runner.invoke(app, ["subscribers", "bounces"]))
    monkeypatch.setenv("MAILBOX_PASSWORD", "x")
    assert "cannot connect" in one_error_line(runner.invoke(app, ["subscribers", "bounces"]))


def test_security_none_only_on_loopback(newsletter_dir: Path, runner: CliRunner,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_MAILBOX__HOST", "imap.example.com")
    monkeypatch.setenv("NEWSLETTER_MAILBOX__SECURITY", "none")
    assert "only allowed on 127.0.0.1" in one_error_line(runner.invoke(app, ["subscribers", "bounces"]))


def test_the_verp_token_names_the_recipient_before_the_report_does(
        newsletter_dir: Path, imap_mailbox: MailboxUser, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """A DSN about a forwarding address (not on the list) still reaches the reader the token was made for."""
    from newsletter.mailbox.verp import token_for, verp_address
    from tests.conftest import TEST_UNSUBSCRIBE_SECRET

    configure(newsletter_dir, imap_mailbox, monkeypatch)
    monkeypatch.setenv("NEWSLETTER_SMTP__RETURN_PATH", samples.RETURN_PATH)
    ledger(newsletter_dir, "grace.hopper@example.org", "<grace-1@haileyscomet.example.com>")
    address = verp_address(samples.RETURN_PATH, token_for([TEST_UNSUBSCRIBE_SECRET], "grace.hopper@example.org",
                                                          ISSUE))
    imap_mailbox.append(samples.postfix_dsn(recipient="grace@forwarded.example", to=address, original_id="<?@x>"))

    out = run(runner)

    assert f"grace.hopper@example.org: bounced (was active) [{ISSUE}]" in out
    assert statuses(newsletter_dir)["grace.hopper@example.org"] == "bounced"
