"""The SendGrid provider through the real `sendgrid` library against a SendGrid-speaking server."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from newsletter.config import Settings, load_settings
from newsletter.errors import ProviderError
from newsletter.issues import find_issue
from newsletter.models import RenderedEmail, SendReport
from newsletter.providers import Letter, Outcome, Outgoing, RetryPolicy, State
from newsletter.providers.sendgrid.api import SendGridAPI, check_host, rate_limit_wait
from newsletter.providers.sendgrid.provider import SendGridProvider
from newsletter.render.compose import render_issue
from newsletter.render.message import recipient_for
from newsletter.send.deliver import Recorder, deliver_all
from tests.fakes import fixtures
from tests.fakes.fixtures import API_KEY
from tests.fakes.sendgrid import FakeSendGrid

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"

sendgrid_server = fixtures.sendgrid_server  # a pytest fixture, shared by the test modules
WINDOWS = [1, 4, 16]  # [sendgrid] concurrency: requests in flight at once



@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_DELIVERY__PROVIDER": "sendgrid"})


@pytest.fixture(scope="module")
def rendered(settings: Settings) -> RenderedEmail:
    return render_issue(find_issue(settings.issues_dir, SLUG), settings)


class Waits(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def provider_for(url: str, *, key: str = API_KEY, timeout: float = 5.0, waits: Waits | None = None,
                 attempts: int = 3) -> SendGridProvider:
    policy = RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.05, sleep=waits if waits is not None
                         else time.sleep)
    return SendGridProvider(SendGridAPI(key, url, timeout), policy, batch_size=1000)


def deliver(provider: SendGridProvider, settings: Settings, rendered: RenderedEmail,
            emails: list[str]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    batch = [Outgoing(i, recipient_for(settings, e, f"Reader {i}", "k")) for i, e in enumerate(emails, 1)]
    provider.deliver(Letter(rendered, settings, "k"), batch, outcomes.append)
    return outcomes


def people(n: int) -> list[str]:
    return [f"reader{i}@example.com" for i in range(n)]


def by_state(outcomes: list[Outcome]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {State.SENT: set(), State.FAILED: set(), State.IN_DOUBT: set()}
    for o in outcomes:
        out[o.state].update(o.emails)
    return out


def test_a_batch_is_one_request_and_reports_the_message_id(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail) -> None:
    outcomes = deliver(provider_for(sendgrid_server.url), settings, rendered, people(250))
    assert [o.state for o in outcomes] == [State.SENT] and len(outcomes[0].emails) == 250
    assert outcomes[0].detail.startswith("fake") and sendgrid_server.mail_requests == 1
    assert sendgrid_server.counts() == dict.fromkeys(people(250), 1)
    got = sendgrid_server.inbox("reader3@example.com")[0]
    assert "reader3@example.com" in got.html and "reader4@example.com" not in got.html  # SendGrid filled it in
    assert "%%" not in got.html and "%%" not in got.text


def test_429_waits_until_the_reset_header_then_continues(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail) -> None:
    sendgrid_server.faults = {1: "429", 2: "429"}
    sendgrid_server.reset_in = 30
    waits = Waits()
    outcomes = deliver(provider_for(sendgrid_server.url, waits=waits), settings, rendered, people(3))
    assert by_state(outcomes)[State.SENT] == set(people(3))
    assert len(waits) == 2 and all(28 <= w <= 31 for w in waits)  # waited for X-RateLimit-Reset, not a guess


def test_rate_limit_wait_reads_reset_or_retry_after() -> None:
    assert rate_limit_wait({"X-RateLimit-Reset": "1010"}, now=1000.0) == 10.0
    assert rate_limit_wait({"Retry-After": "7"}, now=1000.0) == 7.0
    assert rate_limit_wait({}, now=1000.0) is None


def test_5xx_is_retried_with_backoff_then_the_batch_fails_and_the_send_goes_on(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail) -> None:
    sendgrid_server.faults = {1: "500", 2: "503"}
    waits = Waits()
    outcomes = deliver(provider_for(sendgrid_server.url, waits=waits), settings, rendered, people(2))
    assert by_state(outcomes)[State.SENT] == set(people(2))
    assert len(waits) == 2 and waits[1] >= waits[0] / 2  # backed off (with jitter)
    sendgrid_server.faults = {n: "503" for n in range(3, 10)}
    outcomes = deliver(provider_for(sendgrid_server.url, waits=Waits()), settings, rendered, people(2))
    assert by_state(outcomes)[State.FAILED] == set(people(2)) and "503" in outcomes[0].detail
    assert sendgrid_server.counts() == dict.fromkeys(people(2), 1)


def test_no_connection_is_retried_then_failed(settings: Settings, rendered: RenderedEmail) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here once closed
    waits = Waits()
    outcomes = deliver(provider_for(f"http://127.0.0.1:{port}", waits=waits), settings, rendered, people(2))
    assert by_state(outcomes)[State.FAILED] == set(people(2)) and "cannot reach" in outcomes[0].detail
    assert len(waits) == 2  # 3 attempts


@pytest.mark.parametrize("fault", ["drop_after", "slow"])
def test_an_answer_lost_after_the_request_went_out_is_in_doubt_and_never_retried(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail, fault: str) -> None:
    sendgrid_server.faults = {1: fault}
    sendgrid_server.slow_seconds = 2.0
    outcomes = deliver(provider_for(sendgrid_server.url, timeout=0.5), settings, rendered, people(4))
    assert [o.state for o in outcomes] == [State.IN_DOUBT] and "no answer" in outcomes[0].detail
    assert sendgrid_server.mail_requests == 1  # not silently retried: SendGrid did accept it
    assert sendgrid_server.counts() == dict.fromkeys(people(4), 1)


def test_a_refused_key_stops_with_the_variable_name_never_the_key(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail) -> None:
    wrong = "SG.wrong-key-that-must-not-leak-0000"
    with pytest.raises(ProviderError) as info:
        deliver(provider_for(sendgrid_server.url, key=wrong), settings, rendered, people(2))
    text = f"{info.value} {info.value.hint}"
    assert "SENDGRID_API_KEY" in text and "401" in text and wrong not in text and API_KEY not in text


def test_a_400_fails_only_the_recipients_sendgrid_names(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail) -> None:
    emails = people(10)
    sendgrid_server.reject = {emails[3], emails[7]}
    state = by_state(deliver(provider_for(sendgrid_server.url), settings, rendered, emails))
    assert state[State.FAILED] == {emails[3], emails[7]} and state[State.SENT] == set(emails) - state[State.FAILED]
    assert sendgrid_server.mail_requests == 2


def test_a_400_naming_nobody_is_narrowed_by_splitting(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail) -> None:
    emails = people(16)
    sendgrid_server.reject, sendgrid_server.reject_unnamed = {emails[5]}, True
    outcomes = deliver(provider_for(sendgrid_server.url), settings, rendered, emails)
    state = by_state(outcomes)
    assert state[State.FAILED] == {emails[5]} and state[State.SENT] == set(emails) - {emails[5]}
    assert "valid address" in next(o.detail for o in outcomes if o.state == State.FAILED)
    assert sendgrid_server.mail_requests <= 1 + 2 * 4  # log2(16) levels of halves
    assert sendgrid_server.counts() == dict.fromkeys(set(emails) - {emails[5]}, 1)


def test_a_400_about_the_whole_request_stops_the_send(
        sendgrid_server: FakeSendGrid, rendered: RenderedEmail) -> None:
    bad = load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_DELIVERY__PROVIDER": "sendgrid",
                                                            "NEWSLETTER_SENDER__FROM": "Hailey <hailey@localhost>"})
    with pytest.raises(ProviderError, match="from"):
        deliver(provider_for(sendgrid_server.url), bad, rendered, people(3))
    assert sendgrid_server.delivered == []


def test_host_must_be_https_unless_it_is_this_machine(settings: Settings) -> None:
    import dataclasses

    def with_host(host: str) -> Settings:
        return dataclasses.replace(settings, sendgrid=dataclasses.replace(settings.sendgrid, host=host))

    assert check_host(with_host("https://api.eu.sendgrid.com/")) == "https://api.eu.sendgrid.com"
    assert check_host(with_host("http://127.0.0.1:8080")) == "http://127.0.0.1:8080"
    for bad in ("http://api.sendgrid.com", "api.sendgrid.com", "https://api.sendgrid.com/v3"):
        with pytest.raises(ProviderError, match=r"\[sendgrid\] host"):
            check_host(with_host(bad))


def test_bodies_built_ahead_in_a_worker_process_are_the_same_and_used(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail) -> None:
    import dataclasses

    provider = provider_for(sendgrid_server.url)
    greeting = dataclasses.replace(rendered, html=rendered.html.replace("</body>", "<p>Hi %%NAME%%</p></body>"))
    letter = Letter(greeting, settings, "k")
    names = ["Ann", "N" * 20_000, "Bo"]  # the second is too long for SendGrid: refused, not sent
    first, second = ([Outgoing(i, recipient_for(settings, f"b{b}r{i}@example.com", names[i], "k"))
                      for i in range(3)] for b in range(2))
    try:
        provider.prepare(letter, second, remaining=10)  # starts the worker, builds `second` there
        outcomes: list[Outcome] = []
        provider.deliver(letter, first, outcomes.append)
        provider.deliver(letter, second, outcomes.append)
    finally:
        provider.close()
    assert provider.ahead.used == 1
    state = by_state(outcomes)
    assert state[State.FAILED] == {"b0r1@example.com", "b1r1@example.com"}
    assert state[State.SENT] == {"b0r0@example.com", "b0r2@example.com", "b1r0@example.com", "b1r2@example.com"}
    for batch in (0, 1):  # built here and built in the worker: the same message
        got = sendgrid_server.inbox(f"b{batch}r2@example.com")[0]
        assert got.name == "Bo" and "<p>Hi Bo</p>" in got.html and f"b{batch}r2@example.com" in got.html


def send_through_the_window(provider: SendGridProvider, settings: Settings, rendered: RenderedEmail,
                            emails: list[str], batch_size: int) -> SendReport:
    """A whole (test) send through the send loop, `provider.concurrency` requests in flight."""
    outs = [Outgoing(i, recipient_for(settings, e, f"Reader {i}", "k")) for i, e in enumerate(emails, 1)]
    report = SendReport(SLUG, "sendgrid", test=True)
    try:
        deliver_all([outs[i:i + batch_size] for i in range(0, len(outs), batch_size)], provider,
                    Letter(rendered, settings, "k"), Recorder(report), lambda progress: None)
    finally:
        provider.close()
    return report


@pytest.mark.parametrize("concurrency", WINDOWS)
def test_each_slot_keeps_one_connection_alive_for_the_whole_send(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail, concurrency: int) -> None:
    provider = provider_for(sendgrid_server.url)
    provider.concurrency = concurrency
    report = send_through_the_window(provider, settings, rendered, people(60), batch_size=2)
    assert report.sent == 60 and not report.failed and not report.in_doubt
    assert sendgrid_server.mail_requests == 30 and sendgrid_server.counts() == dict.fromkeys(people(60), 1)
    assert sendgrid_server.connections <= concurrency  # not one per request (the library's Connection: close)


@pytest.mark.parametrize("concurrency", WINDOWS)
def test_a_large_send_uses_every_body_its_worker_built(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail, concurrency: int) -> None:
    # The send loop hands over copies of the batches it asked the worker to build ahead: the
    # provider must still know them, or every body is built twice (and the worker's pile up).
    provider = provider_for(sendgrid_server.url)
    provider.concurrency = concurrency
    report = send_through_the_window(provider, settings, rendered, people(40), batch_size=2)
    assert report.sent == 40 and sendgrid_server.counts() == dict.fromkeys(people(40), 1)
    # Every batch but the first (it goes before any is built ahead) is built once: by the worker, or
    # here when the worker had not started it yet.
    assert provider.ahead.used + provider.ahead.taken_back == 19 and provider.ahead.used >= 1


@pytest.mark.parametrize("concurrency", WINDOWS)
def test_a_429_pauses_every_slot_until_the_reset_time(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail, concurrency: int) -> None:
    sendgrid_server.faults = {1: "429"}
    sendgrid_server.reset_in = 2  # X-RateLimit-Reset is in whole seconds: 1 to 2 seconds from now
    waits: list[float] = []
    provider = provider_for(sendgrid_server.url)
    provider.policy.on_wait = lambda seconds, why: waits.append(seconds)
    provider.concurrency = concurrency
    started = time.monotonic()
    report = send_through_the_window(provider, settings, rendered, people(3 * concurrency), batch_size=1)
    assert report.sent == 3 * concurrency and sendgrid_server.counts() == dict.fromkeys(people(3 * concurrency), 1)
    assert len(waits) == concurrency  # every slot waited, once, before its next request
    assert all(w <= 2.1 for w in waits) and time.monotonic() - started >= 0.9


@pytest.mark.parametrize("slot", [0, 3, 15])
def test_a_connection_the_server_closed_while_idle_is_reopened_never_written_into(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail, slot: int) -> None:
    sendgrid_server.close_after_answer = True  # as a server does with a connection idle for too long
    waits = Waits()
    provider = provider_for(sendgrid_server.url, waits=waits)
    batch = [Outgoing(1, recipient_for(settings, "a@example.com", "A", "k"))]
    outcomes: list[Outcome] = []
    try:
        for _ in range(3):
            time.sleep(0.05)  # the hang-up has arrived before the next request
            provider.deliver(Letter(rendered, settings, "k"), batch, outcomes.append, slot=slot)
    finally:
        provider.close()
    assert [o.state for o in outcomes] == [State.SENT] * 3
    assert waits == []  # noticed before the request was written into it, not by a failed write and a retry
    assert sendgrid_server.connections == 3 and sendgrid_server.mail_requests == 3
