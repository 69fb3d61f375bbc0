"""Whole sends through the real `sendgrid` library to a SendGrid-speaking server on 127.0.0.1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.cli.send import credentials_for
from newsletter.config import load_settings
from newsletter.providers import RetryPolicy, State
from newsletter.send.ledger import read_ledger
from newsletter.send.plan import SendOptions, prepare_send, run_send
from tests.fakes import fixtures
from tests.fakes.fixtures import API_KEY
from tests.fakes.sendgrid import FakeSendGrid

SLUG = "the-fear-of-entering-the-room"
ACTIVE = {"ada.lovelace@example.com", "grace.hopper@example.org", "marek@example.net", "amira.haddad@example.com",
          "sofia.ruiz@example.org", "kenji.watanabe@example.jp", "lena.fischer@example.de", "noah.b@example.com",
          "priya.nair@example.in"}

sendgrid_env = fixtures.sendgrid_env  # a pytest fixture, shared by the test modules
sendgrid_server = fixtures.sendgrid_server  # a pytest fixture, shared by the test modules
WINDOWS = [1, 4, 16]  # [sendgrid] concurrency: one request at a time, and windows of requests in flight


@pytest.fixture(params=WINDOWS, ids=lambda n: f"window{n}")
def window(request: pytest.FixtureRequest, newsletter_dir: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the test with this many requests in flight at once."""
    monkeypatch.setenv("NEWSLETTER_SENDGRID__CONCURRENCY", str(request.param))
    return int(request.param)


def everything_written(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def library_send(options: SendOptions | None = None) -> object:
    """A send through the library with a fast retry policy (the CLI waits for real)."""
    settings = load_settings()
    credentials = credentials_for(settings)
    plan = prepare_send(settings, SLUG, options or SendOptions(), credentials)
    return run_send(plan, credentials, policy=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.02,
                                                         sleep=lambda s: None))


