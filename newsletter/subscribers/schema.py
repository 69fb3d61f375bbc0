"""The subscriber CSV format: columns, statuses, the header, and rows <-> Subscriber.

`email,name,status,tags,created_at,updated_at,source` plus any columns of the writer's own, in
any order; `;`-separated tags; ISO 8601 UTC times. Reading is in subscribers.reader, writing in
subscribers.writer. normalize_email is the one place an address is validated (email-validator).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from functools import cached_property
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import idna
from email_validator import EmailNotValidError, validate_email

from newsletter.errors import SubscriberError
from newsletter.models import SUBSCRIBER_STATUSES, Subscriber

COLUMNS = ("email", "name", "status", "tags", "created_at", "updated_at", "source")
# Higher wins when two sources disagree: a person who complained is never mailed again,
# an unsubscribe is a person's wish, a bounce is only the address failing.
STATUS_RANK = {"active": 0, "bounced": 1, "unsubscribed": 2, "complained": 3}
CHECK_HINT = "run 'newsletter subscribers check' to list every problem ('check --fix' repairs what it safely can)"
ENCODING_HINT = (
    "save it as UTF-8 (a spreadsheet's 'CSV UTF-8'), or bring it in with "
    "'newsletter subscribers import FILE --encoding cp1252'"
)
_DELIMITERS = (",", ";", "\t")
# The cheap shape check every read does; email-validator's full check runs on input and in `check`.
# possessive (++) where backtracking cannot help: reading checks a million of these
# _NOT_IN_ADDRESS: control characters (C0, DEL, C1: an address goes into mail headers) and the
# characters of \s, spelled out: a class of ranges alone is a bitmap, 30% faster than one with \s.
_NOT_IN_ADDRESS = r'@"<>,;\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000'
ADDRESS_PATTERN = f"[^{_NOT_IN_ADDRESS}]++@[^.{_NOT_IN_ADDRESS}][^{_NOT_IN_ADDRESS}]*\\.[^.{_NOT_IN_ADDRESS}]++"
_NOT_IN_DOMAIN = f"{_NOT_IN_ADDRESS}\\xa1-\\U0010ffff"
# The same with an ASCII domain (nearly every address): matching it, a block needs no IDNA.
ASCII_DOMAIN_PATTERN = f"[^{_NOT_IN_ADDRESS}]++@[^.{_NOT_IN_DOMAIN}][^{_NOT_IN_DOMAIN}]*\\.[^.{_NOT_IN_DOMAIN}]++"
_ADDRESS = re.compile(ADDRESS_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAILBOX = re.compile(r'\s*(?P<name>[^<>]*?)\s*<(?P<address>[^<>]*)>\s*')
_C0_BYTES = bytes([*range(0x20), 0x7F])
_C1_BYTES = re.compile(rb"\xc2[\x80-\x9f]")
_STATUSES = {s: s for s in SUBSCRIBER_STATUSES}
_NO_EXTRA: Mapping[str, str] = MappingProxyType({})


def shown(path: Path) -> str:
    """The path as the user knows it: relative to the current folder when it lies inside it."""
    if not path.is_absolute():
        return str(path)
    with contextlib.suppress(ValueError, OSError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def normalize_email(address: str) -> str:
    """Return the address trimmed, validated (syntax only, no network), NFC and domain lower-cased.

    A domain written as an A-label (`xn--...`) stays one: email-validator's `normalized` would
    turn it into Unicode, and the list keeps an address as its owner wrote it. Raises
    SubscriberError naming the address and what is wrong with it.
    """
    text = address.strip()
    if _CONTROL.search(text):
        raise SubscriberError(f"{address!r} is not a valid address: it contains a control character")
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(f"{address!r} is not a valid address: {exc}") from None
    if text.rpartition("@")[2].isascii() and not valid.domain.isascii():
        return f"{valid.local_part}@{valid.ascii_domain}"
    return valid.normalized


def has_control(text: str) -> bool:
    """Whether text holds a control character (C0, DEL, C1), checked at C speed for a whole block.

    A regex or str.isprintable takes ~5 ns a character; deleting the C0 bytes from the UTF-8
    and comparing lengths takes ~1 (C1 characters are the bytes \\xc2\\x80 to \\xc2\\x9f).
    """
    raw = text.encode("utf-8", "surrogatepass")
    return len(raw.translate(None, _C0_BYTES)) != len(raw) or (b"\xc2" in raw and _C1_BYTES.search(raw) is not None)


def tidy_name(text: str) -> str:
    """A name on one line: each control character (a line break too) becomes a space, runs of spaces one."""
    return " ".join(_CONTROL.sub(" ", text).split())


def control_character(text: str) -> str | None:
    """The first control character (C0, DEL, C1: CR and LF too) in text, if any.

    None of them belongs in an address or a name, which end up in mail headers.
    """
    found = _CONTROL.search(text)
    return found[0] if found else None


def split_mailbox(text: str) -> tuple[str, str]:
    """(address, name) from 'ADDRESS' or 'Name <ADDRESS>', as a person types them; else SubscriberError.

    The address is not validated here (normalize_email does that); the name may be quoted.
    """
    if "<" not in text and ">" not in text:
        return text.strip(), ""
    match = _MAILBOX.fullmatch(text)
    if match is None or not match["address"].strip():
        raise SubscriberError(f"{text!r} is neither an address nor 'Name <address>'",
                              hint="write it as ada@example.com or as 'Ada Lovelace <ada@example.com>'")
    address = match["address"].strip()
    name, parsed = parseaddr(text)
    return address, (name if parsed == address else match["name"].strip('"')).strip()


def plausible_address(text: str) -> bool:
    """The cheap shape check every read does (one @, a dotted domain, no spaces)."""
    return _ADDRESS.fullmatch(text) is not None


def email_key(address: str) -> str:
    """The one "same address" key, for the list and the ledger: two spellings of one address get one key.

    Case-insensitive; a non-ASCII address is taken in NFC (NFD spells the same address) with its
    domain as the A-label (`bücher.de` and `xn--bcher-kva.de` are one domain), so a tombstone in
    one spelling blocks the other. ASCII addresses, nearly all of a list, only get lower-cased.
    """
    if address.isascii():
        return address if address.islower() else address.lower()
    local, at, domain = unicodedata.normalize("NFC", address).rpartition("@")
    return f"{local.lower()}{at}{_domain_key(domain)}" if at else domain.lower()


@functools.lru_cache(maxsize=4096)
def _domain_key(domain: str) -> str:
    """A domain as its lower-case A-label; as written (lower-cased) if it is no valid IDN."""
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return domain.lower()


def iso_utc(text: str) -> str | None:
    """Read an ISO 8601 date or time (naive means UTC) into the stored form; None if it is not one."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when.replace(microsecond=0).isoformat() + "Z"


