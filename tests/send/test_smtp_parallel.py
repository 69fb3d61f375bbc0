"""Issue 14: SMTP over parallel connections, a relay's rate limits, [smtp] max_per_minute and max_per_day."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.config import Settings, load_settings
from newsletter.errors import ProviderError
from newsletter.issues import find_issue
from newsletter.models import RenderedEmail
from newsletter.providers import Letter, Outcome, Outgoing, RetryPolicy, State
from newsletter.providers.pace import Pace
from newsletter.providers.smtp import SMTPProvider
from newsletter.render.compose import render_issue
from newsletter.render.message import recipient_for
from newsletter.send.ledger import read_ledger
from tests.fakes import fixtures
from tests.fakes.smtp import FakeSMTP

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"
HEADER = "email,name,status,tags,created_at,updated_at,source\n"

smtp_server = fixtures.smtp_server  # a pytest fixture, shared by the test modules
smtp_env = fixtures.smtp_env


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_DELIVERY__PROVIDER": "smtp"})


@pytest.fixture(scope="module")
def rendered(settings: Settings) -> RenderedEmail:
    return render_issue(find_issue(settings.issues_dir, SLUG), settings)


def provider(port: int, waits: list[str] | None = None, **kwargs: object) -> SMTPProvider:
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02,
                         on_wait=lambda seconds, why: (waits if waits is not None else []).append(why))
    options: dict[str, object] = {"security": "none", "sender": "hailey@haileyscomet.example.com",
                                  "policy": policy, "timeout": 5.0}
    options.update(kwargs)
    return SMTPProvider("127.0.0.1", port, **options)  # type: ignore[arg-type]


def addresses(n: int) -> list[str]:
    return [f"reader{i:03d}@example.com" for i in range(n)]


def deliver_in_slots(p: SMTPProvider, settings: Settings, rendered: RenderedEmail, emails: list[str]
                     ) -> list[Outcome]:
    """What the send loop's window does: each slot's thread hands over one message at a time."""
    letter = Letter(rendered, settings, "k")
    outs = [Outgoing(i, recipient_for(settings, e, "", "k")) for i, e in enumerate(emails, 1)]
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def report(outcome: Outcome) -> None:
        with lock:
            outcomes.append(outcome)

    def work(slot: int) -> None:
        for out in outs[slot::p.concurrency]:
            p.deliver(letter, [out], report, slot=slot)

    try:
        with ThreadPoolExecutor(p.concurrency) as pool:
            for future in [pool.submit(work, slot) for slot in range(p.concurrency)]:
                future.result()
    finally:
        p.close()
    return outcomes


def test_four_connections_work_at_once_and_report_each_message_once(
        smtp_server: FakeSMTP, settings: Settings, rendered: RenderedEmail) -> None:
    smtp_server.handler.delay = 0.05
    p = provider(smtp_server.port, connections=4)
    emails = addresses(24)
    started = time.monotonic()
    outcomes = deliver_in_slots(p, settings, rendered, emails)
    elapsed = time.monotonic() - started
    assert sorted(e for o in outcomes for e in o.emails) == emails
    assert {o.state for o in outcomes} == {State.SENT}
    assert sorted(smtp_server.handler.delivered_to()) == emails  # each exactly once
    assert p.connections == 4 and smtp_server.handler.connections == 4  # one session per slot, kept
    assert smtp_server.handler.most_in_data == 4
    assert elapsed < 24 * 0.05  # faster than one connection could be


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
@pytest.mark.parametrize(("reply", "slowed"), [
    ("451 4.7.1 Too many messages, slow down", True),
    ("421 4.7.0 Try again later, closing connection", True),
    ("450 4.7.1 Sending rate exceeded", True),
])
def test_a_rate_limit_slows_the_send_down_and_fails_nobody(
        smtp_server: FakeSMTP, settings: Settings, rendered: RenderedEmail, stage: str, reply: str,
        slowed: bool) -> None:
    smtp_server.handler.rate_limited, smtp_server.handler.rate_stage = 3, stage
    smtp_server.handler.rate_reply = reply
    waits: list[str] = []
    p = provider(smtp_server.port, waits, connections=2)
    emails = addresses(8)
    outcomes = deliver_in_slots(p, settings, rendered, emails)
    assert {o.state for o in outcomes} == {State.SENT} and len(outcomes) == 8
    assert sorted(smtp_server.handler.delivered_to()) == emails
    assert smtp_server.handler.deferred == 3
    assert len(waits) >= 1 and all("slowing down" in why for why in waits)
    assert p.pace.gap > 0  # the pace was lowered


def test_a_refusal_that_is_not_a_rate_limit_still_fails_only_that_recipient(
        smtp_server: FakeSMTP, settings: Settings, rendered: RenderedEmail) -> None:
    smtp_server.handler.rate_limited, smtp_server.handler.rate_reply = 1, "450 4.2.0 Mailbox busy"
    outcomes = deliver_in_slots(provider(smtp_server.port, connections=2), settings, rendered, addresses(4))
    assert sorted(o.state for o in outcomes) == [State.FAILED, State.SENT, State.SENT, State.SENT]


def test_the_relays_daily_quota_stops_the_send(smtp_server: FakeSMTP, settings: Settings,
                                                rendered: RenderedEmail) -> None:
    smtp_server.handler.rate_limited = 100
    smtp_server.handler.rate_reply = "550 5.4.5 Daily user sending quota exceeded"
    with pytest.raises(ProviderError, match="5.4.5") as info:
        deliver_in_slots(provider(smtp_server.port, connections=2), settings, rendered, addresses(4))
    assert "max_per_day" in (info.value.hint or "")
    assert smtp_server.handler.delivered_to() == []


def test_max_per_minute_spaces_the_messages_of_every_connection(
        smtp_server: FakeSMTP, settings: Settings, rendered: RenderedEmail) -> None:
    p = provider(smtp_server.port, connections=3, max_per_minute=600)  # one every 0.1 s, all slots together
    started = time.monotonic()
    outcomes = deliver_in_slots(p, settings, rendered, addresses(9))
    assert len(outcomes) == 9 and time.monotonic() - started >= 0.75


def test_the_pace_halves_on_a_complaint_and_recovers_to_the_configured_one() -> None:
    now = [0.0]
    slept: list[float] = []
    pace = Pace(60, clock=lambda: now[0], sleep=slept.append)  # one a second
    for _ in range(3):
        pace.take()
    assert slept == [1.0, 2.0]  # even spacing: the 2nd at 1 s, the 3rd at 2 s
    now[0] = 10.0
    pace.slow_down()
    pace.slow_down()  # the same complaint heard by another connection counts once
    assert pace.gap == 2.0 and pace.per_minute == 30
    now[0] = 80.0
    pace.take()
    assert pace.gap == pytest.approx(1.6)
    for minute in range(2, 10):
        now[0] = 80.0 + 61 * minute
        pace.take()
    assert pace.gap == 1.0  # never faster than max_per_minute


def test_an_unlimited_pace_slows_from_the_pace_it_reached() -> None:
    now = [0.0]
    pace = Pace(0, clock=lambda: now[0], sleep=lambda s: None)
    for i in range(11):
        now[0] = i * 0.01  # 100 a second
        pace.take()
    pace.slow_down()
    assert pace.gap == pytest.approx(0.02) and pace.per_minute == pytest.approx(3000)


def write_list(folder: Path, n: int) -> list[str]:
    emails = addresses(n)
    (folder / "subscribers.csv").write_text(HEADER + "".join(f"{e},Reader {i},active,,,,cli\n"
                                                             for i, e in enumerate(emails)))
    return emails


def test_a_send_over_four_connections_records_everyone_once(
        smtp_env: FakeSMTP, newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    emails = write_list(newsletter_dir, 40)
    smtp_env.handler.delay = 0.02
    monkeypatch.setenv("NEWSLETTER_SMTP__CONNECTIONS", "4")
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 0, result.output
    assert sorted(smtp_env.handler.delivered_to()) == emails
    state = read_ledger(newsletter_dir / "sends" / f"{SLUG}.jsonl")
    assert sorted(state.emails(State.SENT)) == emails and not state.in_doubt()
    assert smtp_env.handler.connections == 4 and smtp_env.handler.most_in_data > 1  # really at once


def test_a_refused_login_with_four_connections_is_not_retried(
        newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    emails = write_list(newsletter_dir, 12)
    server = FakeSMTP(users={"hailey": "right"}).start()
    try:
        for name, value in {"NEWSLETTER_DELIVERY__PROVIDER": "smtp", "NEWSLETTER_SMTP__HOST": "127.0.0.1",
                            "NEWSLETTER_SMTP__PORT": str(server.port), "NEWSLETTER_SMTP__SECURITY": "none",
                            "NEWSLETTER_SMTP__USERNAME": "hailey", "SMTP_PASSWORD": "wrong",
                            "NEWSLETTER_SMTP__CONNECTIONS": "4"}.items():
            monkeypatch.setenv(name, value)
        result = runner.invoke(app, ["send", SLUG, "--yes"])
        assert result.exit_code == 1 and "refused the login for 'hailey'" in result.output
        assert server.attempts <= 2 * 4  # PLAIN then LOGIN, once per connection at most: never retried
        state = read_ledger(newsletter_dir / "sends" / f"{SLUG}.jsonl")
        assert not state.in_doubt() and not state.emails(State.SENT)
        monkeypatch.setenv("SMTP_PASSWORD", "right")
        again = runner.invoke(app, ["send", SLUG, "--yes"])  # a rerun sends them all, without flags
        assert again.exit_code == 0, again.output
        assert sorted(server.handler.delivered_to()) == emails
    finally:
        server.stop()


def age_ledgers(folder: Path, hours: float) -> None:
    """Make every record of every ledger `hours` older, as if the send had run then."""
    import datetime as dt

    for path in folder.glob("*.jsonl"):
        lines = []
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "at" in record:
                at = dt.datetime.fromisoformat(record["at"]) - dt.timedelta(hours=hours)
                record["at"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
            lines.append(json.dumps(record))
        path.write_text("".join(line + "\n" for line in lines))


def test_the_daily_cap_stops_cleanly_and_the_next_day_carries_on(
        smtp_env: FakeSMTP, newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    emails = write_list(newsletter_dir, 12)
    monkeypatch.setenv("NEWSLETTER_SMTP__MAX_PER_DAY", "5")
    monkeypatch.setenv("NEWSLETTER_SMTP__CONNECTIONS", "2")
    first = runner.invoke(app, ["send", SLUG, "--yes"])
    assert first.exit_code == 0, first.output
    assert "7 left for tomorrow" in first.output and "run the same command again" in first.output
    assert len(smtp_env.handler.delivered_to()) == 5
    same_day = runner.invoke(app, ["send", SLUG, "--yes"])
    assert same_day.exit_code == 0 and "7 left for tomorrow" in same_day.output
    assert len(smtp_env.handler.delivered_to()) == 5  # the cap counts what the ledger says went today
    age_ledgers(newsletter_dir / "sends", 23)
    assert runner.invoke(app, ["send", SLUG, "--yes"]).exit_code == 0
    assert len(smtp_env.handler.delivered_to()) == 5  # 23 hours is not a day yet
    age_ledgers(newsletter_dir / "sends", 2)
    second = runner.invoke(app, ["send", SLUG, "--yes"])
    assert "2 left for tomorrow" in second.output and len(smtp_env.handler.delivered_to()) == 10
    age_ledgers(newsletter_dir / "sends", 25)
    last = runner.invoke(app, ["send", SLUG, "--yes"])
    assert last.exit_code == 0 and "left for tomorrow" not in last.output
    assert sorted(smtp_env.handler.delivered_to()) == emails  # everyone exactly once
    assert "status: sent" in (newsletter_dir / "issues" / f"2026-11-23-{SLUG}.md").read_text()
