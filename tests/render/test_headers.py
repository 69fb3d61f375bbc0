"""Issue 9, items 3 and 4: any address is a message or a clean RecipientError; List-Unsubscribe
is always a list of <URI>s; no header line is longer than 998 bytes; names arrive literally."""

from __future__ import annotations

import email
import email.policy
from email.errors import NonASCIILocalPartDefect
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.config import Settings, load_settings
from newsletter.errors import RecipientError
from newsletter.issues import find_issue
from newsletter.models import RenderedEmail
from newsletter.providers import Letter
from newsletter.providers.mime import MessageFactory
from newsletter.render.compose import render_issue
from newsletter.render.headers import MAX_NAME
from newsletter.render.message import ascii_address, build_message, message_bytes, recipient_for, unsubscribe_token

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"
URL = "https://haileyscomet.example.com/unsubscribe?e={email}&t={token}"
MAILTO = "<mailto:unsubscribe@haileyscomet.example.com?subject=unsubscribe>"
LONG_NAMES = [
    "Αλέξανδρος Παπαδόπουλος-Καραγιάννης του Κωνσταντίνου",
    "Александра Владимировна Константинопольская-Рождественская",
    "渡辺健二郎太郎左衛門之助の長い長い名前です本当に長い",
    "Nguyễn Thị Minh Khai Trần Hưng Đạo Lê Lợi Hai Bà Trưng",
]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_DELIVERY__UNSUBSCRIBE_URL": URL,
                                                           "NEWSLETTER_READERS__URL": ""})


@pytest.fixture(scope="module")
def rendered(settings: Settings) -> RenderedEmail:
    return render_issue(find_issue(settings.issues_dir, SLUG), settings)


@pytest.fixture(scope="module")
def factory(settings: Settings, rendered: RenderedEmail) -> MessageFactory:
    return MessageFactory(Letter(rendered, settings, "secret", subject_prefix=""))


def parse(raw: bytes) -> EmailMessage:
    """Parse as a receiver would. The bytes parser reads header bytes as ASCII (it predates RFC 6532),
    so the message is decoded first: every byte outside the (ASCII-encoded) bodies is UTF-8."""
    return email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)  # type: ignore[return-value]


def every_way(settings: Settings, rendered: RenderedEmail, factory: MessageFactory, address: str,
              name: str) -> list[bytes]:
    """The message as SMTP and the outbox get it (fast), as built (SMTP bytes), as build writes it."""
    recipient = recipient_for(settings, address, name, "secret")
    slow = build_message(rendered, recipient, settings, secret="secret")
    return [factory.build(recipient)[0], message_bytes(slow), slow.as_bytes()]


