"""The MIME message: structure, headers, unsubscribe, and no injection through names."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from newsletter.config import Settings, load_settings
from newsletter.issues import find_issue
from newsletter.models import Recipient, RenderedEmail
from newsletter.render.compose import render_issue
from newsletter.render.message import build_message, personalize, recipient_for, unsubscribe_token

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"
URL_TEMPLATE = "https://haileyscomet.example.com/unsubscribe?e={email}&t={token}"


def settings(**env: str) -> Settings:
    """Hailey's settings without the reader service (tests/render/test_reader_links.py has it)."""
    return load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_READERS__URL": "", **env})


@pytest.fixture(scope="module")
def rendered() -> RenderedEmail:
    s = settings()
    return render_issue(find_issue(s.issues_dir, SLUG), s)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_mime_tree_and_headers(rendered: RenderedEmail) -> None:
    s = settings()
    recipient = recipient_for(s, "ada@example.com", "Ada Lovelace", secret="k")
    msg = parse(build_message(rendered, recipient, s).as_bytes())
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert msg["From"] == "Hailey Tai <hailey@haileyscomet.example.com>"
    assert msg["To"] == "Ada Lovelace <ada@example.com>"
    assert msg["Subject"] == "The Fear of Entering the Room"
    assert msg["Date"] and msg["Message-ID"].endswith("@haileyscomet.example.com>")
    assert msg["List-Unsubscribe"].strip() == "<mailto:unsubscribe@haileyscomet.example.com?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] is None
    assert msg["List-Id"] == "Hailey’s Comet <haileys-comet.haileyscomet.example.com>"
    text = parts[0].get_content()
    assert text.startswith("On Tarkovsky’s Stalker") and "\n-- \n" in text
    assert "Unsubscribe: mailto:unsubscribe@haileyscomet.example.com?subject=unsubscribe" in text


def test_https_unsubscribe_adds_one_click_post_and_a_token(rendered: RenderedEmail) -> None:
    s = settings(NEWSLETTER_DELIVERY__UNSUBSCRIBE_URL=URL_TEMPLATE)
    recipient = recipient_for(s, "ada@example.com", "Ada", secret="k")
    msg = parse(build_message(rendered, recipient, s, secret="k").as_bytes())
    token = unsubscribe_token("k", "ada@example.com")
    url = f"https://haileyscomet.example.com/unsubscribe?e=ada@example.com&t={token}"
    mailto = "mailto:unsubscribe@haileyscomet.example.com?subject=unsubscribe"
    assert msg["List-Unsubscribe"].strip() == f"<{url}>, <{mailto}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f'href="{url.replace("&", "&amp;")}"' in html
    assert unsubscribe_token("other-secret", "ada@example.com") != token


def test_names_are_text_never_templates_or_headers(rendered: RenderedEmail) -> None:
    s = settings()
    evil = "{{ 7*7 }} <script>alert(1)</script>\r\nBcc: victim@example.com %%EMAIL%%"
    msg = parse(build_message(rendered, Recipient("ada@example.com", evil, "mailto:u@example.com"), s).as_bytes())
    assert "Bcc" not in msg and msg["Bcc"] is None
    assert "\n" not in msg["To"] and "victim@example.com" in msg["To"]  # inside the display name
    html, text = personalize(rendered.__class__(**{**rendered.__dict__,
                                                   "html": "<p>%%NAME%%|%%FIRST_NAME%%</p>",
                                                   "text": "%%TEXT_NAME%%"}),
                             Recipient("a@example.com", evil))
    assert "&lt;script&gt;" in html and "<script>" not in html and "{{ 7*7 }}" in html
    assert "%%EMAIL%%" in html  # a value is never substituted again
    assert text.startswith("{{ 7*7 }} <script>alert(1)</script> Bcc:")


def test_first_name_falls_back(rendered: RenderedEmail) -> None:
    r = rendered.__class__(**{**rendered.__dict__, "html": "Hi %%FIRST_NAME%%", "text": "Hi %%TEXT_FIRST_NAME%%"})
    assert personalize(r, Recipient("a@example.com", "")) == ("Hi friend", "Hi friend")
    assert personalize(r, Recipient("a@example.com", "Ada Lovelace")) == ("Hi Ada", "Hi Ada")


def test_sendgrid_group_unsubscribe_tag_is_left_for_sendgrid(rendered: RenderedEmail) -> None:
    s = settings(NEWSLETTER_DELIVERY__PROVIDER="sendgrid", NEWSLETTER_SENDGRID__UNSUBSCRIBE_GROUP_ID="42")
    recipient = recipient_for(s, "ada@example.com", "Ada", secret="")
    html, text = personalize(rendered, recipient)
    assert 'href="<%asm_group_unsubscribe_raw_url%>"' in html
    assert "Unsubscribe: <%asm_group_unsubscribe_raw_url%>" in text
