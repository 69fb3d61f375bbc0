"""What SendGrid may track, and the issue's own category: set explicitly on every request.

Sent through the real provider to the SendGrid-speaking server, which validates every body against
SendGrid's OpenAPI schema (tracking_settings included) and records what each request asked for.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from newsletter.config import Settings, load_settings
from newsletter.errors import ConfigError
from newsletter.issues import find_issue
from newsletter.models import RenderedEmail
from newsletter.providers import Letter, Outcome, Outgoing, RetryPolicy
from newsletter.providers.sendgrid.api import SendGridAPI
from newsletter.providers.sendgrid.body import mail_body, settings_problems
from newsletter.providers.sendgrid.provider import SendGridProvider
from newsletter.render.compose import render_issue
from newsletter.render.message import recipient_for
from newsletter.report import category_for
from tests.fakes import fixtures
from tests.fakes.fixtures import API_KEY
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.sendgrid_checks import limit_errors, schema_errors

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"
ALL_OFF = {
    "click_tracking": {"enable": False, "enable_text": False},
    "open_tracking": {"enable": False},
    "subscription_tracking": {"enable": False},
    "ganalytics": {"enable": False},
}

sendgrid_server = fixtures.sendgrid_server


def sg_settings(**env: str) -> Settings:
    return load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_DELIVERY__PROVIDER": "sendgrid", **env})


@pytest.fixture(scope="module")
def rendered() -> RenderedEmail:
    s = sg_settings()
    return render_issue(find_issue(s.issues_dir, SLUG), s)


def send(fake: FakeSendGrid, settings: Settings, rendered: RenderedEmail, n: int = 2) -> list[Outcome]:
    """Hand n readers to the server through the real provider; what it accepted is in fake.delivered."""
    policy = RetryPolicy(attempts=1, base_delay=0.01, max_delay=0.01, sleep=time.sleep)
    provider = SendGridProvider(SendGridAPI(API_KEY, fake.url, 5.0), policy, batch_size=1000)
    batch = [Outgoing(i, recipient_for(settings, f"reader{i}@example.com", f"Reader {i}", "k")) for i in range(n)]
    outcomes: list[Outcome] = []
    provider.deliver(Letter(rendered, settings, "k"), batch, outcomes.append)
    return outcomes


def test_by_default_sendgrid_tracks_nothing(sendgrid_server: FakeSendGrid, rendered: RenderedEmail) -> None:
    send(sendgrid_server, sg_settings(), rendered)
    assert [status for _, path, status in sendgrid_server.requests if path == "/v3/mail/send"] == [202]
    delivered = sendgrid_server.delivered
    assert len(delivered) == 2
    assert all(d.tracking_settings == ALL_OFF for d in delivered)


def test_opens_and_clicks_are_tracked_only_when_turned_on(sendgrid_server: FakeSendGrid,
                                                          rendered: RenderedEmail) -> None:
    s = sg_settings(NEWSLETTER_SENDGRID__OPEN_TRACKING="true", NEWSLETTER_SENDGRID__CLICK_TRACKING="true")
    send(sendgrid_server, s, rendered)
    tracking = sendgrid_server.delivered[0].tracking_settings
    assert tracking["open_tracking"] == {"enable": True}
    # Clicks are counted through the HTML part; the text part keeps the essay's own links.
    assert tracking["click_tracking"] == {"enable": True, "enable_text": False}
    assert tracking["subscription_tracking"] == {"enable": False}  # never: our own unsubscribe does it
    only_opens = sg_settings(NEWSLETTER_SENDGRID__OPEN_TRACKING="true")
    body = mail_body(Letter(rendered, only_opens, "k"),
                     [Outgoing(1, recipient_for(only_opens, "a@example.com", "", "k"))])
    assert body["tracking_settings"]["click_tracking"]["enable"] is False
    assert schema_errors(body, reference=True) == []


def test_the_text_part_keeps_the_essays_own_links_with_click_tracking_on(rendered: RenderedEmail) -> None:
    s = sg_settings(NEWSLETTER_SENDGRID__CLICK_TRACKING="true")
    body = mail_body(Letter(rendered, s, "k"), [Outgoing(1, recipient_for(s, "a@example.com", "", "k"))])
    text = body["content"][0]["value"]
    assert "https://" in text and "sendgrid" not in text.lower()
    assert body["tracking_settings"]["click_tracking"]["enable_text"] is False


def test_every_request_carries_the_issues_category(sendgrid_server: FakeSendGrid, rendered: RenderedEmail) -> None:
    send(sendgrid_server, sg_settings(), rendered)
    assert sendgrid_server.delivered[0].categories == ["haileys-comet", category_for(SLUG)]
    assert category_for(SLUG) == f"issue:{SLUG}"


def test_nine_categories_of_your_own_fit_beside_the_issues(sendgrid_server: FakeSendGrid,
                                                           rendered: RenderedEmail) -> None:
    nine = sg_settings(NEWSLETTER_SENDGRID__CATEGORIES=",".join(f"c{i}" for i in range(9)))
    assert settings_problems(Letter(rendered, nine, "k")) == []
    send(sendgrid_server, nine, rendered, n=1)
    assert len(sendgrid_server.delivered[0].categories) == 10  # SendGrid's limit, accepted
    ten = sg_settings(NEWSLETTER_SENDGRID__CATEGORIES=",".join(f"c{i}" for i in range(10)))
    problems = settings_problems(Letter(rendered, ten, "k"))
    assert len(problems) == 1 and "at most 9 categories" in problems[0] and "[sendgrid] categories" in problems[0]
    # The issue's category already among yours counts once.
    mine = sg_settings(NEWSLETTER_SENDGRID__CATEGORIES=",".join([*(f"c{i}" for i in range(9)), category_for(SLUG)]))
    assert settings_problems(Letter(rendered, mine, "k")) == []


def test_a_long_slug_still_makes_a_category_sendgrid_accepts(rendered: RenderedEmail) -> None:
    from dataclasses import replace

    s = sg_settings()
    long = replace(rendered, slug="a" * 400)
    body = mail_body(Letter(long, s, "k"), [Outgoing(1, recipient_for(s, "a@example.com", "", "k"))])
    assert len(body["categories"][-1]) == 255
    assert schema_errors(body) == [] and limit_errors(body, time.time()) == []


def test_a_tracking_switch_that_is_not_true_or_false_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        sg_settings(NEWSLETTER_SENDGRID__OPEN_TRACKING="maybe")
    assert "NEWSLETTER_SENDGRID__OPEN_TRACKING" in str(caught.value.message)