def test_every_active_subscriber_gets_exactly_one_and_nobody_else(
        sendgrid_env: FakeSendGrid, newsletter_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 0, result.output
    assert sendgrid_env.counts() == dict.fromkeys(ACTIVE, 1)
    got = sendgrid_env.inbox("ada.lovelace@example.com")[0]
    assert got.name == "Ada Lovelace" and got.custom_args == {"newsletter_issue": SLUG}
    assert "ada.lovelace@example.com" in got.html and "%%" not in got.html + got.text
    sent = [r for r in map(json.loads, (newsletter_dir / "sends" / f"{SLUG}.jsonl").read_text().splitlines())
            if r["event"] == "sent"]
    assert sent[0]["detail"].startswith("fake") and len(sent[0]["to"]) == 9
    assert runner.invoke(app, ["send", SLUG, "--yes"]).exit_code == 0
    assert sendgrid_env.mail_requests == 1


def test_faults_every_few_requests_still_serve_everyone_once(
        sendgrid_env: FakeSendGrid, newsletter_dir: Path, monkeypatch: pytest.MonkeyPatch, window: int) -> None:
    monkeypatch.setenv("NEWSLETTER_SENDGRID__BATCH_SIZE", "2")
    sendgrid_env.fault_every = (2, ("429", "500", "503"))
    sendgrid_env.reset_in = 0
    report = library_send()
    assert report.sent == 9 and not report.failed and not report.in_doubt  # type: ignore[attr-defined]
    assert sendgrid_env.counts() == dict.fromkeys(ACTIVE, 1)
    assert sendgrid_env.mail_requests > 5  # the faults really happened


def test_dropped_connections_are_in_doubt_never_silently_retried(
        sendgrid_env: FakeSendGrid, newsletter_dir: Path, runner: CliRunner,
        monkeypatch: pytest.MonkeyPatch, window: int) -> None:
    monkeypatch.setenv("NEWSLETTER_SENDGRID__BATCH_SIZE", "4")
    sendgrid_env.faults_for = {"sofia.ruiz@example.org": "drop_after"}  # SendGrid accepted batch 2, no answer came
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 1 and "in doubt 4" in result.output and "--resend-pending" in result.output
    assert sendgrid_env.counts() == dict.fromkeys(ACTIVE, 1)
    again = runner.invoke(app, ["send", SLUG, "--yes"])
    assert again.exit_code == 1 and "4 in doubt" in again.output and "in doubt 4" in again.output
    assert sendgrid_env.counts() == dict.fromkeys(ACTIVE, 1) and sendgrid_env.mail_requests == 3
    status = runner.invoke(app, ["status", SLUG])
    assert "in doubt      4" in status.output and "sent          5" in status.output


def test_resend_pending_completes_a_list_whose_answer_was_lost(
        sendgrid_env: FakeSendGrid, newsletter_dir: Path, runner: CliRunner,
        monkeypatch: pytest.MonkeyPatch, window: int) -> None:
    monkeypatch.setenv("NEWSLETTER_SENDGRID__BATCH_SIZE", "4")
    sendgrid_env.faults_for = {"ada.lovelace@example.com": "drop_before"}  # batch 1 died before SendGrid took it
    assert runner.invoke(app, ["send", SLUG, "--yes"]).exit_code == 1
    assert len(sendgrid_env.counts()) == 5
    done = runner.invoke(app, ["send", SLUG, "--yes", "--resend-pending"])
    assert done.exit_code == 0, done.output
    assert sendgrid_env.counts() == dict.fromkeys(ACTIVE, 1)
    assert "status: sent" in (newsletter_dir / "issues" / f"2026-11-23-{SLUG}.md").read_text()


def test_a_refused_key_stops_at_once_names_the_variable_and_leaks_nothing(
        sendgrid_env: FakeSendGrid, newsletter_dir: Path, runner: CliRunner, window: int) -> None:
    wrong = "SG.another-secret-key-never-printed-42"
    result = runner.invoke(app, ["send", SLUG, "--yes"], env={"SENDGRID_API_KEY": wrong})
    assert result.exit_code == 1 and "SENDGRID_API_KEY" in result.output and "401" in result.output
    assert "Traceback" not in result.output
    ok = runner.invoke(app, ["send", SLUG, "--yes"])  # the recipients went back to "not sent"
    assert ok.exit_code == 0 and sendgrid_env.counts() == dict.fromkeys(ACTIVE, 1)
    written = everything_written(newsletter_dir)
    for secret in (wrong, API_KEY):
        assert secret not in result.output + ok.output and secret not in written


def test_the_api_key_never_appears_in_output_ledger_or_errors(
        sendgrid_env: FakeSendGrid, newsletter_dir: Path, runner: CliRunner,
        monkeypatch: pytest.MonkeyPatch, window: int) -> None:
    monkeypatch.setenv("NEWSLETTER_SENDGRID__BATCH_SIZE", "3")
    sendgrid_env.faults = {1: "429", 2: "drop_after"}
    sendgrid_env.reject = {"marek@example.net"}
    outputs = [runner.invoke(app, args) for args in (["send", SLUG, "--dry-run"], ["send", SLUG, "--yes"],
                                                     ["status", SLUG], ["send", SLUG, "--test", "x@example.com"],
                                                     ["send", SLUG, "--schedule", "+100h", "--yes"])]
    assert "Does not contain a valid address" in outputs[1].output
    text = "".join(r.output for r in outputs) + "".join(str(r.exception) for r in outputs)
    assert API_KEY not in text and API_KEY not in everything_written(newsletter_dir)
    assert API_KEY[3:20] not in text


def test_a_key_refused_mid_send_stops_new_requests_and_the_rest_go_back_to_not_sent(
        sendgrid_env: FakeSendGrid, newsletter_dir: Path, runner: CliRunner,
        monkeypatch: pytest.MonkeyPatch, window: int) -> None:
    monkeypatch.setenv("NEWSLETTER_SENDGRID__BATCH_SIZE", "1")
    sendgrid_env.faults = {3: "401"}  # the key was revoked while the send ran
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 1 and "SENDGRID_API_KEY" in result.output
    ledger = read_ledger(newsletter_dir / "sends" / f"{SLUG}.jsonl")
    first = sendgrid_env.counts()
    assert not ledger.in_doubt() and set(ledger.emails(State.SENT)) == set(first)
    # What was in flight when the 401 came was recorded; the refused batch is back to not sent.
    # (That nothing new starts after it is shown, without a race, in tests/send/test_window.py.)
    assert len(first) < len(ACTIVE) and ledger.emails(State.UNSENT)
    again = runner.invoke(app, ["send", SLUG, "--yes"])  # no flag needed: the rest were never handed over
    assert again.exit_code == 0, again.output
    assert sendgrid_env.counts() == dict.fromkeys(ACTIVE, 1)


def test_a_group_unsubscribe_link_reaches_each_reader_working(
        sendgrid_env: FakeSendGrid, newsletter_dir: Path, runner: CliRunner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SENDGRID__UNSUBSCRIBE_GROUP_ID", "777")
    config = newsletter_dir / "newsletter.toml"
    config.write_text(config.read_text().replace('unsubscribe_mailto = "unsubscribe@haileyscomet.example.com"', "")
                      .replace('url = "https://haileyscomet.example.com/r/"', ""))  # the group link alone
    assert runner.invoke(app, ["send", SLUG, "--yes"]).exit_code == 0
    got = sendgrid_env.inbox("noah.b@example.com")[0]
    link = f"{sendgrid_env.url}/asm/unsubscribe?group=777&e=noah.b@example.com"
    assert f'href="{link}"' in got.html and link in got.text and "asm_group" not in got.html


def test_schedule_then_cancel(sendgrid_env: FakeSendGrid, newsletter_dir: Path, runner: CliRunner) -> None:
    far = runner.invoke(app, ["send", SLUG, "--schedule", "+73h", "--yes"])
    assert far.exit_code == 1 and "more than 72 hours" in far.output and sendgrid_env.mail_requests == 0
    result = runner.invoke(app, ["send", SLUG, "--schedule", "+2h", "--yes"])
    assert result.exit_code == 0, result.output
    assert "to cancel: newsletter cancel" in result.output
    got = sendgrid_env.inbox("ada.lovelace@example.com")[0]
    assert got.batch_id in sendgrid_env.batches and got.send_at is not None
    cancelled = runner.invoke(app, ["cancel", SLUG])
    assert cancelled.exit_code == 0, cancelled.output
    assert "9 recipients back to not sent" in cancelled.output and sendgrid_env.counts() == {}
    assert "status: ready" in (newsletter_dir / "issues" / f"2026-11-23-{SLUG}.md").read_text()
    assert runner.invoke(app, ["cancel", SLUG]).exit_code == 1  # nothing left to cancel
    now = runner.invoke(app, ["send", SLUG, "--yes"])
    assert now.exit_code == 0 and sendgrid_env.counts() == dict.fromkeys(ACTIVE, 1)


def test_subscribers_sync_pages_through_suppressions_and_marks_the_csv(
        sendgrid_env: FakeSendGrid, newsletter_dir: Path, runner: CliRunner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SENDGRID__UNSUBSCRIBE_GROUP_ID", "9")
    noise = [{"email": f"stranger{i}@example.com", "created": 1_790_000_000 + i} for i in range(1100)]
    ada = {"email": "Ada.Lovelace@example.com", "created": 1_790_000_500}
    sendgrid_env.suppressions["unsubscribes"] = [*noise, ada]
    sendgrid_env.suppressions["bounces"] = [{"email": "marek@example.net", "created": 1_790_000_000,
                                             "reason": "550", "status": "5.1.1"}]
    sendgrid_env.suppressions["spam_reports"] = [{"email": "priya.nair@example.in", "created": 1_790_000_000,
                                                  "ip": "10.0.0.1"}]
    sendgrid_env.groups[9] = ["noah.b@example.com"]
    result = runner.invoke(app, ["subscribers", "sync"])
    assert result.exit_code == 0, result.output
    assert "4 subscribers changed" in result.output and "marek@example.net: active -> bounced" in result.output
    rows = (newsletter_dir / "subscribers.csv").read_text()
    for email, status in (("ada.lovelace@example.com", "unsubscribed"), ("marek@example.net", "bounced"),
                          ("priya.nair@example.in", "complained"), ("noah.b@example.com", "unsubscribed")):
        assert f"{email}," in rows and status in next(line for line in rows.splitlines() if line.startswith(email))
    offsets = [int(q["offset"]) for kind, q in sendgrid_env.suppression_queries if kind == "unsubscribes"]
    assert offsets == [0, 500, 1000]  # paginated; the short third page was the last
    assert "stranger" not in rows  # nobody is added
    again = runner.invoke(app, ["subscribers", "sync"])
    assert again.exit_code == 0 and "0 subscribers changed" in again.output
    assert "start_time" in sendgrid_env.suppression_queries[-1][1]  # only what is new since the last sync


def test_no_key_means_no_send_and_no_sync(newsletter_dir: Path, runner: CliRunner,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    send = runner.invoke(app, ["send", SLUG, "--provider", "sendgrid", "--yes"])
    sync = runner.invoke(app, ["subscribers", "sync"])
    for result in (send, sync):
        assert result.exit_code == 1 and "SENDGRID_API_KEY is not set" in result.output
    assert not os.path.exists(newsletter_dir / "sends" / f"{SLUG}.jsonl")
