"""The fast per-recipient messages (SMTP, outbox) are the messages newsletter.render.message builds."""

from __future__ import annotations

import email
import email.policy
import unicodedata
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from newsletter.config import Settings, load_settings
from newsletter.errors import RecipientError
from newsletter.issues import find_issue
from newsletter.providers import Letter
from newsletter.providers.mime import MessageFactory
from newsletter.render.compose import render_issue
from newsletter.render.message import build_message, message_bytes, recipient_for

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"
URL = "https://haileyscomet.example.com/unsubscribe?e={email}&t={token}"


def letter_for(**env: str) -> Letter:
    s = load_settings(ROOT / "newsletter.toml", environ=env)
    return Letter(render_issue(find_issue(s.issues_dir, SLUG), s), s, "secret", subject_prefix="")


@pytest.fixture(scope="module")
def factories() -> list[MessageFactory]:
    return [MessageFactory(letter_for()), MessageFactory(letter_for(NEWSLETTER_DELIVERY__UNSUBSCRIBE_URL=URL))]


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def same_message(fast: EmailMessage, slow: EmailMessage) -> None:
    skip = {"date", "message-id", "content-type"}  # the boundary is chosen per send
    assert fast.get_content_type() == slow.get_content_type() == "multipart/alternative"
    assert [(k, str(v).strip()) for k, v in fast.items() if k.lower() not in skip] == \
        [(k, str(v).strip()) for k, v in slow.items() if k.lower() not in skip]
    assert fast["Date"] and fast["Message-ID"]
    fast_parts, slow_parts = list(fast.iter_parts()), list(slow.iter_parts())
    assert [p.get_content_type() for p in fast_parts] == [p.get_content_type() for p in slow_parts]
    for a, b in zip(fast_parts, slow_parts, strict=True):
        assert a.get_content() == b.get_content()
        assert a.get_content_charset() == b.get_content_charset()


def check(factory: MessageFactory, settings: Settings, address: str, name: str) -> None:
    recipient = recipient_for(settings, address, name, "secret")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name.replace("\r", "").replace("\n", "").replace("\t", "")):
        # A control character never reaches a header: both ways refuse this one recipient.
        with pytest.raises(RecipientError):
            factory.build(recipient)
        with pytest.raises(RecipientError):
            build_message(factory.letter.rendered, recipient, settings, secret="secret")
        return
    raw, message_id = factory.build(recipient)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")) and b"\n" not in raw.replace(b"\r\n", b"")
    fast = parse(raw)
    assert fast["Message-ID"] == message_id
    slow = build_message(factory.letter.rendered, recipient, settings, secret="secret")
    same_message(fast, parse(message_bytes(slow)))


@pytest.mark.parametrize("name", ["", "Ada Lovelace", "渡辺 健二", "Zoë \"Z\" Smith, Jr.", "Eve\r\nBcc: x@y.z",
                                  "{{ 7*7 }} %%EMAIL%% <b>", "N" * 200, "é" * 80])
def test_the_same_message_as_build_message(factories: list[MessageFactory], name: str) -> None:
    for factory in factories:
        check(factory, factory.letter.settings, "reader@example.com", name)


@pytest.mark.parametrize("address", ["δοκιμή@example.com", "ana@bücher.example", "ana@xn--bcher-kva.example",
                                     "δοκιμή@bücher.example", "o'brien+news@example.com"])
@pytest.mark.parametrize("name", ["", "Ana", "Αλέξανδρος Παπαδόπουλος-Καραγιάννης", "=?utf-8?q?Bcc=3A_x?=",
                                  "渡" * 10_000])
def test_the_same_message_for_international_addresses(factories: list[MessageFactory], address: str,
                                                       name: str) -> None:
    for factory in factories:
        check(factory, factory.letter.settings, address, name)


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=40), local=st.from_regex(r"[a-z0-9][a-z0-9_+-]{0,18}", fullmatch=True))
def test_any_name_and_address_gives_the_same_message(factories: list[MessageFactory], name: str, local: str) -> None:
    for factory in factories:
        check(factory, factory.letter.settings, f"{local}@example.org", name)