def header_lines(raw: bytes, name: str) -> list[bytes]:
    """The physical lines of one header, as written."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].split(b"\n")
    start = next(i for i, line in enumerate(head) if line.lower().startswith(name.lower().encode() + b":"))
    end = start + 1
    while end < len(head) and head[end][:1] in (b" ", b"\t"):
        end += 1
    return head[start:end]


# -- item 3: addresses --------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "in_headers"), [
    ("δοκιμή@example.com", "δοκιμή@example.com"),
    ("ana@bücher.example", "ana@xn--bcher-kva.example"),
    ("ana@xn--bcher-kva.example", "ana@xn--bcher-kva.example"),
    ("ana@BÜCHER.example", "ana@xn--bcher-kva.example"),
    ("δοκιμή@bücher.example", "δοκιμή@xn--bcher-kva.example"),
])
def test_any_address_gives_a_message(settings: Settings, rendered: RenderedEmail, factory: MessageFactory,
                                     address: str, in_headers: str) -> None:
    for raw in every_way(settings, rendered, factory, address, "Ana"):
        msg = parse(raw)
        assert msg["To"].addresses[0].addr_spec == in_headers
        assert msg["To"].addresses[0].display_name == "Ana"
        # Python's parser predates RFC 6532 and flags a UTF-8 local part; nothing else is amiss.
        assert not msg.defects and all(isinstance(d, NonASCIILocalPartDefect) for d in msg["To"].defects)
        # UTF-8 headers (RFC 6532) only when the address needs them; otherwise plain ASCII.
        head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
        assert head.isascii() == in_headers.isascii()
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert f"because {address} subscribed" in html  # the body shows the address as the list has it


def test_ascii_address_is_the_smtp_envelope_form() -> None:
    assert ascii_address("ana@bücher.example") == "ana@xn--bcher-kva.example"
    assert ascii_address("ana@xn--bcher-kva.example") == "ana@xn--bcher-kva.example"
    assert ascii_address("reader@example.com") == "reader@example.com"
    assert ascii_address("δοκιμή@example.com") is None
    assert ascii_address("δοκιμή@bücher.example") is None
    with pytest.raises(RecipientError, match="not a valid internationalized domain"):
        ascii_address("ana@☃.example")


@pytest.mark.parametrize(("address", "name", "reason"), [
    ("ana@☃.example", "Ana", "internationalized domain"),
    ("ana\x00@example.com", "Ana", "control character U\\+0000"),
    ("ana@exa\x07mple.com", "Ana", "control character U\\+0007"),
    ("ana@example.com", "Ana\x00Lovelace", "control character U\\+0000"),
    ("ana@example.com", "Ana\x1bLovelace", "control character U\\+001B"),
    ("ana@example.com", "Ana\x85Lovelace", "control character U\\+0085"),
    ("ana@example.com", "Ana\x7f", "control character U\\+007F"),
    ("ana@example.com", "Ana\ud800", "control character U\\+D800"),
    ("ana lovelace@example.com", "Ana", "cannot be written in a message header"),
    ("ana<x>@example.com", "Ana", "cannot be written in a message header"),
])
def test_what_cannot_be_a_header_is_a_recipient_error(settings: Settings, rendered: RenderedEmail,
                                                      factory: MessageFactory, address: str, name: str,
                                                      reason: str) -> None:
    recipient = recipient_for(settings, address, name, "secret")
    with pytest.raises(RecipientError, match=reason):
        factory.build(recipient)
    with pytest.raises(RecipientError, match=reason):
        build_message(rendered, recipient, settings, secret="secret")


# -- item 4: List-Unsubscribe, long lines, literal names ----------------------------------------------

@pytest.mark.parametrize("name", ["Ada", *LONG_NAMES, LONG_NAMES[0] * 5])
@pytest.mark.parametrize("address", ["reader@example.com", "δοκιμή@example.com"])
def test_list_unsubscribe_is_a_list_of_uris_on_every_path(settings: Settings, rendered: RenderedEmail,
                                                          factory: MessageFactory, name: str, address: str) -> None:
    url = URL.format(email=address.replace("δοκιμή", "%CE%B4%CE%BF%CE%BA%CE%B9%CE%BC%CE%AE"),
                     token=unsubscribe_token("secret", address))
    for raw in every_way(settings, rendered, factory, address, name):
        lines = header_lines(raw, "List-Unsubscribe")
        assert lines == [f"List-Unsubscribe: <{url}>,".encode(), f" {MAILTO}".encode()]  # folded between items only
        msg = parse(raw)
        assert msg["List-Unsubscribe"] == f"<{url}>, {MAILTO}"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize("name", ["渡" * 10_000, "Ω" * 10_000, "a" * 10_000, "word " * 2_000,
                                  "Ж" * 50 + " " + "x" * 9_000, '"' * 10_000, "=?utf-8?q?x?= " * 700])
def test_no_header_line_is_longer_than_998_bytes(settings: Settings, rendered: RenderedEmail,
                                                 factory: MessageFactory, name: str) -> None:
    for raw in every_way(settings, rendered, factory, "reader@example.com", name):
        head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
        assert max(len(line) for line in head.split(b"\n")) <= 998
        to = header_lines(raw, "To")
        assert all(len(line) <= 78 for line in to)
        # The name is cut short, whole characters, with an ellipsis (decoded as RFC 2047 says).
        shown = str(make_header(decode_header(b"".join(to).decode()[4:])))
        shortened = " ".join(name.split())[: MAX_NAME - 1].rstrip() + "…"
        assert shown == f"{shortened} <reader@example.com>"


@pytest.mark.parametrize("name", ["=?utf-8?q?Bcc=3A_x?=", "=?UTF-8?B?QmNjOiB4?=", "Ana =?utf-8?q?x?= Lovelace",
                                  "Ana\r\nBcc: x@example.com", 'Zoë "Z" Smith, Jr.', "Lee, Ann; <x@y.z>"])
def test_a_name_arrives_as_written(settings: Settings, rendered: RenderedEmail, factory: MessageFactory,
                                   name: str) -> None:
    for raw in every_way(settings, rendered, factory, "reader@example.com", name):
        msg = parse(raw)
        assert msg["Bcc"] is None and len(msg["To"].addresses) == 1
        assert msg["To"].addresses[0].addr_spec == "reader@example.com"
        assert msg["To"].addresses[0].display_name == " ".join(name.split())


@pytest.mark.parametrize("name", LONG_NAMES)
def test_long_non_ascii_names_decode_exactly(settings: Settings, rendered: RenderedEmail, factory: MessageFactory,
                                             name: str) -> None:
    """Encoded-words break after a space where they can, and every decoder that follows RFC 2047
    (dropping the folding between encoded-words) gives the name back."""
    for raw in every_way(settings, rendered, factory, "reader@example.com", name):
        to = b"".join(header_lines(raw, "To")).decode()
        assert str(make_header(decode_header(to[4:]))) == f"{name} <reader@example.com>"
