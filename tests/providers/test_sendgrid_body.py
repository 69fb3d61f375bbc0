"""The SendGrid request body, built by a pure function, against SendGrid's schema and limits."""

from __future__ import annotations

import dataclasses
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from newsletter.config import Settings, load_settings
from newsletter.errors import RecipientError
from newsletter.issues import find_issue
from newsletter.models import RenderedEmail
from newsletter.providers import Letter, Outgoing
from newsletter.providers.sendgrid.body import (
    ISSUE_ARG,
    mail_body,
    personalization,
    personalization_problem,
    recipient_name,
    settings_problems,
)
from newsletter.render.compose import render_issue
from newsletter.render.fields import PLACEHOLDERS, TEXT_PLACEHOLDERS
from newsletter.render.message import SENDGRID_GROUP_UNSUBSCRIBE, recipient_for
from tests.fakes.sendgrid_checks import limit_errors, schema_errors

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"


def sg_settings(**env: str) -> Settings:
    return load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_DELIVERY__PROVIDER": "sendgrid",
                                                           "NEWSLETTER_READERS__URL": "", **env})


@pytest.fixture(scope="module")
def rendered() -> RenderedEmail:
    s = sg_settings()
    return render_issue(find_issue(s.issues_dir, SLUG), s)


def batch_of(s: Settings, people: list[tuple[str, str]], secret: str = "k") -> list[Outgoing]:
    return [Outgoing(i, recipient_for(s, email, name, secret)) for i, (email, name) in enumerate(people, 1)]


def test_body_is_valid_for_the_official_schema_and_the_limits(rendered: RenderedEmail) -> None:
    s = sg_settings()
    people = [(f"reader{i}@example.com", f"Reader {i}") for i in range(1000)]
    body = mail_body(Letter(rendered, s, "k"), batch_of(s, people))
    assert schema_errors(body) == [] and limit_errors(body, time.time()) == []
    small = mail_body(Letter(rendered, s, "k"), batch_of(s, people[:5]))
    assert schema_errors(small, reference=True) == []  # the exact (draft 2020-12) validator agrees


def test_one_personalization_per_recipient_and_content_once(rendered: RenderedEmail) -> None:
    s = sg_settings()
    body = mail_body(Letter(rendered, s, "k"), batch_of(s, [("a@example.com", "Ann"), ("b@example.com", "")]))
    assert [p["to"] for p in body["personalizations"]] == [[{"email": "a@example.com", "name": "Ann"}],
                                                          [{"email": "b@example.com"}]]
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    mailto = "mailto:unsubscribe@haileyscomet.example.com?subject=unsubscribe"
    # Rendered once; the unsubscribe link is the same for everyone, so it is filled in once...
    assert body["content"][1]["value"] == rendered.html.replace(PLACEHOLDERS["unsubscribe_url"], mailto)
    assert body["content"][0]["value"] == rendered.text.replace(TEXT_PLACEHOLDERS["unsubscribe_url"], mailto)
    # ...and only the placeholders the templates use are sent per recipient (here, the address).
    assert [p["substitutions"] for p in body["personalizations"]] == [{PLACEHOLDERS["email"]: "a@example.com"},
                                                                      {PLACEHOLDERS["email"]: "b@example.com"}]
    assert body["custom_args"] == {ISSUE_ARG: SLUG}
    assert body["categories"] == ["haileys-comet", f"issue:{SLUG}"]  # [sendgrid] categories, then the issue's
    assert body["from"] == {"email": "hailey@haileyscomet.example.com", "name": "Hailey Tai"}
    assert body["reply_to"] == {"email": "hailey@haileyscomet.example.com"}
    assert "asm" not in body and "send_at" not in body and "batch_id" not in body


def with_names(rendered: RenderedEmail) -> RenderedEmail:
    """A template that greets the reader by name in both parts."""
    return dataclasses.replace(rendered, html=rendered.html + "<p>Hi %%FIRST_NAME%% (%%NAME%%)</p>",
                               text=rendered.text + "Hi %%TEXT_FIRST_NAME%% (%%TEXT_NAME%%)\n")


