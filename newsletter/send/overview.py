"""`newsletter issues`: every issue file with its date, status and how many got it.

Reads the issue files and each issue's send ledger (sends/<slug>.jsonl), never writes. A file
that does not parse, or two files with one slug, is a row with its problem, not a failed listing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Settings
from newsletter.errors import NewsletterError
from newsletter.issues import list_issues, parse_issue
from newsletter.models import Issue
from newsletter.providers.base import State
from newsletter.send.ledger import read_ledger


@dataclass(frozen=True)
class IssueRow:
    """One issue file as `newsletter issues` shows it."""

    path: Path
    issue: Issue | None  # None when the file does not parse
    problem: str = ""  # why it does not parse, or which other file has its slug
    sent: int = 0  # addresses the ledger records as sent
    failed: int = 0
    in_doubt: int = 0


def issue_rows(settings: Settings) -> list[IssueRow]:
    """Every issue in issues/, newest first, with its ledger's counts; broken files last."""
    rows, broken = [], []
    owners: dict[str, Path] = {}
    for path in sorted(list_issues(settings.issues_dir)):
        try:
            issue = parse_issue(path)
        except NewsletterError as exc:
            broken.append(IssueRow(path, None, exc.message))
            continue
        problem = ""
        if issue.slug in owners:
            problem = f"{path}: slug {issue.slug!r} is also the slug of {owners[issue.slug]}"
        owners.setdefault(issue.slug, path)
        rows.append(_with_counts(IssueRow(path, issue, problem), settings.ledger_path(issue.slug)))
    rows.sort(key=lambda r: (r.issue.date, r.issue.slug) if r.issue else (0, ""), reverse=True)
    return rows + broken


def _with_counts(row: IssueRow, ledger: Path) -> IssueRow:
    try:
        counts = read_ledger(ledger).counts()
    except NewsletterError as exc:
        return IssueRow(row.path, row.issue, row.problem or exc.message)
    return IssueRow(row.path, row.issue, row.problem, counts[State.SENT], counts[State.FAILED],
                    counts[State.IN_DOUBT])
