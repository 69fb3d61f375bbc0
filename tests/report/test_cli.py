"""`newsletter report` end to end: real sends to loopback servers, then the report of what they became."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.report import category_for
from newsletter.subscribers.inbox import EventType, Inbox
from tests.fakes import fixtures
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.smtp import FakeSMTP

SLUG = "the-fear-of-entering-the-room"
SECOND = "a-second-look"

sendgrid_env = fixtures.sendgrid_env  # pytest fixtures, shared by the test modules
sendgrid_server = fixtures.sendgrid_server
smtp_env = fixtures.smtp_env
smtp_server = fixtures.smtp_server


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def add_second_issue(folder: Path) -> None:
    text = (folder / "issues" / f"2026-11-23-{SLUG}.md").read_text(encoding="utf-8")
    text = text.replace(f"slug: {SLUG}", f"slug: {SECOND}").replace("title: The Fear of Entering the Room",
                                                                      "title: A Second Look")
    (folder / "issues" / f"2026-11-30-{SECOND}.md").write_text(text.replace("date: 2026-11-23", "date: 2026-11-30"),
                                                               encoding="utf-8")


def send(runner: CliRunner, slug: str) -> None:
    result = runner.invoke(app, ["send", slug, "--yes"])
    assert result.exit_code == 0, result.output


def ledger_ids(folder: Path, slug: str) -> dict[str, str]:
    out = {}
    for line in (folder / "sends" / f"{slug}.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["event"] == "sent":
            out.update(dict.fromkeys(record["to"], record["detail"]))
    return out


def report(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, ["report", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_two_sendgrid_issues_with_category_stats(sendgrid_env: FakeSendGrid, newsletter_dir: Path,
                                                 runner: CliRunner) -> None:
    add_second_issue(newsletter_dir)
    send(runner, SLUG)
    send(runner, SECOND)
    sendgrid_env.add_category_stats(today(), category_for(SLUG), delivered=8, bounces=1, spam_reports=1,
                                    unique_clicks=3, unique_opens=5)
    sendgrid_env.add_category_stats(today(), category_for(SECOND), delivered=9, unique_clicks=1)

    data = json.loads(report(runner, SLUG, "--format", "json"))
    assert data["outcomes"]["source"] == "sendgrid-stats" and data["outcomes"]["unique_per_day"]
    out = data["outcomes"]
    assert (out["delivered"], out["bounced_hard"], out["spam_reports"]) == (8, 1, 1)
    assert data["outcomes"]["opens"] is None  # open tracking is off: opens are not reported at all
    assert data["ledger"]["handed_over"] == 9 and data["rates"]["complaint"]["value"] == 1 / 8
    path, query = sendgrid_env.stats_queries[-1]
    assert path == "/v3/categories/stats" and query["categories"] == [category_for(SLUG)]
    assert query["aggregated_by"] == ["day"] and query["start_date"] == [today()]

    text = report(runner, SLUG)
    assert "delivered" in text and "unique per day" in text and "open tracking is off" in text
    assert "0.3 % limit" in text  # 1 complaint in 8 delivered: far past Gmail's limit, said in words

    every = report(runner)
    rows = [line for line in every.splitlines() if line.startswith(today())]
    assert [("A Second Look" in rows[0]), ("The Fear" in rows[1])] == [True, True]  # newest first
    assert sendgrid_env.stats_queries[-1][0] == "/v3/categories/stats/sums"
    assert "The list, month by month" in every
    overview = json.loads(report(runner, "--format", "json"))
    assert [i["slug"] for i in overview["issues"]] == [SECOND, SLUG]
    assert overview["issues"][0]["outcomes"]["delivered"] == 9
    assert overview["growth"] and sum(m["joined"] for m in overview["growth"]) >= 9


def test_webhook_events_are_joined_to_the_ledger(sendgrid_env: FakeSendGrid, newsletter_dir: Path,
                                                 runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SENDGRID__OPEN_TRACKING", "true")
    send(runner, SLUG)
    ids = ledger_ids(newsletter_dir, SLUG)
    emails = sorted(ids)
    folder = newsletter_dir / "inbox" / "sendgrid"
    folder.mkdir(parents=True)
    fixture = Path(__file__).with_name("webhook_events.jsonl").read_text()
    lines = []
    for line in fixture.splitlines():
        record = json.loads(line)
        n = int(record.pop("reader"))
        record["email"] = emails[n] if n >= 0 else "tester@example.com"
        record["sg_message_id"] = (ids[emails[n]] if n >= 0 else "someothermessage") + ".filter0001.1.0"
        lines.append(json.dumps(record))
    (folder / f"{SLUG}.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.delenv("SENDGRID_API_KEY")

    data = json.loads(report(runner, SLUG, "--format", "json"))
    out = data["outcomes"]
    assert out["source"] == "sendgrid-events" and not out["unique_per_day"]
    assert (out["delivered"], out["bounced_hard"], out["bounced_soft"], out["spam_reports"]) == (7, 1, 1, 1)
    assert (out["unique_clicks"], out["opens"], out["ignored"]) == (2, 2, 1)  # one machine open, one test send
    assert out["top_links"][0] == {"url": "https://haileyscomet.example.com/stalker", "readers": 2}
    assert any("SENDGRID_API_KEY is not set" in line for line in data["unknown"])
    text = report(runner, SLUG)
    assert "upper bound" in text and "<= 2" in text and "550 5.1.1" in text
    assert not any(email in text for email in emails)  # no reader's address in a report


def test_smtp_only_newsletter_gets_a_ledger_report_and_the_mailbox_bounces(
        smtp_env: FakeSMTP, newsletter_dir: Path, runner: CliRunner) -> None:
    send(runner, SLUG)
    inbox = Inbox(newsletter_dir / "inbox")
    inbox.record(EventType.BOUNCED, "mailbox", email="marek@example.net", detail="550 5.1.1 no such user", issue=SLUG)
    inbox.record(EventType.BOUNCED, "mailbox", email="marek@example.net", detail="550 5.1.1 no such user", issue=SLUG)
    inbox.record(EventType.COMPLAINED, "mailbox", email="noah.b@example.com", issue=SLUG)
    inbox.record(EventType.COMPLAINED, "mailbox", email="lena.fischer@example.de", issue="another-issue")
    inbox.close()
    data = json.loads(report(runner, SLUG, "--format", "json"))
    assert data["ledger"]["provider"] == "smtp" and data["ledger"]["handed_over"] == 9
    out = data["outcomes"]
    assert out["source"] == "inbox" and out["delivered"] is None and out["unique_clicks"] is None
    assert (out["bounced_hard"], out["spam_reports"]) == (1, 1)
    assert data["rates"]["complaint"]["base"] == 8  # handed over less bounces: at most delivered
    assert any("SMTP server" in line for line in data["unknown"])
    text = report(runner, SLUG)
    assert "unknown" in text and "past 2 %" in text and "0.3 % limit" in text
    assert "SENDGRID" not in text  # an SMTP sender is never told about a SendGrid key


def test_unreachable_sendgrid_still_prints_the_ledger(sendgrid_env: FakeSendGrid, newsletter_dir: Path,
                                                      runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    send(runner, SLUG)
    monkeypatch.setenv("NEWSLETTER_SENDGRID__HOST", "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.setenv("NEWSLETTER_SENDGRID__TIMEOUT", "2")
    text = report(runner, SLUG)
    assert "handed over" in text and "not known: SendGrid's statistics could not be read" in text
    assert os.environ["SENDGRID_API_KEY"] not in text
    assert report(runner).count("not known: SendGrid's statistics could not be read") == 1


def test_an_issue_never_sent_is_one_clear_error(newsletter_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["report", SLUG])
    assert result.exit_code == 1 and "has not been sent" in result.output and "Traceback" not in result.output
    assert "No issue has been sent yet." in report(runner)
