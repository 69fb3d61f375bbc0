"""Putting a report together from what the sources gave: pure, so the preview can call it too."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from newsletter.report.arithmetic import rates, warnings
from newsletter.report.model import IssueReport, LedgerCounts, MonthGrowth, Outcomes, Overview

PREFERENCE = ("sendgrid-events", "sendgrid-stats", "inbox")  # per recipient beats per day bucket


def choose(sources: Sequence[Outcomes]) -> tuple[Outcomes | None, tuple[Outcomes, ...]]:
    """The best source that saw anything (webhook events, then category stats, then the inbox)."""
    def saw(o: Outcomes) -> bool:
        counts = (o.delivered, o.bounced_hard, o.bounced_soft, o.dropped, o.spam_reports, o.unsubscribes)
        return any(counts) or bool(o.days)

    ranked = sorted(sources, key=lambda o: (not saw(o), PREFERENCE.index(o.source)))
    return (ranked[0], tuple(ranked[1:])) if ranked else (None, ())


def build_issue_report(slug: str, subject: str, date: str, ledger: LedgerCounts, sources: Sequence[Outcomes],
                       *, link_unsubscribes: int = 0, opens_tracked: bool = False, clicks_tracked: bool = False,
                       unknown: Sequence[str] = ()) -> IssueReport:
    """One issue's report: the best source's outcomes, rates per delivered message, warnings.

    `link_unsubscribes` are the unsubscribes through the newsletter's own link that came after
    this issue and before the next (the link does not say which issue it was in).
    """
    best, others = choose(sources)
    if best is not None and link_unsubscribes:
        best = dataclasses.replace(best, unsubscribes=(best.unsubscribes or 0) + link_unsubscribes)
    elif best is None and link_unsubscribes:
        best = Outcomes("inbox", unsubscribes=link_unsubscribes)
    r = rates(ledger, best)
    return IssueReport(slug, subject, date, ledger, best, others, r, opens_tracked, clicks_tracked,
                       warnings(subject or slug, r), tuple(unknown))


def build_overview(reports: Sequence[IssueReport], growth: Sequence[MonthGrowth] = (),
                   unknown: Sequence[str] = ()) -> Overview:
    """Every sent issue, newest first, with the list over time; the issues' warnings gathered."""
    ordered = tuple(sorted(reports, key=lambda r: (r.ledger.first_sent, r.date, r.slug), reverse=True))
    gathered = tuple(w for r in ordered for w in r.warnings)
    return Overview(ordered, tuple(growth), gathered, tuple(dict.fromkeys(unknown)))
