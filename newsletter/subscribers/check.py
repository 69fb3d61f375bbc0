"""`subscribers check`: every problem in the list with its line; --fix repairs the safe ones.

Safe means no judgement is needed and nobody can end up mailed who was not before: an address
written with spaces, an upper-case domain or decomposed accents (NFD), a name with a control
character or a line break (made one line), a status in the wrong case, tags with stray
separators, a date in another ISO 8601 form, and a repeated address whose rows agree (merged,
the more restrictive status kept). An invalid address, an empty or unknown status, an unreadable
date or repeated rows that disagree are reported and left for a person to decide.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.errors import SubscriberError
from newsletter.subscribers.reader import ListReader
from newsletter.subscribers.schema import (
    STATUS_RANK,
    Layout,
    control_character,
    email_key,
    iso_utc,
    normalize_email,
    shown,
    split_tags,
    tidy_name,
)
from newsletter.subscribers.writer import locked, patch_file

_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@dataclass(frozen=True)
class Problem:
    """One finding: the line it is on, what is wrong, and whether --fix repaired (or can repair) it."""

    line: int
    message: str
    fixable: bool = False


@dataclass
class CheckReport:
    """Everything check found in one file; `fixed` is true once --fix has rewritten it."""

    where: str
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    fixed: bool = False

    @property
    def remaining(self) -> list[Problem]:
        """The problems still in the file."""
        return [p for p in self.problems if not (self.fixed and p.fixable)]


def check_list(path: Path) -> CheckReport:
    """Validate every row (full email-validator check) and list every problem with its line."""
    return _run(path, fix=False)


def fix_list(path: Path) -> CheckReport:
    """check_list, then rewrite the fixable rows in place (atomically, under the lock)."""
    with locked(path):
        return _run(path, fix=True)


@dataclass
class _Row:
    start: int
    end: int
    values: list[str]
    changed: bool = False


def _run(path: Path, *, fix: bool) -> CheckReport:
    report = CheckReport(shown(path))
    with ListReader(path) as reader:
        layout = reader.layout
        first: dict[str, _Row] = {}
        rows: dict[str, _Row] = {}  # first row of each address that is repeated, kept for merging
        edits: dict[int, tuple[int, list[str] | None]] = {}
        try:
            for start, end, values in reader.records(lambda line, what: _wide(report, line, what)):
                report.rows += 1
                row = _Row(start, end, values)
                key = _check_row(layout, row, report.problems)
                if key in first:
                    _repeat(layout, rows.setdefault(key, first[key]), row, report.problems, edits)
                else:
                    first[key] = row
                if row.changed and start not in edits:
                    edits[start] = (end, row.values)
        except SubscriberError as exc:  # broken quoting or encoding: nothing after it can be read
            report.problems.append(Problem(_line_of(exc.message), exc.message.split(": ", 1)[-1]))
            return report
        for row in rows.values():
            if row.changed:
                edits[row.start] = (row.end, row.values)
    if fix and edits:
        patch_file(path, layout, edits)
        report.fixed = True
    return report


def _wide(report: CheckReport, line: int, what: str) -> None:
    report.rows += 1
    report.problems.append(Problem(line, what))


def _check_row(layout: Layout, row: _Row, problems: list[Problem]) -> str:
    """Record this row's own problems, fixing its values where safe; return its address key."""
    index, values, line = layout.index, row.values, row.start
    email = values[index["email"]]
    try:
        normal = normalize_email(email)
    except SubscriberError as exc:
        problems.append(Problem(line, exc.message))
        return email_key(email.strip())
    if normal != email:
        nfc = " (the same letters, composed: Unicode NFC)" if unicodedata.normalize("NFC", email) == normal else ""
        _fix(row, index["email"], normal, problems, f"address {email!r} is written {normal!r}{nfc}")
    if "name" in index and (found := control_character(name := values[index["name"]])):
        _fix(row, index["name"], tidy_name(name), problems,
             f"name {name!r} has a control character ({found!r}); it is written {tidy_name(name)!r}")
    if "status" in index:
        status = values[index["status"]]
        if status.strip().lower() in STATUS_RANK and status not in STATUS_RANK:
            _fix(row, index["status"], status.strip().lower(), problems, f"status {status!r} is written "
                 f"{status.strip().lower()!r}")
        elif status not in STATUS_RANK:
            what = "no status" if not status.strip() else f"unknown status {status!r}"
            problems.append(Problem(line, f"{what} (set it to one of {', '.join(STATUS_RANK)})"))
    if "tags" in index and ";".join(split_tags(tags := values[index["tags"]])) != tags:
        _fix(row, index["tags"], ";".join(split_tags(tags)), problems, f"tags {tags!r} are written "
             f"{';'.join(split_tags(tags))!r}")
    for column in ("created_at", "updated_at"):
        if column in index and (when := values[index[column]]) and not _CANONICAL_TIME.fullmatch(when):
            canonical = iso_utc(when)
            if canonical is None:
                problems.append(Problem(line, f"{column} {when!r} is not an ISO 8601 date and time"))
            else:
                _fix(row, index[column], canonical, problems, f"{column} {when!r} is written {canonical!r}")
    return email_key(normal)


