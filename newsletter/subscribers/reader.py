"""Reading the subscriber file strictly, fast enough for a million rows.

Reading takes no lock: every write replaces the whole file with one os.replace (see
subscribers.writer), so a reader sees the old file or the new one, never a mix. Broken quoting,
a bad encoding, a row wider than the header, a malformed address, an unknown status or a
repeated address stop the reader with the file and line: a read never repairs anything.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import re
import unicodedata
from array import array
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, TypeVar

from newsletter.errors import SubscriberError
from newsletter.subscribers.schema import (
    ADDRESS_PATTERN,
    ASCII_DOMAIN_PATTERN,
    CHECK_HINT,
    ENCODING_HINT,
    STATUS_RANK,
    Layout,
    control_character,
    email_key,
    has_control,
    parse_header,
    plausible_address,
    shown,
)

_BLOCK = 4096  # rows whose addresses are checked together
_SMALL_BLOCK = 256  # ...when the rows are kept too: small enough to stay in the CPU's cache
_ADDRESSES = re.compile(f"(?:{ADDRESS_PATTERN}\n)*{ADDRESS_PATTERN}")
_ASCII_DOMAINS = re.compile(f"(?:{ASCII_DOMAIN_PATTERN}\n)*{ASCII_DOMAIN_PATTERN}")
_HEADER_HINT = ("names and addresses go into mail headers, where a control character (a line break too) "
                "does not belong: edit the cell (or run 'newsletter subscribers check' to list every one)")
_STATUSES = frozenset(STATUS_RANK)
T = TypeVar("T")


class ListReader:
    """One snapshot of a subscriber file, opened for strict reading (a context manager)."""

    def __init__(self, path: Path) -> None:
        self.path, self.where = path, shown(path)
        try:
            self._file = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise SubscriberError(
                f"{self.where}: no such file",
                hint="add someone with 'newsletter subscribers add ADDRESS' or bring a list in with 'import'",
            ) from None
        except OSError as exc:
            raise SubscriberError(f"{self.where}: cannot read it: {exc.strerror}") from None
        try:
            bom = self._file.buffer.peek(3)[:3] == codecs.BOM_UTF8  # type: ignore[attr-defined]
            header = self._file.readline()
        except UnicodeDecodeError:
            self.close()
            raise self._encoding_error() from None
        self.empty = not header.strip()
        self.layout = Layout(bom=bom) if self.empty else parse_header(self.where, header, bom)
        self.found: dict[str, tuple[int, int, list[str]]] = {}  # see collect's want
        self.keys: set[str] = set()  # every row's email key, once collect has read them all

    def __enter__(self) -> ListReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def error(self, start: int, end: int, message: str, hint: str | None = CHECK_HINT) -> SubscriberError:
        """A SubscriberError for the row on lines start..end."""
        if end > start:
            message += f" (this row runs from line {start} to line {end}: is a quote missing?)"
        return SubscriberError(f"{self.where}:{start}: {message}", hint=hint)

    def records(self, on_problem: Callable[[int, str], None] | None = None) -> Iterator[tuple[int, int, list[str]]]:
        """Yield (first line, last line, values padded to the header's width); skip blank rows.

        Only the structure is checked. A row wider than the header, or with no address, raises
        SubscriberError, or with `on_problem` is reported to it and skipped; broken quoting and
        bad encoding always raise (nothing after them can be read).
        """
        width, ie = len(self.layout.fieldnames), self.layout.index.get("email", 0)
        reader = csv.reader(self._file, delimiter=self.layout.delimiter, strict=True)
        end = 1
        with self._structure(reader):
            for row in reader:
                start, end = end + 1, reader.line_num + 1
                if len(row) != width or not row[ie]:
                    if not any(v.strip() for v in row):
                        continue
                    problem = self._pad(row)
                    if problem is not None:
                        if on_problem is None:
                            raise self.error(start, end, problem)
                        on_problem(start, problem)
                        continue
                yield start, end, row

    def checked(self) -> Iterator[list[str]]:
        """Yield each row (padded to the header's width), checking addresses a block behind.

        Structure and status are checked row by row, addresses and repeats a block of rows at a
        time, so act on nothing until the iteration ends: a malformed list raises SubscriberError
        (with its line) before it does.
        """
        ie, ist, width, inm = self._positions()
        block = _Block(self, frozenset(), keep_keys=False)
        emails, add_email, add_name = block.emails, block.emails.append, block.names.append
        reader = csv.reader(self._file, delimiter=self.layout.delimiter, strict=True)
        with self._structure(reader):
            for row in reader:
                if (len(row) != width or not row[ie]) and self._blank(row, reader.line_num):
                    continue
                if ist is not None and row[ist] not in _STATUSES:
                    raise self._bad_status(row, reader.line_num)
                add_email(row[ie])
                add_name(row[inm])
                if len(emails) >= _BLOCK:
                    block.check()
                yield row
        block.check()

    def collect(
        self, make: Callable[[list[str]], T], statuses: Collection[str] | None = None, want: Collection[str] = ()
    ) -> list[T]:
        """make(row) for every row with one of `statuses` (None: all), the whole file checked.

        checked() and a filter with the loop in one frame (no yield per row): a send's load, a
        count and every change's scan go through here. The rows whose email key is in `want`
        are kept in self.found as key -> (first line, last line, values).
        """
        ie, ist, width, inm = self._positions()
        wanted = _STATUSES if statuses is None else frozenset(statuses)
        if ist is None:  # a list without a status column is a list of active people
            wanted = _STATUSES if "active" in wanted else frozenset()
        out: list[T] = []
        keep, block, looking = out.append, _Block(self, frozenset(want)), bool(want)
        emails, add_email, add_row, add_end = block.emails, block.emails.append, block.rows.append, block.ends.append
        add_name = block.names.append
        size = _SMALL_BLOCK if looking else _BLOCK  # a change's scan keeps its block of rows: keep it small
        reader = csv.reader(self._file, delimiter=self.layout.delimiter, strict=True)
        with self._structure(reader):
            for row in reader:
                if (len(row) != width or not row[ie]) and self._blank(row, reader.line_num):
                    continue
                status = row[ist] if ist is not None else "active"
                if status in wanted:
                    keep(make(row))
                elif status not in _STATUSES:
                    raise self._bad_status(row, reader.line_num)
                add_email(row[ie])
                add_name(row[inm])
                if looking:  # to hand back the rows it wants, with their lines
                    add_row(row)
                    add_end(reader.line_num)
                if len(emails) >= size:
                    block.check()
        block.check()
        self.keys = block.seen
        return out

    def span_of(self, ordinal: int) -> tuple[int, int]:
        """(first line, last line) of the row at this position (0: the first; blank rows skipped).

        Read again from this snapshot: only an error message needs it.
        """
        self._file.seek(0)
        self._file.readline()
        rows = (r for r in self.records(on_problem=lambda line, what: None))
        return next((start, end) for n, (start, end, _) in enumerate(rows) if n == ordinal)

    def repeated(self) -> SubscriberError | None:
        """The error for the first address listed twice (found by reading the file again), or None."""
        first: dict[str, int] = {}
        with ListReader(self.path) as again:
            ie = again.layout.index["email"]
            for start, end, row in again.records():
                line = first.setdefault(email_key(row[ie]), start)
                if line != start:
                    return again.error(start, end, f"{row[ie]} is listed twice (first on line {line})")
        return None

    def _positions(self) -> tuple[int, int | None, int, int]:
        """The email, status and name columns (the email's again if there is no name) and the width."""
        index = self.layout.index
        return index["email"], index.get("status"), len(self.layout.fieldnames), index.get("name", index["email"])

    def _blank(self, row: list[str], line_num: int) -> bool:
        """True for a blank row (to skip); pads a short one; raises for one too wide or with no address."""
        if not any(v.strip() for v in row):
            return True
        if (problem := self._pad(row)) is not None:
            raise self.error(*_span(row, line_num + 1), problem)
        return False

    def _bad_status(self, row: list[str], line_num: int) -> SubscriberError:
        status = row[self.layout.index["status"]]
        message = f"unknown status {status!r} (expected {', '.join(STATUS_RANK)})"
        return self.error(*_span(row, line_num + 1), message)

    def _pad(self, row: list[str]) -> str | None:
        """Pad a short row to the header's width; or say what is wrong with it."""
        width, ie = len(self.layout.fieldnames), self.layout.index.get("email", 0)
        if len(row) > width:
            return f"{len(row)} values but the header has {width} columns"
        row += [""] * (width - len(row))
        return None if row[ie].strip() else "no email address in this row"

    @contextlib.contextmanager
    def _structure(self, reader: Any) -> Iterator[None]:
        """Turn csv and decoding failures into one clear SubscriberError with the line."""
        try:
            yield
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                line = self._last_row_start()
                raise self.error(line, line, "a quote opened in this row is never closed") from None
            raise self.error(reader.line_num + 1, reader.line_num + 1, f"broken quoting ({exc})") from None
        except UnicodeDecodeError:
            raise self._encoding_error() from None

    def _last_row_start(self) -> int:
        with open(self.path, encoding="utf-8-sig", newline="") as again:
            again.readline()
            reader = csv.reader(again, delimiter=self.layout.delimiter)
            start = end = 1
            for _ in reader:
                start, end = end + 1, reader.line_num + 1
            return start

    def _encoding_error(self) -> SubscriberError:
        with open(self.path, "rb") as raw:
            for number, line in enumerate(raw, 1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad = line[exc.start : exc.start + 1].hex()
                    text = line.decode("utf-8", "replace").strip()
                    return SubscriberError(
                        f"{self.where}:{number}: not UTF-8 (byte 0x{bad} in {text!r})", hint=ENCODING_HINT
                    )
        return SubscriberError(f"{self.where}: not UTF-8", hint=ENCODING_HINT)


class _Block:
    """Addresses and names waiting to be checked together: addresses' shape by one regex match over
    the block, control characters in names by one pass over their bytes, repeats by one set update
    (a per-row Python check would double the cost of reading)."""

    def __init__(self, reader: ListReader, want: frozenset[str], *, keep_keys: bool = True) -> None:
        self.reader, self.want = reader, want
        self.seen: set[str] = set()  # every key so far (reader.keys), when keep_keys
        # Otherwise only the keys' hashes: a read that needs no keys afterwards (a send's plan)
        # holds no address beyond its row, at a third of the memory; a hash that repeats is told
        # from a true repeat by reading the file again (repeated), which happens only for a bad list.
        self.hashes: set[int] | None = None if keep_keys else set()
        self.emails: list[str] = []
        self.names: list[str] = []  # the name column's values (the address's if there is none)
        self.ends = array("L")  # while looking: each row's reader.line_num (+1: its last line)
        self.rows: list[list[str]] = []  # only while looking for wanted rows
        self.done = 0  # rows checked in earlier blocks

    def check(self) -> None:
        """Check the queued addresses (the caller appends to .emails and .ends), then empty the block."""
        emails, ends, reader = self.emails, self.ends, self.reader
        joined = "\n".join(emails)
        international = bool(emails) and _ASCII_DOMAINS.fullmatch(joined) is None  # a domain not in ASCII?
        if international and _ADDRESSES.fullmatch(joined) is None:
            i = next(i for i, e in enumerate(emails) if not plausible_address(e))
            raise self._bad(i, emails[i], "address")
        if has_control("".join(self.names)):
            i = next(i for i, n in enumerate(self.names) if control_character(n))
            raise self._bad(i, self.names[i], "name")
        if joined.isascii():
            lowered = joined.lower()
            keys = emails if lowered == joined else lowered.split("\n")  # usually nothing to lower
        elif not international:  # email_key at C speed: NFC, then lower
            folded = unicodedata.normalize("NFC", joined).lower()
            keys = emails if folded == joined else folded.split("\n")  # usually already NFC, lower case
        else:  # a domain to turn into its A-label: rare
            keys = [email_key(e) for e in emails]
        if self._new(keys) != len(keys):  # a repeat, or (rarely) two keys with one hash
            repeated = reader.repeated()
            if repeated is not None:
                raise repeated
            if self.hashes is None:
                raise SubscriberError(f"{reader.where}: an address is listed twice", hint=CHECK_HINT)
        if self.want and (hits := self.want.intersection(keys)):
            where = {k: i for i, k in enumerate(keys)} if len(hits) > 8 else {k: keys.index(k) for k in hits}
            for key in sorted(hits, key=where.__getitem__):  # in file order
                row = self.rows[where[key]]
                reader.found[key] = (*_span(row, ends[where[key]] + 1), row)
        self.done += len(emails)
        emails.clear()  # in place: the reading loop holds these lists' methods
        self.names.clear()
        del ends[:]
        self.rows.clear()

    def _new(self, keys: list[str]) -> int:
        """Remember the keys (or their hashes); how many were not seen before."""
        if self.hashes is None:
            before = len(self.seen)
            self.seen.update(keys)
            return len(self.seen) - before
        before = len(self.hashes)
        self.hashes.update(map(hash, keys))
        return len(self.hashes) - before

    def _bad(self, i: int, value: str, what: str) -> SubscriberError:
        """The error for the i-th queued row, whose address or name (`what`) is refused."""
        reader, start, end = self.reader, *self.reader.span_of(self.done + i)
        found = control_character(value)
        if found is None:
            return reader.error(start, end, f"{value!r} is not a valid address")
        breaks = f" (this row runs from line {start} to line {end})" if end > start else ""
        return SubscriberError(f"{reader.where}:{start}: the {what} {value!r} contains a control character "
                               f"({found!r}){breaks}", hint=_HEADER_HINT)


def _span(row: list[str], end: int) -> tuple[int, int]:
    """(first line, last line) of a row that ends on line `end`: quoted line breaks add lines."""
    breaks = sum(v.count("\n") + v.count("\r") - v.count("\r\n") for v in row)
    return end - breaks, end