def test_substitutions_fill_each_part_with_its_own_tokens(rendered: RenderedEmail) -> None:
    s = sg_settings()
    subs = personalization(Letter(with_names(rendered), s, "k"),
                           recipient_for(s, "a@example.com", "Ann <b>Lee</b>", "k"))["substitutions"]
    assert subs[PLACEHOLDERS["name"]] == "Ann &lt;b&gt;Lee&lt;/b&gt;"
    assert subs[TEXT_PLACEHOLDERS["name"]] == "Ann <b>Lee</b>"
    assert subs[PLACEHOLDERS["first_name"]] == "Ann"
    assert subs[TEXT_PLACEHOLDERS["first_name"]] == "Ann" and PLACEHOLDERS["unsubscribe_url"] not in subs


def test_unsubscribe_group_sets_asm_and_keeps_sendgrids_tag_unescaped(rendered: RenderedEmail) -> None:
    s = sg_settings(NEWSLETTER_SENDGRID__UNSUBSCRIBE_GROUP_ID="4242")
    body = mail_body(Letter(rendered, s, "k"), batch_of(s, [("a@example.com", "Ann")]))
    assert body["asm"] == {"group_id": 4242}
    text, html = (c["value"] for c in body["content"])
    assert f'href="{SENDGRID_GROUP_UNSUBSCRIBE}"' in html and SENDGRID_GROUP_UNSUBSCRIBE in text


def test_https_unsubscribe_gives_per_recipient_one_click_headers(rendered: RenderedEmail) -> None:
    s = sg_settings(NEWSLETTER_DELIVERY__UNSUBSCRIBE_URL="https://h.example.com/u?e={email}&t={token}")
    body = mail_body(Letter(rendered, s, "k"), batch_of(s, [("a@example.com", "Ann"), ("b@example.com", "Bo")]))
    first, second = (p["headers"] for p in body["personalizations"])
    assert "e=a@example.com" in first["List-Unsubscribe"] and "e=b@example.com" in second["List-Unsubscribe"]
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "List-Id" in body["headers"] and "List-Unsubscribe" not in body["headers"]


def test_schedule_and_test_prefix(rendered: RenderedEmail) -> None:
    s = sg_settings()
    send_at = int(time.time()) + 3600
    letter = Letter(rendered, s, "k", subject_prefix="[TEST] ", send_at=send_at, batch_id="b1")
    body = mail_body(letter, batch_of(s, [("a@example.com", "Ann")]))
    assert body["send_at"] == send_at and body["batch_id"] == "b1"
    assert body["subject"] == "[TEST] " + rendered.subject


@hsettings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=60))
def test_any_name_gives_a_valid_body_and_no_header(rendered: RenderedEmail, name: str) -> None:
    s = sg_settings()
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\r\n" for c in name):
        with pytest.raises(RecipientError, match="control character"):  # never reaches a header (issue 9)
            mail_body(Letter(rendered, s, "k"), batch_of(s, [("a@example.com", name)]))
        return
    body = mail_body(Letter(rendered, s, "k"), batch_of(s, [("a@example.com", name)]))
    assert schema_errors(body) == [] and limit_errors(body, time.time()) == []
    to = body["personalizations"][0]["to"][0]
    assert not any(c in to.get("name", "") for c in ";,\r\n")
    assert set(body["personalizations"][0]) <= {"to", "substitutions", "headers"}


def test_recipient_names_lose_separators_and_newlines() -> None:
    assert recipient_name("Lee, Ann;\r\nBcc: evil@example.com") == "Lee Ann Bcc: evil@example.com"


def test_oversized_personal_values_are_refused_before_sending(rendered: RenderedEmail) -> None:
    s = sg_settings()
    p = personalization(Letter(with_names(rendered), s, "k"), recipient_for(s, "a@example.com", "N" * 3000, "k"))
    assert "10,000" in str(personalization_problem(p))


def test_too_many_categories_are_a_config_problem(rendered: RenderedEmail) -> None:
    s = sg_settings(NEWSLETTER_SENDGRID__CATEGORIES=",".join(f"c{i}" for i in range(11)))
    assert "at most 9 categories" in settings_problems(Letter(rendered, s, "k"))[0]
