"""The inbox: what readers did, as an append-only journal that the list is later folded from.

The reader service never writes the subscriber CSV. It appends one JSON line per event to
inbox/events.jsonl and fsyncs it before the reader gets an answer, so a 200 means the event is
on disk. `newsletter subscribers apply` folds the events into the list under the list's lock
(newsletter.subscribers.apply); `subscribers pull` copies a remote service's events in first.

Records (built only here): {"id", "at", "type", "source", ...}
    subscribe_requested  email, name?, tags?   (a confirmation email went out)
    confirmed            email, name?, tags?   (double opt-in done: the reader's own consent)
    unsubscribed         reader (an opaque id from the link) or email
    bounced              email, detail?
    complained           email, detail?
Offsets are byte positions in the file: a cursor that never moves backwards, because the file is
only ever appended to. A crash can tear only the last line; it never got its 200, and the next
writer cuts it off before appending.

Many threads of one service may record at once: each write is one os.write of whole lines on an
O_APPEND descriptor, and fsyncs are shared (group commit): a thread whose line an fsync already
covered does not fsync again, which is what lets one disk serve hundreds of requests a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from newsletter.errors import SubscriberError
from newsletter.files import fsync_dir, make_folders
from newsletter.models import now_iso

JOURNAL = "events.jsonl"
MAX_LINE = 64 * 1024  # one event is small; a longer line is not ours


class EventType(StrEnum):
    """What a reader (or a mail system, about a reader) did."""

    SUBSCRIBE_REQUESTED = "subscribe_requested"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


_FIELDS = ("email", "reader", "name", "tags", "detail", "issue", "sg_event_id")


@dataclass(frozen=True)
class Event:
    """One journal record."""

    id: str
    at: str
    type: EventType
    source: str
    email: str = ""
    reader: str = ""  # the opaque reader id of an unsubscribe link
    name: str = ""
    tags: tuple[str, ...] = ()
    detail: str = ""
    issue: str = ""
    sg_event_id: str = ""

    def record(self) -> dict[str, Any]:
        """The JSON object written for this event (empty fields left out)."""
        out: dict[str, Any] = {"id": self.id, "at": self.at, "type": str(self.type), "source": self.source}
        for name in _FIELDS:
            value = getattr(self, name)
            if value:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out


def new_event(type: EventType, source: str, **fields: Any) -> Event:
    """An event with a fresh id and the current time."""
    if "tags" in fields:
        fields["tags"] = tuple(fields["tags"])
    return Event(uuid.uuid4().hex, now_iso(), EventType(type), source, **fields)


def parse_event(where: str, line: bytes) -> Event:
    """One journal line as an Event; SubscriberError naming `where` when it is not one."""
    try:
        raw = json.loads(line)
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        fields: dict[str, Any] = {k: raw[k] for k in _FIELDS if k in raw}
        for name, value in fields.items():
            if name == "tags":
                if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                    raise ValueError("tags is not a list of text")
                fields["tags"] = tuple(value)
            elif not isinstance(value, str):
                raise ValueError(f"{name} is not text")
        return Event(str(raw["id"]), str(raw["at"]), EventType(raw["type"]), str(raw.get("source", "")), **fields)
    except (ValueError, KeyError, TypeError, RecursionError, UnicodeDecodeError) as exc:
        raise SubscriberError(f"{where}: not an inbox event ({exc})",
                              hint="the inbox is written by `newsletter serve`; restore it from a backup") from None


class Inbox:
    """The journal in one folder: append (durably, from many threads) and read from a cursor."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / JOURNAL
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._fd: int | None = None
        self._written = 0  # bytes written through this object (a position in the file)
        self._synced = 0  # ...of which an fsync is known to cover this much

    # Writing -------------------------------------------------------------------------------------

    def append(self, events: Iterable[Event]) -> None:
        """Write the events as lines and return only once they are on disk."""
        data = b"".join(_line(e) for e in events)
        if not data:
            return
        with self._write_lock:
            fd = self._open()
            os.write(fd, data)
            end = self._written = os.lseek(fd, 0, os.SEEK_CUR)
        self._sync_to(fd, end)

    def record(self, type: EventType, source: str, **fields: Any) -> Event:
        """Append one new event durably and return it."""
        event = new_event(type, source, **fields)
        self.append([event])
        return event

    def close(self) -> None:
        """Close the journal's descriptor (appends reopen it)."""
        with self._write_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _open(self) -> int:
        if self._fd is None:
            made = not self.path.exists()
            make_folders(self.folder)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            _cut_torn_tail(self.path, fd)
            if made:
                fsync_dir(self.folder)
            self._fd = fd
        return self._fd

    def _sync_to(self, fd: int, end: int) -> None:
        with self._sync_lock:
            if self._synced >= end:
                return  # another thread's fsync, started after our write, covered it
            target = self._written  # everything written so far is covered by this fsync
            os.fsync(fd)
            self._synced = max(self._synced, target)

    # Reading -------------------------------------------------------------------------------------

    def read(self, after: int = 0, limit: int | None = None) -> tuple[list[Event], int]:
        """The whole events from byte `after` on (at most `limit`), and the cursor after them."""
        events: list[Event] = []
        cursor = after
        for event, end in self.scan(after):
            if limit is not None and len(events) >= limit:
                break
            events.append(event)
            cursor = end
        return events, cursor

    def scan(self, after: int = 0) -> Iterator[tuple[Event, int]]:
        """Yield (event, the byte offset just after it) for every whole line from `after` on."""
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below; a generator must own it
        except FileNotFoundError:
            return
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if after < 0 or after > size:
                raise SubscriberError(f"{self.path}: cursor {after} is past the end of the inbox ({size} bytes)",
                                      hint="the inbox was replaced; pull again from 0")
            fh.seek(after)
            pos = after
            for line in fh:
                if not line.endswith(b"\n"):
                    return  # a line still being written, or torn by a crash: not an event yet
                start, pos = pos, pos + len(line)
                if line.strip():
                    yield _parse_at(self.path, start, line), pos

    def ids(self) -> set[str]:
        """Every event id in the journal (to add copied events only once)."""
        return {event.id for event, _ in self.scan()}

    def size(self) -> int:
        """The journal's length in bytes: the cursor after its last whole event (0 if none)."""
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return 0
        with fh:
            end = os.fstat(fh.fileno()).st_size
            while end > 0:  # back from the end, a block at a time, to the last newline
                start = max(0, end - MAX_LINE)
                fh.seek(start)
                newline = fh.read(end - start).rfind(b"\n")
                if newline >= 0:
                    return start + newline + 1
                end = start
        return 0


