"""The per-recipient header lines (To, List-Unsubscribe), written by hand, the same on every path.

The email package folds a long List-Unsubscribe into RFC 2047 encoded-words (which no receiver
decodes, so one-click unsubscribe breaks), splits a long non-ASCII name mid-word, writes an IDN
domain as an encoded-word (invalid), and raises on a non-ASCII local part. So these two headers
are written here, already folded, and handed to the email package as header objects it writes
as they are (email.policy: a value with a `name` attribute is folded by its own `fold`):

- an address: ASCII local part and A-label (IDNA 2008, UTS 46) domain, or, for a non-ASCII
  local part, the UTF-8 address (RFC 6532: the message then needs SMTPUTF8);
- a display name: as it is when it is plain ASCII words, a quoted string when it has specials,
  RFC 2047 encoded-words (base64) when it has non-ASCII or looks like an encoded-word itself,
  so a receiver that decodes the header sees exactly the name; at most MAX_NAME characters;
- List-Unsubscribe: `<URI>`s, one a line, folded only between them.

Every line stays under 78 characters where a break is allowed, and never over 998 bytes.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from email.policy import Policy
from urllib.parse import quote

import idna

from newsletter.errors import RecipientError

MAX_NAME = 100  # characters of a display name; a longer one is cut short with "…"
MAX_LINE = 998  # bytes (RFC 5322 2.1.1)
FOLD_AT = 78
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_LOCAL = re.compile(rf"[{_ATEXT}\u0080-\U0010ffff]+(?:\.[{_ATEXT}\u0080-\U0010ffff]+)*")
_QUOTED_LOCAL = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"')
_PLAIN_NAME = re.compile(rf"[{_ATEXT} ]+")
_EW_BYTES = 45  # raw bytes per encoded-word: 60 base64 characters, 72 with =?utf-8?b?...?=


class PreFolded(str):
    """A header the email package writes exactly as folded here, whatever the policy."""

    name: str
    lines: tuple[str, ...]

    def __new__(cls, name: str, lines: list[str]) -> PreFolded:
        value = super().__new__(cls, " ".join(line.strip() for line in lines).removeprefix(f"{name}: "))
        value.name, value.lines = name, tuple(lines)
        return value

    def __reduce__(self) -> tuple[type[PreFolded], tuple[str, list[str]]]:
        return (PreFolded, (self.name, list(self.lines)))

    def fold(self, *, policy: Policy) -> str:
        """The header's lines joined by the policy's line ending."""
        return policy.linesep.join(self.lines) + policy.linesep


# Unicode's Cc and Cs categories but TAB, CR and LF: the per-character check below, in one pass of C.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def refuse_controls(value: str, what: str) -> None:
    """Raise RecipientError when a value holds a control character (CR, LF, TAB fold to spaces)."""
    if _CONTROL.search(value) is None:  # called for every recipient of a send: the common case fast
        return
    for char in value:
        if char not in "\t\r\n" and (unicodedata.category(char) in ("Cc", "Cs")):
            raise RecipientError(f"{what} contains the control character U+{ord(char):04X}")


def header_address(email: str) -> str:
    """The address as written in a header: the domain as A-labels, the local part as it is."""
    refuse_controls(email, f"the address {email!r}")
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise RecipientError(f"{email!r} is not an email address")
    if not (_LOCAL.fullmatch(local) or _QUOTED_LOCAL.fullmatch(local)):
        raise RecipientError(f"the address {email!r} cannot be written in a message header")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise RecipientError(f"the domain of {email!r} is not a valid internationalized domain: {exc}") from None
    return f"{local}@{domain}"


def ascii_address(email: str) -> str | None:
    """The address in ASCII (A-label domain), or None when its local part is not ASCII.

    None means the message can only travel with SMTPUTF8 (RFC 6531/6532). Raises
    RecipientError for an address that cannot be written at all.
    """
    address = header_address(email)
    return address if address.isascii() else None


def short_name(name: str) -> str:
    """One line of at most MAX_NAME characters (a longer name is cut short with "…")."""
    name = " ".join(name.split())
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1].rstrip() + "…"


def to_header(name: str, email: str) -> PreFolded:
    """To: the recipient's name (see the module docstring) and address, folded."""
    refuse_controls(name, "the name")
    address = header_address(email)
    display = short_name(name)
    if not display:
        return _fold("To", [address])
    return _fold("To", [*_name_words(display), f"<{address}>"])


def _name_words(name: str) -> list[str]:
    if "=?" in name or not name.isascii() or not name.isprintable():
        return _encoded_words(name)
    if _PLAIN_NAME.fullmatch(name):
        return name.split(" ")
    words = name.replace("\\", "\\\\").replace('"', '\\"').split(" ")
    words[0], words[-1] = '"' + words[0], words[-1] + '"'
    return words


def _encoded_words(name: str) -> list[str]:
    """RFC 2047 base64 words of whole characters, broken after a space where one is near.

    A space stays inside the word before the break, so a decoder (which drops the folding
    between two encoded-words) puts it back; a word too long for one is split between characters.
    """
    chunks = [""]
    for piece in re.findall(r"\S+\s*|\s+", name):
        if len((chunks[-1] + piece).encode("utf-8")) <= _EW_BYTES:
            chunks[-1] += piece
            continue
        if chunks[-1]:
            chunks.append("")
        for char in piece:
            if len((chunks[-1] + char).encode("utf-8")) > _EW_BYTES:
                chunks.append("")
            chunks[-1] += char
    return [f"=?utf-8?b?{base64.b64encode(c.encode('utf-8')).decode('ascii')}?=" for c in chunks]


def list_unsubscribe_header(links: list[str]) -> PreFolded:
    """List-Unsubscribe: each link as <URI> (RFC 2369), one a line, never encoded."""
    uris = _uris(links)
    lines = [("List-Unsubscribe: " if i == 0 else " ") + uri + ("," if i < len(uris) - 1 else "")
             for i, uri in enumerate(uris)]
    return PreFolded("List-Unsubscribe", lines)


def list_unsubscribe_value(links: list[str]) -> str:
    """The same header's value on one line, for an API that folds it itself (SendGrid's headers)."""
    return ", ".join(_uris(links))


def _uris(links: list[str]) -> list[str]:
    """Each link as <URI>, each short enough for a header line of its own (with the header's name)."""
    uris = [f"<{_as_uri(link)}>" for link in links]
    if any(len(uri) + len("List-Unsubscribe: ,") > MAX_LINE for uri in uris):
        raise RecipientError(f"the unsubscribe link is longer than a header line may be ({MAX_LINE} bytes)")
    return uris


_URI_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '<>"%') + "%"  # built once, not per link
_NOT_URI_SAFE = re.compile('[^\x21\x23-\x3b\x3d\x3f-\x7e]')  # what quote(link, safe=_URI_SAFE) changes: not <>"


def _as_uri(link: str) -> str:
    """The link with anything a URI may not hold (non-ASCII, spaces, <>) percent-encoded."""
    if _NOT_URI_SAFE.search(link) is None:  # every link of a send, in practice: nothing to check or encode
        return link
    refuse_controls(link, "the unsubscribe link")
    return quote(link, safe=_URI_SAFE)


def _fold(name: str, words: list[str]) -> PreFolded:
    """Words joined by spaces, a line broken at a space before it passes FOLD_AT."""
    lines = [f"{name}: {words[0]}"]
    for word in words[1:]:
        if len((lines[-1] + " " + word).encode("utf-8")) > FOLD_AT:
            lines.append(" " + word)
        else:
            lines[-1] += " " + word
    return PreFolded(name, lines)
