"""Issue 9, item 3 for SendGrid: A-label domains in the request; a non-ASCII local part is failed
before the request, with a reason, and the rest of the batch goes out."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from newsletter.config import Settings, load_settings
from newsletter.issues import find_issue
from newsletter.models import RenderedEmail
from newsletter.providers import Letter, Outcome, Outgoing, RetryPolicy, State
from newsletter.providers.sendgrid.api import SendGridAPI
from newsletter.providers.sendgrid.prebuild import prepare_body
from newsletter.providers.sendgrid.provider import SendGridProvider
from newsletter.render.compose import render_issue
from newsletter.render.message import recipient_for
from tests.fakes import fixtures
from tests.fakes.fixtures import API_KEY
from tests.fakes.sendgrid import FakeSendGrid

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"
URL = "https://haileyscomet.example.com/unsubscribe?e={email}&t={token}"

sendgrid_server = fixtures.sendgrid_server
PEOPLE = [("first@example.com", "First"), ("δοκιμή@example.com", "Δοκιμή"), ("ana@bücher.example", "Ana"),
          ("bo@xn--bcher-kva.example", "Bo"), ("nul@example.com", "Nul\x00Name"), ("last@example.com", "Last")]


@pytest.fixture(scope="module", params=["", URL])
def settings(request: pytest.FixtureRequest) -> Settings:
    env = {"NEWSLETTER_DELIVERY__PROVIDER": "sendgrid", "NEWSLETTER_READERS__URL": ""}
    if request.param:
        env["NEWSLETTER_DELIVERY__UNSUBSCRIBE_URL"] = request.param
    return load_settings(ROOT / "newsletter.toml", environ=env)


@pytest.fixture(scope="module")
def rendered(settings: Settings) -> RenderedEmail:
    return render_issue(find_issue(settings.issues_dir, SLUG), settings)


def batch_of(settings: Settings) -> list[Outgoing]:
    return [Outgoing(i, recipient_for(settings, e, n, "k")) for i, (e, n) in enumerate(PEOPLE, 1)]


def test_non_ascii_local_parts_and_control_characters_are_refused_before_the_request(
        settings: Settings, rendered: RenderedEmail) -> None:
    prepared = prepare_body(Letter(rendered, settings, "k"), batch_of(settings))
    reasons = dict(prepared.refused)
    assert sorted(reasons) == [1, 4]
    assert reasons[1].startswith("SendGrid: not sent") and "SMTPUTF8" in reasons[1]
    assert "control character U+0000" in reasons[4]
    assert prepared.accepted == [0, 2, 3, 5]


def test_the_rest_of_the_batch_goes_out_with_a_label_domains(
        sendgrid_server: FakeSendGrid, settings: Settings, rendered: RenderedEmail) -> None:
    policy = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, sleep=time.sleep)
    provider = SendGridProvider(SendGridAPI(API_KEY, sendgrid_server.url, 5.0), policy)
    outcomes: list[Outcome] = []
    provider.deliver(Letter(rendered, settings, "k"), batch_of(settings), outcomes.append)
    states = {email: o.state for o in outcomes for email in o.emails}
    assert states == {"first@example.com": State.SENT, "δοκιμή@example.com": State.FAILED,
                      "ana@bücher.example": State.SENT, "bo@xn--bcher-kva.example": State.SENT,
                      "nul@example.com": State.FAILED, "last@example.com": State.SENT}
    assert sendgrid_server.mail_requests == 1
    assert sendgrid_server.counts() == {"first@example.com": 1, "ana@xn--bcher-kva.example": 1,
                                        "bo@xn--bcher-kva.example": 1, "last@example.com": 1}
    ana = sendgrid_server.inbox("ana@xn--bcher-kva.example")[0]
    assert "ana@bücher.example" in ana.html  # the body shows the address as the list has it
    if settings.delivery.unsubscribe_url:
        assert ana.headers["List-Unsubscribe"].startswith("<https://haileyscomet.example.com/unsubscribe?e=ana@b%C3")
