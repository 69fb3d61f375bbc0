"""Changes to a few rows of the list: add, unsubscribe, statuses a provider reports, forget.

Each one reads the whole list strictly (find_rows), decides, and writes it under the list's lock
with one atomic replace of only the changed lines; a change that fails leaves the file byte for
byte as it was. Nobody who left is made active again except by `add --resubscribe`, and the
more restrictive status wins (STATUS_RANK).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from newsletter.errors import SubscriberError
from newsletter.models import Subscriber, now_iso
from newsletter.subscribers.reader import ListReader
from newsletter.subscribers.schema import (
    STATUS_RANK,
    Layout,
    RowCodec,
    control_character,
    email_key,
    normalize_email,
)
from newsletter.subscribers.writer import commit, locked

LEAVING = ("unsubscribed", "bounced", "complained")


@dataclass(frozen=True)
class AddResult:
    """What add_subscriber did: 'added', 'resubscribed', 'updated' (tags or a name), 'unchanged'."""

    outcome: str
    subscriber: Subscriber
    previous_status: str = ""


@dataclass
class FoundRows:
    """The rows a change is about, found by one strict read of the whole list."""

    layout: Layout | None  # None: the file is missing or empty
    rows: dict[str, tuple[int, int, Subscriber]]  # email key -> (first line, last line, row)
    keys: set[str] = field(default_factory=set)  # every address on the list, as email keys


def add_subscriber(
    path: Path,
    email: str,
    *,
    name: str = "",
    tags: Iterable[str] = (),
    resubscribe: bool = False,
    source: str = "cli",
) -> AddResult:
    """Add one active subscriber: add_subscribers for one person."""
    return add_subscribers(path, [(email, name)], tags=tags, resubscribe=resubscribe, source=source)[0]


def add_subscribers(
    path: Path,
    people: Sequence[tuple[str, str]],
    *,
    tags: Iterable[str] = (),
    resubscribe: bool = False,
    source: str = "cli",
) -> list[AddResult]:
    """Add active subscribers, given as (address, name); one already there is reported and given the new tags.

    All or nothing, in one write: a bad address or name, or someone who unsubscribed, bounced or
    complained (unless `resubscribe`), is refused with SubscriberError and nothing changes.
    Creates the file if it does not exist. An address given twice is added once.
    """
    wanted_tags, wanted = clean_tags(tags), dict[str, tuple[str, str]]()
    for email, name in people:
        address = normalize_email(email)
        wanted.setdefault(email_key(address), (address, clean_name(name)))
    with locked(path):
        found = find_rows(path, wanted.keys(), must_exist=False)
        _refuse_tombstones(found, wanted, resubscribe)
        results, edits, append, now = [], {}, [], now_iso()
        for key, (address, name) in wanted.items():
            if key not in found.rows:
                append.append(Subscriber(address, name, "active", wanted_tags, now, now, source))
                results.append(AddResult("added", append[-1]))
                continue
            start, end, old = found.rows[key]
            new = replace(old, status="active", name=old.name or name, tags=_union(old.tags, wanted_tags))
            if new == old:
                results.append(AddResult("unchanged", old))
                continue
            edits[start] = (end, replace(new, updated_at=now))
            results.append(AddResult("updated" if old.status == "active" else "resubscribed", edits[start][1],
                                     old.status))
        if edits or append:
            commit(path, found.layout, edits, append)
    return results


def clean_name(name: str) -> str:
    """A name trimmed; one with a control character (a line break too) is refused: it goes into headers."""
    found = control_character(name)
    if found is not None:
        raise SubscriberError(f"the name {name!r} contains a control character ({found!r})",
                              hint="a name is one line of text")
    return name.strip()


def unsubscribe(path: Path, emails: Iterable[str]) -> list[tuple[str, str, str]]:
    """Mark these addresses unsubscribed (rows are kept); return (email, old, new) for each.

    An address not on the list is an error and nothing changes. Someone who complained keeps
    that status (the more restrictive one wins; see STATUS_RANK).
    """
    wanted = {normalize_email(e): "unsubscribed" for e in emails}
    return _set_statuses(path, wanted, known_only=True, where="unsubscribe")


def apply_statuses(path: Path, changes: Mapping[str, str], source: str) -> list[tuple[str, str, str]]:
    """Set statuses reported by `source` (e.g. 'sendgrid') on addresses already on the list.

    changes maps an email to unsubscribed, bounced or complained. Under the lock and atomically;
    the more restrictive status wins, nobody is reactivated, nothing is deleted, and addresses
    not on the list are ignored. Returns (email, old, new) for the rows that changed. `source`
    names the reporter in error messages; a row's own `source` (where it came from) is kept.
    """
    done = _set_statuses(path, changes, known_only=False, where=source)
    return [change for change in done if change[1] != change[2]]


def forget_subscribers(path: Path, emails: Iterable[str]) -> list[str]:
    """Delete these rows entirely (an erasure request); an address not on the list is an error."""
    keys = {email_key(normalize_email(e)) for e in emails}
    with locked(path):
        found = find_rows(path, keys, must_exist=True)
        _refuse_unknown(keys, found)
        commit(path, found.layout, {start: (end, None) for start, end, _ in found.rows.values()})
    return [sub.email for _, _, sub in found.rows.values()]


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags trimmed, without empties or repeats; a tag with ';' (the separator) is refused."""
    cleaned = [t.strip() for t in tags if t.strip()]
    for tag in cleaned:
        if ";" in tag:
            raise SubscriberError(f"tag {tag!r} contains ';', which separates tags in the file")
    return tuple(dict.fromkeys(cleaned))