def _line(event: Event) -> bytes:
    data = json.dumps(event.record(), ensure_ascii=False, separators=(",", ":")).encode()
    if b"\n" in data or len(data) >= MAX_LINE:
        raise SubscriberError(f"inbox event {event.id}: too large to record ({len(data)} bytes)")
    return data + b"\n"


def _parse_at(path: Path, offset: int, line: bytes) -> Event:
    """Parse one line; name its line number (counted only when it is wrong) in the error."""
    try:
        return parse_event(str(path), line)
    except SubscriberError:
        with open(path, "rb") as fh:
            number = fh.read(offset).count(b"\n") + 1
        return parse_event(f"{path}:{number}", line)


def _cut_torn_tail(path: Path, fd: int) -> None:
    """Cut off a last line without its newline: a write a crash interrupted, never acknowledged."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    with open(path, "rb") as fh:
        start = max(0, size - MAX_LINE)
        fh.seek(start)
        tail = fh.read()
    if tail.endswith(b"\n"):
        return
    newline = tail.rfind(b"\n")
    os.truncate(path, start + newline + 1 if newline >= 0 else start)


@contextlib.contextmanager
def opened(folder: Path) -> Iterator[Inbox]:
    """An Inbox closed on exit."""
    inbox = Inbox(folder)
    try:
        yield inbox
    finally:
        inbox.close()


def event_counts(events: Iterable[Event]) -> Mapping[EventType, int]:
    """How many events of each type (for reports)."""
    counts: dict[EventType, int] = {}
    for event in events:
        counts[event.type] = counts.get(event.type, 0) + 1
    return counts
