"""Fold the inbox (what readers did through the reader service) into the list.

`newsletter subscribers apply` (and every send, before it picks recipients) reads the events
recorded after the list's cursor, in journal order, and changes the list under its lock with
the import's restrictive rules:

- an unsubscribe always wins: `unsubscribed` (a reader id from a link, resolved against the
  list with the secrets, or an address), `bounced` and `complained` set that status unless a
  more restrictive one is already there (STATUS_RANK); nobody is ever deleted;
- `confirmed` is the reader's own new consent (double opt-in): it adds a new person (source
  "readers"), or makes an `unsubscribed` row active again, but never a `bounced` or
  `complained` one unless `resubscribe`;
- `subscribe_requested` changes nothing: the person is awaiting confirmation.

The cursor (inbox/applied.json, one per list) is written atomically after the list, while the
lock is still held. A crash between the two replays events whose effect is already there, and
every rule above gives the same result a second time, so nothing is applied twice.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from newsletter.errors import SubscriberError
from newsletter.files import atomic_write_text
from newsletter.models import Subscriber, now_iso
from newsletter.subscribers.changes import clean_name, clean_tags, find_rows
from newsletter.subscribers.inbox import JOURNAL, Event, EventType, Inbox
from newsletter.subscribers.schema import STATUS_RANK, Layout, email_key, normalize_email, shown
from newsletter.subscribers.writer import commit, locked
from newsletter.tokens import Tokens, resolve_readers

CURSORS = "applied.json"
SOURCE = "readers"  # the source column of a person who joined through the reader service
_LEAVING = {EventType.UNSUBSCRIBED: "unsubscribed", EventType.BOUNCED: "bounced",
            EventType.COMPLAINED: "complained"}


@dataclass
class ApplyReport:
    """What apply did (or, on a dry run, would do)."""

    events: int = 0  # new events read from the inbox
    added: list[str] = field(default_factory=list)
    resubscribed: list[tuple[str, str]] = field(default_factory=list)  # (email, old status)
    updated: list[str] = field(default_factory=list)  # already active: given the form's tags or a name
    left: list[tuple[str, str, str]] = field(default_factory=list)  # (email, old status, new status)
    unchanged: int = 0  # events whose effect was already there
    awaiting: int = 0  # subscribe_requested: a confirmation email went out
    not_on_list: int = 0  # reader ids or addresses the list does not hold
    refused: list[tuple[str, str]] = field(default_factory=list)  # (email, status): confirmed, not resubscribed
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (event id, why)
    cursor: int = 0  # where the next apply starts
    dry_run: bool = False

    @property
    def changed(self) -> int:
        """How many rows changed (or would)."""
        return len(self.added) + len(self.resubscribed) + len(self.updated) + len(self.left)


def cursor_path(inbox_dir: Path) -> Path:
    """inbox/applied.json: each list's cursor into the journal."""
    return inbox_dir / CURSORS


def list_name(list_path: Path, root: Path) -> str:
    """The key of a list in applied.json: relative to the newsletter folder when inside it.

    A relative name keeps working when the newsletter folder moves (a clone elsewhere); each
    list has its own cursor, so a send to a test list never uses up the real list's events.
    """
    path = list_path.resolve()
    with contextlib.suppress(ValueError):
        return path.relative_to(root.resolve()).as_posix()
    return str(path)


def read_cursors(inbox_dir: Path) -> dict[str, int]:
    """Every list's cursor; {} before the first apply. A damaged file is an error, not a reset."""
    path = cursor_path(inbox_dir)
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SubscriberError(f"{shown(path)}: cannot read the inbox cursors ({exc})",
                              hint="restore it from a backup (apply is idempotent: deleting it re-applies "
                                   "every event, which changes nothing already applied)") from None
    cursors = raw.get("cursors") if isinstance(raw, dict) else None
    if not isinstance(cursors, dict) or not all(isinstance(v, int) and v >= 0 for v in cursors.values()):
        raise SubscriberError(f"{shown(path)}: not an inbox cursor file")
    return {str(k): int(v) for k, v in cursors.items()}


def _save_cursor(inbox_dir: Path, name: str, cursor: int) -> None:
    cursors = read_cursors(inbox_dir)
    cursors[name] = cursor
    atomic_write_text(cursor_path(inbox_dir), json.dumps({"cursors": cursors}, indent=1, sort_keys=True) + "\n")


def apply_inbox(
    list_path: Path,
    inbox_dir: Path,
    root: Path,
    secrets: Sequence[str],
    *,
    resubscribe: bool = False,
    dry_run: bool = False,
) -> ApplyReport:
    """Fold the inbox's new events into the list (see the module docstring); return what changed.

    `secrets` are the unsubscribe secrets (newest first) the links' reader ids were made with;
    without them an unsubscribe by reader id cannot be resolved, which is an error, never a skip.
    """
    report = ApplyReport(dry_run=dry_run)
    name = list_name(list_path, root)
    if not Inbox(inbox_dir).read(read_cursors(inbox_dir).get(name, 0), limit=1)[0]:
        return report  # nothing new: not even the lock (its file) is touched
    with contextlib.nullcontext() if dry_run else locked(list_path):
        after = read_cursors(inbox_dir).get(name, 0)
        events, report.cursor = Inbox(inbox_dir).read(after)
        report.events = len(events)
        if not events:
            return report
        _fold(list_path, events, secrets, resubscribe, report)
        if not dry_run:
            _save_cursor(inbox_dir, name, report.cursor)
    return report