def _set_statuses(
    path: Path, changes: Mapping[str, str], *, known_only: bool, where: str
) -> list[tuple[str, str, str]]:
    wanted: dict[str, str] = {}
    for email, status in changes.items():
        if status not in LEAVING:
            raise SubscriberError(
                f"{where}: {email}: cannot set status {status!r} (only {', '.join(LEAVING)})",
                hint="to bring someone back, use 'newsletter subscribers add ADDRESS --resubscribe'",
            )
        key = email_key(email.strip())
        wanted[key] = _stricter(wanted.get(key, "active"), status)
    with locked(path):
        found = find_rows(path, wanted.keys(), must_exist=True)
        if known_only:
            _refuse_unknown(wanted, found)
        edits, done, now = {}, [], now_iso()
        for key in [k for k in wanted if k in found.rows]:  # in the order asked
            start, end, old = found.rows[key]
            status = _stricter(old.status, wanted[key])
            if status != old.status:
                edits[start] = (end, replace(old, status=status, updated_at=now))
            done.append((old.email, old.status, status))
        commit(path, found.layout, edits)
    return done


def find_rows(path: Path, keys: Collection[str], *, must_exist: bool) -> FoundRows:
    """Read the whole list strictly and pick out the rows with these email keys."""
    if not must_exist and not path.exists():
        return FoundRows(None, {})
    with ListReader(path) as reader:
        reader.collect(bool, statuses=(), want=keys)
        make = RowCodec(reader.layout).subscriber
        rows = {key: (start, end, make(row)) for key, (start, end, row) in reader.found.items()}
        return FoundRows(None if reader.empty else reader.layout, rows, reader.keys)


def _refuse_tombstones(found: FoundRows, wanted: Mapping[str, object], resubscribe: bool) -> None:
    left = [found.rows[k][2] for k in wanted if k in found.rows and found.rows[k][2].status != "active"]
    if left and not resubscribe:
        old = left[0]
        since = f" since {old.updated_at[:10]}" if old.updated_at else ""
        more = f" (and {len(left) - 1} more); nothing changed" if len(left) > 1 else ""
        more = more or ("; nothing changed" if len(wanted) > 1 else "")
        raise SubscriberError(
            f"{old.email} has status {old.status}{since}: not resubscribed{more}",
            hint="if they asked to come back, run this again with --resubscribe",
        )


def _refuse_unknown(keys: Iterable[str], found: FoundRows) -> None:
    missing = [k for k in keys if k not in found.rows]
    if missing:
        more = f" (nor are {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SubscriberError(f"{missing[0]} is not on the list{more}; nothing changed")


def _stricter(a: str, b: str) -> str:
    return a if STATUS_RANK[a] >= STATUS_RANK[b] else b


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return a if not b else tuple(dict.fromkeys(a + b))