@dataclass(frozen=True)
class Layout:
    """How one subscriber file is written: its columns in order and its CSV dialect."""

    fieldnames: tuple[str, ...] = COLUMNS
    delimiter: str = ","
    newline: str = "\n"
    bom: bool = False

    @cached_property
    def index(self) -> Mapping[str, int]:
        """Position of each of our columns that the header has."""
        return {name: i for i, name in enumerate(self.fieldnames) if name in COLUMNS}

    @cached_property
    def extras(self) -> tuple[tuple[str, int], ...]:
        """The writer's own columns, with their positions."""
        return tuple((n, i) for i, n in enumerate(self.fieldnames) if n not in COLUMNS)

    def complete(self, extra_names: Iterable[str] = ()) -> Layout:
        """This layout with any of our missing columns and the given extra columns added."""
        names = dict.fromkeys(self.fieldnames)  # ordered, and a linear `in` for a wide header
        names.update(dict.fromkeys(COLUMNS))
        names.update(dict.fromkeys(extra_names))
        return Layout(tuple(names), self.delimiter, self.newline, self.bom)

    def writer(self, out: IO[str]) -> RowWriter:
        """A csv writer in this file's dialect."""
        return RowWriter(out, self.delimiter, self.newline)


class RowWriter:
    """csv.writer, except that a value holding a CR or an LF is always quoted.

    csv only quotes the characters of its own line terminator, so with "\n" endings a bare "\r",
    and with "\r" endings (old Mac and Excel files) a bare "\n", would be written unquoted, and
    read back (newline="") as the end of the row.
    """

    def __init__(self, out: IO[str], delimiter: str, newline: str) -> None:
        self._plain = csv.writer(out, delimiter=delimiter, lineterminator=newline)
        self._quoted = csv.writer(out, delimiter=delimiter, lineterminator=newline, quoting=csv.QUOTE_ALL)

    def writerow(self, values: Sequence[str]) -> None:
        """Write one row."""
        joined = "".join(values)
        (self._quoted if "\r" in joined or "\n" in joined else self._plain).writerow(values)

    def writerows(self, rows: Iterable[Sequence[str]]) -> None:
        """Write many rows."""
        for values in rows:
            self.writerow(values)


