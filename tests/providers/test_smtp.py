"""The SMTP provider against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest

from newsletter.config import Settings, load_settings
from newsletter.errors import ProviderError
from newsletter.issues import find_issue
from newsletter.models import RenderedEmail
from newsletter.providers import Letter, Outcome, Outgoing, RetryPolicy, State
from newsletter.providers.smtp import SMTPProvider
from newsletter.render.compose import render_issue
from newsletter.render.message import recipient_for
from tests.fakes import fixtures
from tests.fakes.smtp import FakeSMTP, RecordingHandler, free_port, self_signed
from tests.helpers import deliver_in_slots

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"

smtp_server = fixtures.smtp_server  # a pytest fixture, shared by the test modules
CONNECTIONS = 1  # [smtp] connections of every provider built here; the fixture below sets it


@pytest.fixture(autouse=True, params=[1, 4], ids=["1-connection", "4-connections"])
def connections(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every test runs with one connection, then with four driven from four threads (issue 14)."""
    monkeypatch.setattr(f"{__name__}.CONNECTIONS", request.param)
    return int(request.param)


def same(got: list[str], expected: list[str]) -> bool:
    """The same messages; in the list's order too over one connection."""
    return got == expected if CONNECTIONS == 1 else sorted(got) == sorted(expected)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_DELIVERY__PROVIDER": "smtp"})


@pytest.fixture(scope="module")
def rendered(settings: Settings) -> RenderedEmail:
    return render_issue(find_issue(settings.issues_dir, SLUG), settings)


def provider(port: int, **kwargs: object) -> SMTPProvider:
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
    options: dict[str, object] = {"security": "none", "sender": "hailey@haileyscomet.example.com",
                                  "policy": policy, "timeout": 5.0, "connections": CONNECTIONS}
    options.update(kwargs)
    return SMTPProvider("127.0.0.1", port, **options)  # type: ignore[arg-type]


def deliver(p: SMTPProvider, settings: Settings, rendered: RenderedEmail, people: list[tuple[str, str]]
            ) -> list[Outcome]:
    outcomes: list[Outcome] = []
    batch = [Outgoing(i, recipient_for(settings, e, n, "k")) for i, (e, n) in enumerate(people, 1)]
    try:
        deliver_in_slots(p, Letter(rendered, settings, "k"), batch, outcomes.append)
    finally:
        p.close()
    return outcomes


def people(n: int) -> list[tuple[str, str]]:
    return [(f"reader{i}@example.com", f"Reader {i}") for i in range(n)]


def test_many_messages_over_one_connection(smtp_server: FakeSMTP, settings: Settings,
                                           rendered: RenderedEmail) -> None:
    p = provider(smtp_server.port)
    outcomes = deliver(p, settings, rendered, people(20))
    assert [o.state for o in outcomes] == [State.SENT] * 20
    assert same(smtp_server.handler.delivered_to(), [e for e, _ in people(20)])
    assert smtp_server.handler.connections == CONNECTIONS and p.connections == CONNECTIONS  # one a slot
    msg = next(m for m in smtp_server.handler.messages if m.rcpt_tos == ["reader3@example.com"]).message()
    assert msg.get_content_type() == "multipart/alternative"
    third = next(o for o in outcomes if o.emails == ("reader3@example.com",))
    assert msg["To"] == "Reader 3 <reader3@example.com>" and msg["Message-ID"] == third.detail
    assert msg["Date"] and msg["List-Unsubscribe"] and msg["List-Id"]
    assert [part.get_content_type() for part in msg.iter_parts()] == ["text/plain", "text/html"]


def test_a_refused_recipient_fails_and_the_rest_go_on(smtp_server: FakeSMTP, settings: Settings,
                                                      rendered: RenderedEmail) -> None:
    smtp_server.handler.refuse = {"reader2@example.com"}
    outcomes = deliver(provider(smtp_server.port), settings, rendered, people(5))
    failed = [o for o in outcomes if o.state == State.FAILED]
    assert [o.emails for o in failed] == [("reader2@example.com",)] and "550" in failed[0].detail
    assert same(smtp_server.handler.delivered_to(), [e for e, _ in people(5) if e != "reader2@example.com"])


def test_a_connection_dropped_after_the_data_is_in_doubt_and_reopened(
        smtp_server: FakeSMTP, settings: Settings, rendered: RenderedEmail) -> None:
    smtp_server.handler.drop_after_data = {3}
    p = provider(smtp_server.port)
    outcomes = deliver(p, settings, rendered, people(6))
    states = [o.state for o in outcomes]
    if CONNECTIONS == 1:
        assert states == [State.SENT, State.SENT, State.IN_DOUBT, State.SENT, State.SENT, State.SENT]
    assert sorted(states) == sorted([State.SENT] * 5 + [State.IN_DOUBT]) and len(outcomes) == 6
    assert "after the message was sent" in next(o for o in outcomes if o.state == State.IN_DOUBT).detail
    assert same(smtp_server.handler.delivered_to(), [e for e, _ in people(6)])  # each exactly once: no silent retry
    assert p.connections == 2 if CONNECTIONS == 1 else CONNECTIONS <= p.connections <= CONNECTIONS + 1


def test_login_and_starttls_with_the_password_from_the_constructor(
        tmp_path: Path, settings: Settings, rendered: RenderedEmail) -> None:
    cert, key = self_signed(tmp_path)
    server = FakeSMTP(users={"hailey": "s3cret-pass"}, tls=(cert, key)).start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        p = provider(server.port, security="starttls", username="hailey", password="s3cret-pass",
                     ssl_context=context)
        assert [o.state for o in deliver(p, settings, rendered, people(2))] == [State.SENT, State.SENT]
        assert server.logins == ["hailey"] * min(CONNECTIONS, 2)  # each connection its own login
        wrong = provider(server.port, security="starttls", username="hailey", password="nope", ssl_context=context)
        with pytest.raises(ProviderError, match="refused the login for 'hailey'") as info:
            deliver(wrong, settings, rendered, people(1))
        assert "nope" not in str(info.value)
    finally:
        server.stop()


def test_a_server_that_cannot_be_reached_stops_the_send(settings: Settings, rendered: RenderedEmail) -> None:
    started = time.monotonic()
    with pytest.raises(ProviderError, match="cannot send through the SMTP server"):
        deliver(provider(free_port()), settings, rendered, people(3))
    assert time.monotonic() - started < 5


def test_tls_against_a_plain_server_is_reported(settings: Settings, rendered: RenderedEmail) -> None:
    server = FakeSMTP(RecordingHandler()).start()
    try:
        with pytest.raises(ProviderError):
            deliver(provider(server.port, security="starttls"), settings, rendered, people(1))
    finally:
        server.stop()
