"""`newsletter send` and `status` through the CLI, with the outbox provider (the default)."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app

SLUG = "the-fear-of-entering-the-room"
ACTIVE = ["ada.lovelace@example.com", "grace.hopper@example.org", "marek@example.net", "amira.haddad@example.com",
          "sofia.ruiz@example.org", "kenji.watanabe@example.jp", "lena.fischer@example.de", "noah.b@example.com",
          "priya.nair@example.in"]


def outbox(folder: Path) -> dict[str, email.message.EmailMessage]:
    """address -> message, for every .eml of the issue (a duplicate would be a test failure)."""
    found: dict[str, email.message.EmailMessage] = {}
    for path in sorted((folder / "outbox" / SLUG).glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        address = msg["To"].addresses[0].addr_spec
        assert address not in found, f"{address} got two messages"
        found[address] = msg  # type: ignore[assignment]
    return found


def ledger(folder: Path) -> list[dict[str, object]]:
    """The outbox's own record of its rehearsal (the real ledger, sends/, is never written by it)."""
    return [json.loads(line) for line in (folder / "outbox" / SLUG / ".ledger.jsonl").read_text().splitlines()]


def test_quick_start_writes_each_active_subscriber_one_message(newsletter_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 0, result.output
    assert f"Wrote 9 messages to outbox/{SLUG}/; nothing was delivered" in result.output
    assert sorted(outbox(newsletter_dir)) == sorted(ACTIVE)  # nobody unsubscribed, bounced or complained
    assert "status: ready" in (newsletter_dir / "issues" / f"2026-11-23-{SLUG}.md").read_text()  # a rehearsal
    assert not (newsletter_dir / "sends").exists()
    events = [r["event"] for r in ledger(newsletter_dir)]
    assert events[:2] == ["run", "pending"] and events.count("sent") == 9
    again = runner.invoke(app, ["send", SLUG, "--yes"])
    assert again.exit_code == 0, again.output
    assert f"Nothing to write: 9 messages are in outbox/{SLUG}/ already" in again.output
    assert len(list((newsletter_dir / "outbox" / SLUG).glob("*.eml"))) == 9


def test_outbox_files_are_numbered_and_named_by_address(newsletter_dir: Path, runner: CliRunner) -> None:
    runner.invoke(app, ["send", SLUG, "--yes"])
    names = sorted(p.name for p in (newsletter_dir / "outbox" / SLUG).glob("*.eml"))
    assert names[0] == "00001-ada.lovelace@example.com.eml" and names[-1] == "00009-priya.nair@example.in.eml"
    assert not list((newsletter_dir / "outbox").rglob("*.tmp"))


def test_without_a_terminal_it_refuses_unless_yes(newsletter_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["send", SLUG])
    assert result.exit_code == 1 and "not a terminal" in result.output and "--yes" in result.output
    assert not (newsletter_dir / "outbox").exists() and not (newsletter_dir / "sends" / f"{SLUG}.jsonl").exists()


def test_on_a_terminal_it_asks_and_no_means_nothing_sent(newsletter_dir: Path, runner: CliRunner,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("newsletter.cli.send_output.stdin_is_terminal", lambda: True)
    no = runner.invoke(app, ["send", SLUG], input="n\n")
    assert no.exit_code == 1 and "Nothing written." in no.output
    assert f"Write 9 messages to outbox/{SLUG}/ (a rehearsal: nothing is delivered)? [y/N]" in no.output
    assert not (newsletter_dir / "outbox").exists()
    yes = runner.invoke(app, ["send", SLUG], input="y\n")
    assert yes.exit_code == 0 and "Wrote 9 messages" in yes.output and len(outbox(newsletter_dir)) == 9


def test_dry_run_lists_every_recipient_and_sends_nothing(newsletter_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["send", SLUG, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "batch 1: 9 recipients" in result.output and all(a in result.output for a in ACTIVE)
    assert "jon.olsen@example.com" not in result.output
    assert not (newsletter_dir / "outbox").exists() and not (newsletter_dir / "sends").exists()


def test_test_addresses_get_a_marked_copy_and_nothing_is_recorded(newsletter_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["send", SLUG, "--test", "me@example.com", "--test", "ada.lovelace@example.com"])
    assert result.exit_code == 0, result.output
    files = sorted((newsletter_dir / "outbox" / SLUG / "test").glob("*.eml"))
    msgs = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]
    assert [m["Subject"] for m in msgs] == ["[TEST] The Fear of Entering the Room"] * 2
    assert str(msgs[1]["To"]) == "Ada Lovelace <ada.lovelace@example.com>"  # a subscriber's own name
    assert not (newsletter_dir / "sends" / f"{SLUG}.jsonl").exists()
    mixed = runner.invoke(app, ["send", SLUG, "--test", "me@example.com", "--resend-pending"])
    assert mixed.exit_code == 1 and "does not combine" in mixed.output
    assert "status: ready" in (newsletter_dir / "issues" / f"2026-11-23-{SLUG}.md").read_text()


def test_limit_tag_and_status(newsletter_dir: Path, runner: CliRunner) -> None:
    first = runner.invoke(app, ["send", SLUG, "--tag", "film", "--limit", "2", "--yes"])
    assert first.exit_code == 0, first.output
    assert sorted(outbox(newsletter_dir)) == ["amira.haddad@example.com", "grace.hopper@example.org"]
    assert "1 more left for a later send." in first.output and "status is now sent" not in first.output
    status = runner.invoke(app, ["status", SLUG])
    assert status.exit_code == 0, status.output
    assert "sent          0" in status.output and "not yet sent  9 of 9 active subscribers" in status.output
    assert f"rehearsal     2 messages written to outbox/{SLUG}/ (delivered to nobody)" in status.output
    rest = runner.invoke(app, ["send", SLUG, "--yes"])
    assert f"Wrote 7 messages to outbox/{SLUG}/ (2 there already)" in rest.output
    assert sorted(outbox(newsletter_dir)) == sorted(ACTIVE) and "status is now sent" not in rest.output


def test_no_unsubscribe_method_is_refused_before_anything_goes_out(newsletter_dir: Path, runner: CliRunner) -> None:
    config = newsletter_dir / "newsletter.toml"
    config.write_text(config.read_text().replace('unsubscribe_mailto = "unsubscribe@haileyscomet.example.com"', "")
                      .replace('url = "https://haileyscomet.example.com/r/"', ""))
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 1 and "no unsubscribe method configured" in result.output
    assert "Traceback" not in result.output and not (newsletter_dir / "outbox").exists()


def test_an_unsubscribe_token_without_its_secret_is_refused(newsletter_dir: Path, runner: CliRunner,
                                                             monkeypatch: object) -> None:
    env = {"NEWSLETTER_DELIVERY__UNSUBSCRIBE_URL": "https://haileyscomet.example.com/u?e={email}&t={token}",
           "NEWSLETTER_READERS__URL": "", "NEWSLETTER_UNSUBSCRIBE_SECRET": ""}
    result = runner.invoke(app, ["send", SLUG, "--yes"], env=env)
    assert result.exit_code == 1 and "NEWSLETTER_UNSUBSCRIBE_SECRET is not set" in result.output
    ok = runner.invoke(app, ["send", SLUG, "--yes"], env={**env, "NEWSLETTER_UNSUBSCRIBE_SECRET": "s" * 32})
    assert ok.exit_code == 0, ok.output
    msg = outbox(newsletter_dir)["marek@example.net"]
    assert "e=marek@example.net&t=" in msg["List-Unsubscribe"] and msg["List-Unsubscribe-Post"]


def test_a_failed_preflight_check_stops_the_send(newsletter_dir: Path, runner: CliRunner) -> None:
    issue = newsletter_dir / "issues" / f"2026-11-23-{SLUG}.md"
    issue.write_text(issue.read_text() + "\nTODO: finish this paragraph.\n")
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 1 and "leftover placeholder 'TODO'" in result.output
    assert not (newsletter_dir / "outbox").exists()


def test_schedule_needs_sendgrid_and_is_checked_first(newsletter_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["send", SLUG, "--schedule", "+2h", "--yes"])
    assert result.exit_code == 1 and "--schedule works only with the sendgrid provider" in result.output
    assert not (newsletter_dir / "outbox").exists()


def test_names_cannot_inject_headers_or_template_code(newsletter_dir: Path, runner: CliRunner) -> None:
    template = newsletter_dir / "templates" / "email.html"
    template.write_text('{% extends "default/email.html" %}{% block footer %}<p class="hi">Hi {{ first_name }}, '
                        'you are {{ name }} at {{ email }}</p>{{ super() }}{% endblock %}')
    subscribers = newsletter_dir / "subscribers.csv"
    # A name with CR/LF in it never gets this far: the list reader refuses it (issue 9).
    subscribers.write_text("email,name,status,tags,created_at,updated_at,source\n"
                           'evil@example.com,"{{ 7*7 }} <script>x</script> %%EMAIL%%",active,,,,cli\n')
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 0, result.output
    got = outbox(newsletter_dir)
    assert set(got) == {"evil@example.com"}
    evil = got["evil@example.com"]
    assert evil["To"].addresses[0].display_name == "{{ 7*7 }} <script>x</script> %%EMAIL%%"
    html = evil.get_body(("html",)).get_content()  # type: ignore[union-attr]
    greeting = html[html.index('class="hi"'):]
    greeting = greeting[:greeting.index("</p>")]
    assert "Hi {{, you are {{ 7*7 }} &lt;script&gt;x&lt;/script&gt; %%EMAIL%% at evil@example.com" in greeting
    assert "<script>" not in html


def test_send_and_status_have_help_with_an_example(runner: CliRunner) -> None:
    for command in (["send"], ["status"], ["cancel"], ["subscribers", "sync"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Example: newsletter " in result.output
