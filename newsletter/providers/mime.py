"""Per-recipient MIME bytes at the speed a large SMTP or outbox send needs.

newsletter.render.message.build_message is the reference: it builds the message with the standard
library's email package, which costs about 3 ms a message (header objects, folding, a pure
Python quoted-printable encoder), more than the SMTP exchange itself. So one message is built
per send for a sample recipient, and every recipient's message reuses what does not change:
the shared headers exactly as the email package wrote them, the MIME boundary, each part's
headers. Only To, Date, Message-ID and List-Unsubscribe are written per recipient (To and
List-Unsubscribe by newsletter.render.headers, as build_message writes them), and the two parts are
personalized and encoded with binascii's C encoders. A quoted-printable part's text between its
placeholders is encoded once per send; each message encodes only the recipient's values and
joins the pieces with soft line breaks (RFC 2045 6.7), which decode to exactly the personalized
content. Encoding the whole part again for every message was most of a message's cost. A recipient with a
non-ASCII local part gets a To header in UTF-8 (RFC 6532; the message then needs SMTPUTF8); the
shared headers stay as the email package wrote them, which is valid in such a message too.
tests/test_providers_mime.py checks that both ways give the same message.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from newsletter.models import Recipient
from newsletter.providers.base import Letter
from newsletter.render.headers import PreFolded, to_header
from newsletter.render.message import (
    SAMPLE_RECIPIENT,
    Links,
    build_message,
    fill,
    placeholder_pieces,
    substitutions,
    unsubscribe_headers,
)

PER_RECIPIENT = ("to", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post")


def _header_blocks(head: bytes) -> list[tuple[str, bytes]]:
    """Split a serialized header block into (lower-case name, the header's folded lines)."""
    blocks: list[tuple[str, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and blocks:
            name, raw = blocks[-1]
            blocks[-1] = (name, raw + b"\r\n" + line)
        elif line:
            blocks.append((line.split(b":", 1)[0].decode("ascii").lower(), line))
    return blocks


class MessageFactory:
    """Build each recipient's message from one reference message of the send."""

    def __init__(self, letter: Letter) -> None:
        self.letter = letter
        self.links = Links(letter.settings, letter.secret)
        self.domain = letter.settings.sender_domain  # parsed once, not once a message
        sample = self.links.recipient(SAMPLE_RECIPIENT.email, SAMPLE_RECIPIENT.name)
        reference = self._slow(sample)
        raw = reference.as_bytes(policy=email_policy.SMTP)
        head = raw.split(b"\r\n\r\n", 1)[0]
        self.headers = _header_blocks(head)
        self.boundary = str(reference.get_boundary()).encode("ascii")
        self.parts: list[tuple[bytes, str]] = []  # (part header bytes, transfer encoding)
        for part in reference.iter_parts():
            part_raw = part.as_bytes(policy=email_policy.SMTP)
            cte = str(part.get("Content-Transfer-Encoding", "7bit")).lower()
            encoding = "base64" if cte == "base64" else "quoted-printable"
            lines = [raw_h for name, raw_h in _header_blocks(part_raw.split(b"\r\n\r\n", 1)[0])
                     if name != "content-transfer-encoding"]
            lines.append(b"Content-Transfer-Encoding: " + encoding.encode())
            self.parts.append((b"\r\n".join(lines), encoding))
        rendered = letter.rendered
        self.contents = [_Content(rendered.text, self.parts[0][1]), _Content(rendered.html, self.parts[1][1])]

    def build(self, recipient: Recipient) -> tuple[bytes, str]:
        """The complete message for one recipient (CRLF line ends), and its Message-ID.

        Raises RecipientError when this recipient's message cannot be built (see mailheaders).
        A recipient without an unsubscribe link gets theirs made here (Links.linked).
        """
        recipient = self.links.linked(recipient)
        message_id = make_msgid(idstring=self.letter.rendered.slug, domain=self.domain)
        own = self._own_headers(recipient, message_id)
        head = []
        for name, raw in self.headers:
            if name in PER_RECIPIENT:
                head.extend(own.pop(name, []))
            else:
                head.append(raw)
        head.extend(line for lines in own.values() for line in lines)
        subs = substitutions(recipient)
        bodies = [content.encode(subs) for content in self.contents]
        out = [b"\r\n".join(head), b"\r\n\r\n"]
        for (part_head, _), body in zip(self.parts, bodies, strict=True):
            out += [b"--", self.boundary, b"\r\n", part_head, b"\r\n\r\n", body, b"\r\n"]
        out += [b"--", self.boundary, b"--\r\n"]
        return b"".join(out), message_id

    def _slow(self, recipient: Recipient, message_id: str | None = None) -> EmailMessage:
        return build_message(self.letter.rendered, recipient, self.letter.settings, secret=self.letter.secret,
                             subject_prefix=self.letter.subject_prefix, message_id=message_id)

    def _own_headers(self, recipient: Recipient, message_id: str) -> dict[str, list[bytes]]:
        """To, Date, Message-ID, List-Unsubscribe(-Post) as header lines."""
        own = {"to": list(to_header(recipient.name, recipient.email).lines),
               "date": ["Date: " + format_datetime(dt.datetime.now(dt.UTC))],
               "message-id": ["Message-ID: " + message_id]}
        for name, value in unsubscribe_headers(recipient, self.links).items():
            own[name.lower()] = list(value.lines) if isinstance(value, PreFolded) else [f"{name}: {value}"]
        return {k: ["\r\n".join(v).encode("utf-8")] for k, v in own.items()}


class _Content:
    """One part's content, its placeholders filled and encoded for each recipient."""

    def __init__(self, template: str, encoding: str) -> None:
        self.template, self.encoding = template, encoding
        pieces = placeholder_pieces(template)
        self.tokens = pieces[1::2]
        # Quoted-printable: the text between placeholders encoded once, each piece ending a line.
        self.texts = [_line_end(_encode(text, encoding)) for text in pieces[0::2]]

    def encode(self, subs: Mapping[str, str]) -> bytes:
        if self.encoding == "base64":  # base64 cannot be joined piece by piece: the whole part, once a message
            return _encode(fill(self.template, subs), self.encoding)
        out = [self.texts[0]]
        for token, text in zip(self.tokens, self.texts[1:], strict=True):
            out += [_line_end(_encode(subs[token], self.encoding)), text]
        return b"".join(out).removesuffix(b"=\r\n")


def _line_end(encoded: bytes) -> bytes:
    """The encoded piece ending its line: with a soft line break unless it ends with a hard one."""
    return encoded if not encoded or encoded.endswith(b"\r\n") else encoded + b"=\r\n"


def _encode(content: str, encoding: str) -> bytes:
    data = content.encode("utf-8")
    if encoding == "base64":
        return base64.encodebytes(data).replace(b"\n", b"\r\n").rstrip(b"\r\n")
    encoded = binascii.b2a_qp(data.replace(b"\r\n", b"\n"), istext=True)
    return encoded.replace(b"\n", b"\r\n")
