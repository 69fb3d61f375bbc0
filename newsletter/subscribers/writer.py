"""Writing the subscriber file: the lock, atomic replacement, and row-level patches.

Every write goes through atomic_text: a temp file beside the list, flushed and fsynced, then
os.replace over it, then the folder fsynced. A crash or kill -9 at any moment leaves the old file
or the new one. Read-modify-write runs under `locked`, so concurrent commands queue.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from pathlib import Path
from typing import IO

from newsletter import files
from newsletter.errors import SubscriberError
from newsletter.files import atomic_open
from newsletter.models import Subscriber
from newsletter.subscribers.reader import ListReader
from newsletter.subscribers.schema import COLUMNS, Layout, RowCodec, shown

LOCK_TIMEOUT = 60.0


def locked(path: Path, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
    """Hold the list's write lock (a filelock on `.<name>.lock` beside it), waiting up to `timeout`
    seconds (default LOCK_TIMEOUT) for another command to finish."""
    timeout = LOCK_TIMEOUT if timeout is None else timeout
    if not path.parent.is_dir():
        raise SubscriberError(f"{shown(path)}: the folder {shown(path.parent)!r} does not exist")
    busy = SubscriberError(f"{shown(path)}: another command is still changing this list (waited {timeout:.0f} s)",
                           hint="wait for it to finish, then run this again")
    return files.locked(path.with_name(f".{path.name}.lock"), timeout=timeout, busy=busy)


@contextlib.contextmanager
def atomic_text(path: Path, *, bom: bool = False, temp: Path | None = None) -> Iterator[IO[str]]:
    """files.atomic_open for the list: UTF-8 text, owner-only when new, errors as SubscriberError.

    The store's writers hold the lock, so its temp name is fixed (a crash leaves at most one
    `.<name>.tmp`, overwritten by the next write); others pass a unique `temp`.
    """
    tmp = temp or path.with_name(f".{path.name}.tmp")
    try:
        with atomic_open(path, encoding="utf-8-sig" if bom else "utf-8", mode=0o600, temp=tmp) as out:
            yield out
    except OSError as exc:  # personal data: a new list is owner-only (mode 0o600)
        raise SubscriberError(f"{shown(path)}: cannot write it: {exc.strerror or exc}") from None


def write_rows(path: Path, layout: Layout, rows: Iterable[Sequence[str]]) -> None:
    """Write the header and these rows as the whole file, atomically (caller holds the lock)."""
    with atomic_text(path, bom=layout.bom) as out:
        writer = layout.writer(out)
        writer.writerow(layout.fieldnames)
        writer.writerows(rows)


def patch_file(
    path: Path,
    layout: Layout,
    edits: Mapping[int, tuple[int, Sequence[str] | None]],
    append: Sequence[Sequence[str]] = (),
) -> None:
    """Rewrite the file atomically, replacing or deleting some rows and appending others.

    edits maps a row's first line to (its last line, new values or None to delete). Every other
    line is copied as it is; blank lines at the end are dropped. The caller holds the lock.
    """
    if not path.exists():
        write_rows(path, layout, append)
        return
    if not edits and not append:
        return
    if not edits and _append(path, layout, append):
        return
    with open(path, encoding="utf-8-sig", newline="") as src, atomic_text(path, bom=layout.bom) as out:
        writer, line = layout.writer(out), 1  # line: the number of the next line src gives
        for start in sorted(edits):
            end, values = edits[start]
            out.writelines(islice(src, start - line))  # the lines between edits, as they are
            deque(islice(src, end - start + 1), maxlen=0)  # skip the old row
            if values is not None:
                writer.writerow(values)
            line = end + 1
        out.write(_without_blank_tail(src.read(), layout.newline))
        writer.writerows(append)


def _without_blank_tail(text: str, newline: str) -> str:
    """The text without the blank lines at its end, its last line ended by a line break."""
    body = len(text.rstrip(" \t\r\n"))
    if not body:
        return ""
    breaks = [i for i in (text.find("\n", body), text.find("\r", body)) if i >= 0]
    if not breaks:
        return text + newline
    cut = min(breaks)
    return text[: cut + (2 if text.startswith("\r\n", cut) else 1)]


def _append(path: Path, layout: Layout, rows: Sequence[Sequence[str]]) -> bool:
    """patch_file with only rows to append: the old bytes are copied as they are, at C speed.

    False (nothing written) if the file ends with more blank lines than the tail it looks at.
    """
    text = io.StringIO()
    layout.writer(text).writerows(rows)
    with open(path, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        src.seek(max(0, size - 65536))
        tail = src.read()
        body = tail.rstrip(b" \t\r\n")  # the blank lines at the end are dropped...
        if not body and len(tail) < size:
            return False
        ends = [i for i in (tail.find(b"\n", len(body)), tail.find(b"\r", len(body))) if i >= 0]
        cut = size - len(tail) + (min(ends) if ends else len(tail))  # ...the last row keeps every byte
        src.seek(0)
        with atomic_text(path) as out:
            raw = out.buffer  # type: ignore[attr-defined]  # a TextIOWrapper: nothing written to it yet
            shutil.copyfileobj(_Limited(src, cut), raw, 1 << 20)
            raw.write((layout.newline + text.getvalue()).encode("utf-8"))
    return True


class _Limited:
    """The first `limit` bytes of a binary file, for shutil.copyfileobj."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self.raw, self.left = raw, limit

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(self.left if size < 0 else min(size, self.left))
        self.left -= len(chunk)
        return chunk


def commit(
    path: Path,
    layout: Layout | None,
    edits: Mapping[int, tuple[int, Subscriber | None]],
    append: Sequence[Subscriber] = (),
    extra_columns: Iterable[str] = (),
) -> None:
    """Write changes found by a scan (layout None: the file was missing or empty). Holds no lock.

    edits maps a row's first line to (its last line, the new Subscriber or None to delete it).
    When the header lacks one of our columns or gains extra ones, every row is rewritten under
    the completed header; otherwise only the changed lines are.
    """
    target = (layout or Layout()).complete(extra_columns)
    codec = RowCodec(target)
    if layout is None:
        write_rows(path, target, [codec.row(s) for s in append])
    elif target == layout:
        changed = {start: (end, codec.row(s) if s else None) for start, (end, s) in edits.items()}
        patch_file(path, layout, changed, [codec.row(s) for s in append])
    else:
        with ListReader(path) as reader:
            # A file without a status column lists active people: the new column must say so.
            extras = dict(layout.extras)
            take = [(layout.index.get(n, -1) if n in COLUMNS else extras.get(n, -1),
                     "active" if n == "status" else "") for n in target.fieldnames]
            kept = _moved(reader.records(), take, edits, codec)
            write_rows(path, target, chain(kept, (codec.row(s) for s in append)))


def _moved(
    records: Iterable[tuple[int, int, list[str]]],
    take: list[tuple[int, str]],
    edits: Mapping[int, tuple[int, Subscriber | None]],
    codec: RowCodec,
) -> Iterator[list[str]]:
    for start, _, row in records:
        if start in edits:
            sub = edits[start][1]
            if sub is not None:
                yield codec.row(sub)
        else:
            yield [row[i] if i >= 0 else default for i, default in take]
