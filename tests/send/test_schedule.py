"""--schedule: what it accepts, what it refuses before anything is sent, and cancelling too late."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.config import load_settings
from newsletter.errors import SendError
from newsletter.send.schedule import check_schedule, parse_schedule
from tests.fakes import fixtures
from tests.fakes.sendgrid import FakeSendGrid

sendgrid_env = fixtures.sendgrid_env  # a pytest fixture, shared by the test modules
sendgrid_server = fixtures.sendgrid_server  # a pytest fixture, shared by the test modules

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"
NOW = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)


def test_relative_and_iso_times() -> None:
    assert parse_schedule("+2h", NOW) == NOW + dt.timedelta(hours=2)
    assert parse_schedule("+90m", NOW) == NOW + dt.timedelta(minutes=90)
    assert parse_schedule("+1d", NOW) == NOW + dt.timedelta(days=1)
    assert parse_schedule("2026-11-24T08:00+01:00", NOW) == dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)
    assert parse_schedule("2026-11-24T08:00Z", NOW) == dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
    assert parse_schedule("2026-11-24 08:00", NOW).tzinfo is not None  # this computer's zone


def test_what_sendgrid_would_refuse_is_refused_first() -> None:
    settings = load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_DELIVERY__PROVIDER": "sendgrid"})
    assert check_schedule(settings, "+72h", NOW) == NOW + dt.timedelta(hours=72)
    for text, message in (("+73h", "more than 72 hours"), ("2026-11-23T19:00Z", "in the past"),
                          ("tomorrow", "not a time")):
        with pytest.raises(SendError, match=message):
            check_schedule(settings, text, NOW)
    outbox = load_settings(ROOT / "newsletter.toml")
    with pytest.raises(SendError, match="only with the sendgrid provider"):
        check_schedule(outbox, "+2h", NOW)


def test_cancelling_within_ten_minutes_is_refused(sendgrid_env: FakeSendGrid, newsletter_dir: Path,
                                                  runner: CliRunner) -> None:
    assert runner.invoke(app, ["send", SLUG, "--schedule", "+5m", "--yes"]).exit_code == 0
    result = runner.invoke(app, ["cancel", SLUG])
    assert result.exit_code == 1 and "too late to cancel" in result.output
    counts = sendgrid_env.counts()
    assert len(counts) == 9 and set(counts.values()) == {1}  # still on their way
    last = json.loads((newsletter_dir / "sends" / f"{SLUG}.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "sent"  # nothing recorded as cancelled