def pending_events(list_path: Path, inbox_dir: Path, root: Path) -> int:
    """How many events the list has not had yet (0 with no inbox): cheap, takes no lock."""
    if not (inbox_dir / JOURNAL).exists():
        return 0
    after = read_cursors(inbox_dir).get(list_name(list_path, root), 0)
    return len(Inbox(inbox_dir).read(after)[0])


@dataclass
class _Row:
    """One person as the fold goes: where they are in the file (None: new), as they were, as they are."""

    start: int | None
    end: int
    old: Subscriber | None
    now: Subscriber | None


def _fold(path: Path, events: list[Event], secrets: Sequence[str], resubscribe: bool, report: ApplyReport) -> None:
    keys_of = _event_keys(events, report)
    readers = {e.reader for e in events if e.type is EventType.UNSUBSCRIBED and e.reader and not e.email}
    found = find_rows(path, {k for k in keys_of.values() if k}, must_exist=False)
    if readers:
        if not secrets:
            raise SubscriberError("the inbox holds unsubscribes by link, and no unsubscribe secret is set to "
                                  "read them; nothing was applied",
                                  hint="set the variable [delivery] unsubscribe_secret_env names, as the reader "
                                       "service has it")
        resolved = resolve_readers(Tokens(tuple(secrets)), found.keys, readers)
        for event in events:
            if event.id in keys_of and event.reader in resolved:
                keys_of[event.id] = resolved[event.reader]
        more = set(resolved.values()) - found.rows.keys()
        if more:
            found.rows.update(find_rows(path, more | found.rows.keys(), must_exist=True).rows)
    rows = {k: _Row(start, end, sub, sub) for k, (start, end, sub) in found.rows.items()}
    now = now_iso()
    for event in events:
        key = keys_of.get(event.id)
        if event.type is EventType.SUBSCRIBE_REQUESTED:
            report.awaiting += 1
        elif key is None:
            continue  # invalid: already reported
        elif event.type is EventType.CONFIRMED:
            _confirm(rows, key, event, resubscribe, now, report)
        elif key in rows and rows[key].now is not None:
            _leave(rows[key], _LEAVING[event.type], now, report)
        else:
            report.not_on_list += 1
    _report_and_commit(path, found.layout, rows, report)


def _event_keys(events: Iterable[Event], report: ApplyReport) -> dict[str, str]:
    """Each event's email key ("" for an unsubscribe by reader id, until resolved); invalid ones reported."""
    keys: dict[str, str] = {}
    for event in events:
        if event.type is EventType.SUBSCRIBE_REQUESTED:
            continue
        if event.type is EventType.UNSUBSCRIBED and event.reader and not event.email:
            keys[event.id] = ""
        elif not event.email:
            report.invalid.append((event.id, f"a {event.type} event without an address"))
        else:
            keys[event.id] = email_key(event.email.strip())
    return keys


def _confirm(rows: dict[str, _Row], key: str, event: Event, resubscribe: bool, now: str,
             report: ApplyReport) -> None:
    try:
        address, name, tags = normalize_email(event.email), clean_name(event.name), clean_tags(event.tags)
    except SubscriberError as exc:
        report.invalid.append((event.id, str(exc)))
        return
    row = rows.get(key)
    if row is None or row.now is None:
        rows[key] = _Row(None, 0, None, Subscriber(address, name, "active", tags, now, now, SOURCE))
        return
    current = row.now
    if current.status in ("bounced", "complained") and not resubscribe:
        report.refused.append((current.email, current.status))
        return
    merged = tuple(dict.fromkeys(current.tags + tags))
    new = replace(current, status="active", name=current.name or name, tags=merged)
    if new == current:
        report.unchanged += 1
        return
    row.now = replace(new, updated_at=now)


def _leave(row: _Row, status: str, now: str, report: ApplyReport) -> None:
    current = row.now
    assert current is not None
    if STATUS_RANK[current.status] >= STATUS_RANK[status]:
        report.unchanged += 1
        return
    row.now = replace(current, status=status, updated_at=now)


def _report_and_commit(path: Path, layout: Layout | None, rows: dict[str, _Row], report: ApplyReport) -> None:
    """Compare each row with how it was; write the changed ones (not on a dry run)."""
    edits: dict[int, tuple[int, Subscriber | None]] = {}
    append: list[Subscriber] = []
    for row in rows.values():
        new, old = row.now, row.old
        if new is None or new == old:
            continue
        if old is None or row.start is None:
            append.append(new)
            if new.status == "active":
                report.added.append(new.email)
            else:  # joined and left within one apply: the row stays, as a tombstone
                report.left.append((new.email, "not on the list", new.status))
            continue
        edits[row.start] = (row.end, new)
        if new.status == "active" and old.status != "active":
            report.resubscribed.append((new.email, old.status))
        elif new.status != old.status:
            report.left.append((new.email, old.status, new.status))
        else:
            report.updated.append(new.email)
    if (edits or append) and not report.dry_run:
        commit(path, layout, edits, append)