def _fix(row: _Row, position: int, value: str, problems: list[Problem], message: str) -> None:
    row.values[position] = value
    row.changed = True
    problems.append(Problem(row.start, message, fixable=True))


def _repeat(
    layout: Layout, first: _Row, again: _Row, problems: list[Problem], edits: dict[int, tuple[int, list[str] | None]]
) -> None:
    """A second row for an address: merge it into the first if they agree, else report it."""
    conflict = next(_conflicts(layout, first.values, again.values), None)
    address = again.values[layout.index["email"]]
    if conflict is not None:
        problems.append(Problem(again.start, f"{address} is listed twice (first on line {first.start}) "
                                f"and the rows differ in {conflict}: merge them by hand"))
        return
    index = layout.index
    for position, theirs in enumerate(again.values):
        if not first.values[position]:
            first.values[position] = theirs
    if "status" in index:
        ours, theirs = first.values[index["status"]], again.values[index["status"]]
        first.values[index["status"]] = ours if STATUS_RANK[ours] >= STATUS_RANK[theirs] else theirs
    if "tags" in index:
        both = split_tags(first.values[index["tags"]] + ";" + again.values[index["tags"]])
        first.values[index["tags"]] = ";".join(both)
    for column, pick in (("created_at", min), ("updated_at", max)):
        if column in index:
            first.values[index[column]] = pick(filter(None, (first.values[index[column]],
                                                             again.values[index[column]])), default="")
    first.changed = True
    edits[again.start] = (again.end, None)
    problems.append(Problem(again.start, f"{address} is listed twice (first on line {first.start}): "
                            "merged into that row, the more restrictive status kept", fixable=True))


def _conflicts(layout: Layout, ours: list[str], theirs: list[str]) -> Iterator[str]:
    """The columns in which two rows for one address say different things (besides status etc.)."""
    index = layout.index
    status = index.get("status")
    if status is not None and not {ours[status], theirs[status]} <= STATUS_RANK.keys():
        yield "status"
    merged = {index.get(c) for c in ("email", "status", "tags", "created_at", "updated_at", "source")}
    for position, name in enumerate(layout.fieldnames):
        if position not in merged and ours[position] and theirs[position] and ours[position] != theirs[position]:
            yield name
    dates = [index[c] for c in ("created_at", "updated_at") if c in index]
    if any(v and not _CANONICAL_TIME.fullmatch(v) for row in (ours, theirs) for v in (row[i] for i in dates)):
        yield "a date that is not in ISO 8601 form"


def _line_of(message: str) -> int:
    found = re.match(r"[^:]*:(\d+):", message)
    return int(found[1]) if found else 0
