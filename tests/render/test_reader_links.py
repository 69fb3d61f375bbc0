"""With [readers] url, every message's one-click unsubscribe goes to the reader service, on every path."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.config import Settings, load_settings
from newsletter.issues import find_issue
from newsletter.models import RenderedEmail
from newsletter.providers import Letter, Outgoing
from newsletter.providers.mime import MessageFactory
from newsletter.providers.sendgrid.body import mail_body
from newsletter.render.checks import run_checks
from newsletter.render.compose import render_issue
from newsletter.render.message import NO_SECRET_TOKEN, build_message, recipient_for
from newsletter.subscribers.schema import email_key
from newsletter.tokens import Tokens

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"
BASE = "https://haileyscomet.example.com/r/"  # Hailey's [readers] url
MAILTO = "mailto:unsubscribe@haileyscomet.example.com?subject=unsubscribe"
NEW, OLD = "links-newest-secret", "links-older-secret"


def settings(**env: str) -> Settings:
    return load_settings(ROOT / "newsletter.toml", environ=env)


@pytest.fixture(scope="module")
def rendered() -> RenderedEmail:
    s = settings()
    return render_issue(find_issue(s.issues_dir, SLUG), s)


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def link_for(address: str, secrets: tuple[str, ...] = (NEW,)) -> str:
    return BASE + "unsubscribe/" + Tokens(secrets).unsubscribe_token(email_key(address))


def test_the_header_and_the_visible_link_are_the_services_url(rendered: RenderedEmail) -> None:
    s = settings()
    recipient = recipient_for(s, "Ada.Lovelace@example.com", "Ada", NEW)
    msg = parse(build_message(rendered, recipient, s, secret=NEW).as_bytes())
    url = link_for("ada.lovelace@example.com")
    assert msg["List-Unsubscribe"].strip() == f"<{url}>, <{MAILTO}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f'href="{url}"' in html and f"Unsubscribe: {url}" in text
    assert "ada" not in url.lower().removeprefix(BASE)  # no address in the link
    rid = Tokens((NEW,)).open_unsubscribe(url.rsplit("/", 1)[1])
    assert rid == Tokens((NEW,)).reader_id(email_key("ada.lovelace@example.com"))


def test_the_newest_secret_signs_the_links(rendered: RenderedEmail) -> None:
    s = settings()
    recipient = recipient_for(s, "ada@example.com", "Ada", f"{NEW},{OLD}")
    assert recipient.unsubscribe_url == link_for("ada@example.com", (NEW,))


def test_the_fast_path_and_sendgrid_carry_the_same_link(rendered: RenderedEmail) -> None:
    s = settings(NEWSLETTER_DELIVERY__PROVIDER="sendgrid", NEWSLETTER_SENDGRID__UNSUBSCRIBE_GROUP_ID="42")
    recipient = recipient_for(s, "grace@example.org", "Grace", NEW)
    url = link_for("grace@example.org")
    assert recipient.unsubscribe_url == url  # the service's link wins over SendGrid's group link
    letter = Letter(rendered, s, NEW)
    fast = parse(MessageFactory(letter).build(recipient)[0])
    assert fast["List-Unsubscribe"].strip() == f"<{url}>, <{MAILTO}>"
    assert fast["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = mail_body(letter, [Outgoing(1, recipient)])
    headers = body["personalizations"][0]["headers"]
    assert headers["List-Unsubscribe"].replace("\r\n", "").replace(" ", "") == f"<{url}>,<{MAILTO}>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "List-Unsubscribe" not in body["headers"]
    assert url in str(body["personalizations"][0].get("substitutions", {})) or url in body["content"][1]["value"]
    assert body["asm"] == {"group_id": 42}


def test_without_a_secret_the_link_plainly_does_not_work(rendered: RenderedEmail) -> None:
    s = settings()
    recipient = recipient_for(s, "ada@example.com", "Ada", "")
    assert recipient.unsubscribe_url == f"{BASE}unsubscribe/{NO_SECRET_TOKEN}"
    assert Tokens((NEW,)).open_unsubscribe(NO_SECRET_TOKEN) is None


def test_check_warns_without_an_https_one_click_unsubscribe(rendered: RenderedEmail) -> None:
    s = settings(NEWSLETTER_READERS__URL="")
    issue = find_issue(s.issues_dir, SLUG)
    found = [r.message for r in run_checks(issue, rendered, s).results if r.code == "one_click"]
    assert len(found) == 1 and "[readers] url" in found[0] and "mailto: alone does not count" in found[0]
    assert not [r for r in run_checks(issue, rendered, settings()).results if r.code == "one_click"]
    https = settings(NEWSLETTER_READERS__URL="", NEWSLETTER_DELIVERY__UNSUBSCRIBE_URL="https://x.example/u?e={email}")
    assert not [r for r in run_checks(issue, rendered, https).results if r.code == "one_click"]