def parse_header(where: str, line: str, bom: bool) -> Layout:
    """Read the header row: find the delimiter by the email column, normalise our column names."""
    newline = "\r\n" if line.endswith("\r\n") else ("\r" if line.endswith("\r") else "\n")
    for delimiter in _DELIMITERS:
        names = [n.strip() for n in next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), [])]
        if "email" in (n.lower() for n in names):
            break
    else:
        raise SubscriberError(
            f"{where}:1: no 'email' column (the header reads {line.strip()!r})",
            hint="the first line must name the columns: " + ",".join(COLUMNS),
        )
    names = [n.lower() if n.lower() in COLUMNS else n for n in names]
    first: dict[str, int] = {}  # a dict, not names.index: a header may have 100,000 columns
    for i, name in enumerate(names):
        if not name:
            raise SubscriberError(f"{where}:1: column {i + 1} has no name", hint="name it or delete it")
        if first.setdefault(name, i) != i:
            raise SubscriberError(f"{where}:1: column {name!r} appears twice")
    return Layout(tuple(names), delimiter, newline, bom)


def split_tags(text: str) -> tuple[str, ...]:
    """The tags in a `;`-separated cell, trimmed, without empties or repeats."""
    return tuple(dict.fromkeys(t.strip() for t in text.split(";") if t.strip()))


class RowCodec:
    """Turns a row of one layout into a Subscriber and back, fast enough for a million rows."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._positions = [layout.index.get(c) for c in COLUMNS]
        complete = None not in self._positions
        self._get: Any = itemgetter(*self._positions) if complete else self._get_some
        self._extras = layout.extras
        self._tags: dict[str, tuple[str, ...]] = {"": ()}
        self._sources: dict[str, str] = {}
        self.subscriber = self._maker()
        """The Subscriber for a row (already checked)."""

    def _get_some(self, row: list[str]) -> tuple[str, ...]:
        got = tuple(row[i] if i is not None else "" for i in self._positions)
        return got if self._positions[2] is not None else got[:2] + ("active",) + got[3:]

    def tags(self, text: str) -> tuple[str, ...]:
        """The tags of a cell; repeated cells share one tuple."""
        found = self._tags.get(text)
        if found is None:
            found = split_tags(text)
            if len(self._tags) < 65536:
                self._tags[text] = found
        return found

    def _maker(self) -> Callable[[list[str]], Subscriber]:
        """The row -> Subscriber function, with everything it needs bound locally (a million calls)."""
        get, extras, sources, tags_cache, tags_of = self._get, self._extras, self._sources, self._tags, self.tags
        statuses, no_extra = _STATUSES, _NO_EXTRA

        def canonical(row: list[str]) -> Subscriber:  # email,name,status,tags,created_at,updated_at,source
            email, name, status, tags, created, updated, source = row
            if updated == created:
                updated = created  # one string for both: a million rows, tens of megabytes
            found = tags_cache.get(tags)
            return Subscriber(email, name, statuses[status], tags_of(tags) if found is None else found, created,
                              updated, sources.setdefault(source, source), no_extra)

        def any_layout(row: list[str]) -> Subscriber:
            email, name, status, tags, created, updated, source = get(row)
            if updated == created:
                updated = created
            extra = {n: row[i] for n, i in extras} if extras else no_extra
            return Subscriber(email, name, statuses[status], tags_of(tags), created, updated,
                              sources.setdefault(source, source), extra)

        return canonical if self.layout.fieldnames == COLUMNS else any_layout

    def row(self, sub: Subscriber) -> list[str]:
        """The values of a Subscriber in this layout's column order."""
        values = [""] * len(self.layout.fieldnames)
        ours = (sub.email, sub.name, sub.status, ";".join(sub.tags), sub.created_at, sub.updated_at, sub.source)
        for position, value in zip(self._positions, ours, strict=True):
            if position is not None:
                values[position] = value
        for name, i in self._extras:
            values[i] = sub.extra.get(name, "")
        return values
