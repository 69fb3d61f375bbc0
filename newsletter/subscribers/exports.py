"""Moving people into the list from another platform's export, and out of it to a file.

An import never turns someone who unsubscribed, bounced or complained back to active: for an
address already on the list the more restrictive status wins, tags are added, an empty name is
filled in and the earlier signup date kept. New people, tombstones included, are appended, so a
later import cannot bring back someone who left elsewhere.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.errors import SubscriberError
from newsletter.models import Subscriber, now_iso
from newsletter.subscribers.changes import FoundRows, clean_tags, find_rows
from newsletter.subscribers.imports import ImportBatch, ImportRow, read_export, validate_rows
from newsletter.subscribers.schema import COLUMNS, STATUS_RANK, Layout, RowCodec
from newsletter.subscribers.store import select_with_layout
from newsletter.subscribers.writer import atomic_text, commit, locked

EXPORT_FORMATS = ("csv", "json")
_UNSAFE_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run these as a formula


@dataclass
class ImportReport:
    """What an import did (or, on a dry run, would do)."""

    platform: str
    encoding: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file:line, reason)
    notes: list[str] = field(default_factory=list)
    new_columns: list[str] = field(default_factory=list)
    dry_run: bool = False


def import_subscribers(
    path: Path,
    export: Path,
    *,
    platform: str = "auto",
    encoding: str | None = None,
    tags: Iterable[str] = (),
    dry_run: bool = False,
) -> ImportReport:
    """Merge another platform's export into the list (creating it if needed); see the module doc."""
    batch = read_export(export, platform, encoding, validate=False)
    extra_tags = clean_tags(tags)
    with contextlib.nullcontext() if dry_run else locked(path):
        found = _existing(path, batch)
        report = ImportReport(batch.platform, batch.encoding, skipped=batch.skipped, notes=batch.notes,
                              dry_run=dry_run)
        edits: dict[int, tuple[int, Subscriber | None]] = {}
        append, now = [], now_iso()
        for key, row in batch.rows.items():
            if key not in found.rows:
                append.append(_new(row, extra_tags, batch.source, now))
                continue
            start, end, old = found.rows[key]
            new = _merged(old, row, extra_tags)
            if new is old:
                report.unchanged += 1
            else:
                new.updated_at = now
                edits[start] = (end, new)
        report.added, report.updated = len(append), len(edits)
        have = frozenset((found.layout or Layout()).fieldnames)
        report.new_columns = [c for c in batch.extra_columns if c not in have]
        if not dry_run:
            commit(path, found.layout, edits, append, batch.extra_columns)
    return report


def _existing(path: Path, batch: ImportBatch) -> FoundRows:
    """The list's rows for the batch's addresses; validates (only) the addresses that are new.

    An address already on the list is merged into its row, never written, so it needs no check.
    """
    found = find_rows(path, batch.rows.keys(), must_exist=False)
    renamed = validate_rows(batch, [key for key in batch.rows if key not in found.rows])
    if again := [key for key in renamed if key in found.keys and key not in found.rows]:
        found.rows.update(find_rows(path, again, must_exist=True).rows)  # rare: a punycode domain, say
    return found


def _new(row: ImportRow, tags: tuple[str, ...], source: str, now: str) -> Subscriber:
    created = row.created_at or now
    return Subscriber(row.email, row.name, row.status, tuple(dict.fromkeys(row.tags + tags)),
                      created, row.updated_at or (created if row.status == "active" else now), source,
                      row.extra)


def _merged(old: Subscriber, row: ImportRow, tags: tuple[str, ...]) -> Subscriber:
    """The existing row with what the import adds; `old` itself when it adds nothing (most rows)."""
    status = row.status if STATUS_RANK[row.status] > STATUS_RANK[old.status] else old.status
    more_tags = [t for t in (*row.tags, *tags) if t not in old.tags]
    created = row.created_at if row.created_at and (not old.created_at or row.created_at < old.created_at) \
        else old.created_at
    extra = {k: v for k, v in row.extra.items() if not old.extra.get(k)}
    name = old.name or row.name
    if (status, name, created) == (old.status, old.name, old.created_at) and not more_tags and not extra:
        return old
    return Subscriber(old.email, name, status, tuple(dict.fromkeys((*old.tags, *more_tags))), created,
                      old.updated_at, old.source, {**old.extra, **extra} if extra else old.extra)


def export_subscribers(
    path: Path,
    *,
    fmt: str = "csv",
    statuses: Collection[str] | None = None,
    tag: str | None = None,
    spreadsheet_safe: bool = True,
) -> tuple[int, Iterator[str]]:
    """Return how many subscribers match and their text (CSV or JSON), chunk by chunk.

    spreadsheet_safe prefixes a ' to any CSV cell that begins with = + - @ (or a tab or CR), so
    a spreadsheet shows it as text instead of running it as a formula.
    """
    if fmt not in EXPORT_FORMATS:
        raise SubscriberError(f"unknown export format {fmt!r} (expected {', '.join(EXPORT_FORMATS)})")
    layout, rows = select_with_layout(path, statuses, tag)
    layout = layout.complete()
    if fmt == "json":
        return len(rows), _json(layout, rows)
    return len(rows), _csv(layout, rows, spreadsheet_safe)


def write_export(
    path: Path, out: Path, *, fmt: str = "csv", statuses: Collection[str] | None = None, tag: str | None = None
) -> int:
    """Export to a file, atomically and spreadsheet-safe (CSV gets a BOM so Excel reads UTF-8)."""
    if out.exists() and out.resolve() == path.resolve():
        raise SubscriberError(f"{out}: that is the subscriber list itself; export to another file")
    count, chunks = export_subscribers(path, fmt=fmt, statuses=statuses, tag=tag)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise SubscriberError(f"{out}: cannot write it: {exc.strerror}") from None
    os.close(fd)
    with atomic_text(out, bom=fmt == "csv", temp=Path(temp)) as stream:
        stream.writelines(chunks)
    return count


def _csv(layout: Layout, rows: list[Subscriber], safe: bool) -> Iterator[str]:
    codec, buffer = RowCodec(layout), io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(layout.fieldnames)
    for number, sub in enumerate(rows, 1):
        values = codec.row(sub)
        writer.writerow([f"'{v}" if safe and v.startswith(_UNSAFE_START) else v for v in values])
        if number % 2000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json(layout: Layout, rows: list[Subscriber]) -> Iterator[str]:
    extras = [name for name in layout.fieldnames if name not in COLUMNS]
    yield "["
    for number, sub in enumerate(rows):
        item = {"email": sub.email, "name": sub.name, "status": sub.status, "tags": list(sub.tags),
                "created_at": sub.created_at, "updated_at": sub.updated_at, "source": sub.source}
        item.update({name: sub.extra.get(name, "") for name in extras})
        yield ("," if number else "") + "\n  " + json.dumps(item, ensure_ascii=False)
    yield "\n]\n"
