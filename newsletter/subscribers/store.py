"""The subscriber list: what the CLI and a send call to read it and change it.

One CSV file (its format: schema; read by reader, written by writer; changed a few rows at a
time by changes; imports and exports: imports, exports; check and fix: check). People who leave
stay as rows with their status, a tombstone, so that no import or command quietly brings them
back: only `add --resubscribe` makes someone active again. Every change reads the file, decides,
and writes it under the list's lock with one atomic replace; a change that fails leaves the file
byte for byte as it was.

For a send: iter_active(path, tag) yields the people to write to; apply_statuses(path, ...)
records bounces, complaints and unsubscribes reported by a provider.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.errors import SubscriberError
from newsletter.models import Subscriber
from newsletter.subscribers.changes import (
    LEAVING,
    AddResult,
    FoundRows,
    add_subscriber,
    add_subscribers,
    apply_statuses,
    clean_name,
    clean_tags,
    find_rows,
    forget_subscribers,
    unsubscribe,
)
from newsletter.subscribers.reader import ListReader
from newsletter.subscribers.schema import (
    STATUS_RANK,
    Layout,
    RowCodec,
    control_character,
    email_key,
    normalize_email,
    plausible_address,
)
from newsletter.subscribers.writer import locked, write_rows

__all__ = [
    "LEAVING", "AddResult", "FoundRows", "SubscriberList", "add_subscriber", "add_subscribers", "apply_statuses",
    "active_people", "clean_name", "clean_tags", "count_subscribers", "find_rows", "forget_subscribers", "iter_active",
    "load_subscribers", "normalize_email", "save_subscribers", "select_subscribers", "unsubscribe",
]



@dataclass
class SubscriberList:
    """A whole list in memory: its rows, and its header (our columns and the writer's own)."""

    rows: list[Subscriber]
    fieldnames: list[str]
    layout: Layout = field(default_factory=Layout, compare=False, repr=False)  # dialect to write back


@contextlib.contextmanager
def _bulk() -> Iterator[None]:
    """Pause the cycle collector while building many objects that form no cycles (~30% faster)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # Promote what was built to the oldest generation, so that re-enabling the collector
        # does not make its next young-generation pass walk a million new objects.
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


def load_subscribers(path: Path) -> SubscriberList:
    """Read the whole list, strictly: a malformed file raises SubscriberError with its line."""
    with ListReader(path) as reader, _bulk():
        rows = reader.collect(RowCodec(reader.layout).subscriber)
    return SubscriberList(rows, list(reader.layout.fieldnames), reader.layout)


def save_subscribers(path: Path, subscribers: SubscriberList) -> None:
    """Write a whole list over the file (atomically, under the lock), keeping its dialect."""
    _refuse_bad_rows(subscribers.rows)
    extra = dict.fromkeys(name for row in subscribers.rows for name in row.extra)
    old = subscribers.layout
    layout = Layout(tuple(subscribers.fieldnames), old.delimiter, old.newline, old.bom).complete(extra)
    codec = RowCodec(layout)
    with locked(path):
        write_rows(path, layout, (codec.row(s) for s in subscribers.rows))


def iter_active(path: Path, tag: str | None = None) -> Iterator[Subscriber]:
    """Return the active subscribers (with `tag`, if given), in file order: whom a send writes to.

    The whole file is read and checked before this returns (the people are then in memory,
    about 300 bytes each), so a send never starts on a list that turns out to be broken half
    way. No lock is taken: a command that changes the list meanwhile replaces the file and
    leaves this snapshot as it was.
    """
    return iter(select_subscribers(path, ("active",), tag))


def active_people(path: Path, tag: str | None = None) -> Iterator[tuple[str, str]]:
    """(address, name) of each active subscriber (with `tag`, if given), in file order: a send's plan.

    Streamed, holding no Subscriber objects, so a million-row send plans in a fraction of their
    memory. The whole file is still checked: a malformed list raises SubscriberError (with its
    line) before the iteration ends, so act on nothing until it does.
    """
    with ListReader(path) as reader:
        if reader.empty:
            return
        keep = _filter(reader.layout, frozenset({"active"}), tag)
        ie, inm = reader.layout.index["email"], reader.layout.index.get("name")
        for row in reader.checked():
            if keep(row):
                yield row[ie], row[inm] if inm is not None else ""


def select_subscribers(
    path: Path, statuses: Collection[str] | None = None, tag: str | None = None
) -> list[Subscriber]:
    """The subscribers with one of `statuses` (None: any) and `tag` (None: any), in file order."""
    return select_with_layout(path, statuses, tag)[1]


def count_subscribers(path: Path, status: str | None = "active", tag: str | None = None) -> int:
    """How many subscribers have `status` (None: any) and `tag` (None: any)."""
    wanted = _statuses([status] if status else None)
    with ListReader(path) as reader:
        if tag is None:
            return len(reader.collect(bool, wanted))  # bool: the cheapest call that makes something to count
        keep = _filter(reader.layout, wanted, tag)
        return sum(1 for row in reader.checked() if keep(row))


def select_with_layout(
    path: Path, statuses: Collection[str] | None, tag: str | None
) -> tuple[Layout, list[Subscriber]]:
    """select_subscribers, with the file's layout (its extra columns) for writing them out."""
    wanted = _statuses(statuses)
    with ListReader(path) as reader, _bulk():
        make = RowCodec(reader.layout).subscriber
        if tag is None:
            return reader.layout, reader.collect(make, wanted)
        keep = _filter(reader.layout, wanted, tag)
        return reader.layout, [make(row) for row in reader.checked() if keep(row)]


def _filter(layout: Layout, wanted: frozenset[str] | None, tag: str | None) -> Callable[[list[str]], bool]:
    ist, itg, tags_of = layout.index.get("status"), layout.index.get("tags"), RowCodec(layout).tags

    def keep(row: list[str]) -> bool:
        if wanted is not None and (row[ist] if ist is not None else "active") not in wanted:
            return False
        return tag is None or (itg is not None and tag in tags_of(row[itg]))

    return keep


def _statuses(statuses: Collection[str] | None) -> frozenset[str] | None:
    if statuses is None:
        return None
    for status in statuses:
        if status not in STATUS_RANK:
            raise SubscriberError(f"unknown status {status!r} (expected {', '.join(STATUS_RANK)})")
    return frozenset(statuses)


def _refuse_bad_rows(rows: Iterable[Subscriber]) -> None:
    seen: set[str] = set()
    for number, row in enumerate(rows, 1):
        if not plausible_address(row.email):
            raise SubscriberError(f"row {number}: {row.email!r} is not a valid address")
        if control_character(row.name):
            raise SubscriberError(f"row {number}: the name {row.name!r} contains a control character")
        if row.status not in STATUS_RANK:
            raise SubscriberError(f"row {number}: unknown status {row.status!r}")
        if email_key(row.email) in seen:
            raise SubscriberError(f"row {number}: {row.email} is listed twice")
        seen.add(email_key(row.email))
        clean_tags(row.tags)


