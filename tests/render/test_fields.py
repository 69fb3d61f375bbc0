"""Issue 9, item 9: {{ first_name }}, {{ name }} and {{ email }} in an essay, with a fallback,
are filled per recipient the way the templates' fields are (escaped in HTML, literal in text, one
pass, through SendGrid's substitutions too); in code they stay text."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import time
from pathlib import Path

import pytest

from newsletter.config import Settings, load_settings
from newsletter.issues import find_issue
from newsletter.models import Recipient, RenderedEmail
from newsletter.providers import Letter, Outcome, Outgoing, RetryPolicy, State
from newsletter.providers.mime import MessageFactory
from newsletter.providers.sendgrid.api import SendGridAPI
from newsletter.providers.sendgrid.provider import SendGridProvider
from newsletter.render.compose import render_issue
from newsletter.render.essay import render_essay
from newsletter.render.fields import ESSAY_FIELD, fields_as_fallbacks
from newsletter.render.message import personalize, recipient_for
from tests.fakes import fixtures
from tests.fakes.fixtures import API_KEY
from tests.fakes.sendgrid import FakeSendGrid

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"
ESSAY = """Dear {{ first_name | default("friend") }}, this one is for {{name|default('you')}}.

*Yours*, {{ name }} at [{{ email }}](https://haileyscomet.example.com/). Hi {{ first_name }}!

In a template you write `{{ name }}`, like this:

    Hello {{ first_name | default("x") }}
"""
sendgrid_server = fixtures.sendgrid_server


@pytest.mark.parametrize("field", [
    "{{ first_name }}", "{{name}}", "{{ email }}", '{{ first_name | default("friend") }}',
    "{{ first_name|default('friend') }}", "{{ name | default(“you”) }}", "{{ name | default(‘you’) }}",
    '{{ name | default("") }}', '{{ name | default("Ana & Bo, dear") }}',
])
def test_essay_field_matches_the_allowed_forms(field: str) -> None:
    assert ESSAY_FIELD.fullmatch(field)


@pytest.mark.parametrize("text", [
    "{{ foo }}", "{{ name | upper }}", "{{ name | default(friend) }}", '{{ name | default("a" }}',
    "{{ 7*7 }}", '{{ name | default("}}") }}', '{{ name | default("a\') }}', "{{ Name }}", "{ name }",
    '{{ name | default("a") | upper }}', "{{ unsubscribe_url }}", '{{ name | default("*dear* reader") }}',
    '{{ name | default("<b>you</b>") }}', '{{ name | default("a_b_c") }}',
])
def test_essay_field_refuses_anything_else(text: str) -> None:
    assert not ESSAY_FIELD.fullmatch(text)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_DELIVERY__PROVIDER": "sendgrid"})


@pytest.fixture(scope="module")
def rendered(settings: Settings) -> RenderedEmail:
    issue = find_issue(settings.issues_dir, SLUG)
    return render_issue(dataclasses.replace(issue, body=ESSAY), settings)


def test_fields_are_filled_per_recipient(rendered: RenderedEmail) -> None:
    html, text = personalize(rendered, Recipient("ada@example.com", "Ada Lovelace"))
    assert "Dear Ada, this one is for Ada Lovelace." in html and "Hi Ada!" in html
    assert "<em>Yours</em>, Ada Lovelace at" in html and ">ada@example.com</a>" in html
    assert "Dear Ada, this one is for Ada Lovelace." in text and "Hi Ada!" in text
    assert "Ada Lovelace at ada@example.com" in text


def test_the_fallback_is_used_when_the_value_is_empty(rendered: RenderedEmail) -> None:
    html, text = personalize(rendered, Recipient("bo@example.com", ""))
    assert "Dear friend, this one is for you." in html and "Dear friend, this one is for you." in text
    assert "Hi friend!" in html  # first_name without a fallback reads "friend", as in the templates
    assert "</em>,  at" in html  # name without a fallback: empty


def test_fields_in_code_stay_text(rendered: RenderedEmail) -> None:
    html, text = personalize(rendered, Recipient("ada@example.com", "Ada Lovelace"))
    assert "{{ name }}</code>" in html and 'Hello {{ first_name | default("x") }}' in html.replace("&quot;", '"')
    assert "`{{ name }}`" not in text and "{{ name }}" in text
    assert 'Hello {{ first_name | default("x") }}' in text


@pytest.mark.parametrize("name", ['<b>Eve</b> & "Mallory"', "%%TEXT_EMAIL%% %%EMAIL%%", "%%NAME~eW91%% {{ email }}"])
def test_values_are_text_filled_in_one_pass(rendered: RenderedEmail, name: str) -> None:
    html, text = personalize(rendered, Recipient("eve@example.com", name))
    escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    assert f"this one is for {escaped}." in html and f"this one is for {name}." in text
    assert "<b>Eve" not in html


def test_smtp_and_outbox_messages_carry_the_values(settings: Settings, rendered: RenderedEmail) -> None:
    factory = MessageFactory(Letter(rendered, settings, "k"))
    raw, _ = factory.build(recipient_for(settings, "ada@example.com", "Ada Lovelace", "k"))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert "Dear Ada, this one is for Ada Lovelace." in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_sendgrid_fills_them_through_substitutions(sendgrid_server: FakeSendGrid, settings: Settings,
                                                   rendered: RenderedEmail) -> None:
    policy = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, sleep=time.sleep)
    provider = SendGridProvider(SendGridAPI(API_KEY, sendgrid_server.url, 5.0), policy)
    batch = [Outgoing(1, recipient_for(settings, "ada@example.com", "Ada <Lovelace>", "k")),
             Outgoing(2, recipient_for(settings, "bo@example.com", "", "k"))]
    outcomes: list[Outcome] = []
    provider.deliver(Letter(rendered, settings, "k"), batch, outcomes.append)
    assert [o.state for o in outcomes] == [State.SENT]
    ada, bo = sendgrid_server.inbox("ada@example.com")[0], sendgrid_server.inbox("bo@example.com")[0]
    assert "Dear Ada, this one is for Ada &lt;Lovelace&gt;." in ada.html
    assert "Dear Ada, this one is for Ada <Lovelace>." in ada.text
    assert "Dear friend, this one is for you." in bo.html and "Dear friend, this one is for you." in bo.text


def test_pages_read_by_nobody_in_particular_show_the_fallbacks() -> None:
    page = fields_as_fallbacks(render_essay(ESSAY, "https://haileyscomet.example.com/", "").html)
    assert "Dear friend, this one is for you." in page and "Hi friend!" in page
    assert "{{ name }}</code>" in page
