"""What a report says: plain frozen dataclasses, the same for the CLI, --format json and the preview.

Counts are None where a source cannot tell (an SMTP server never says "delivered"); 0 means the
source was asked and counted none. No address of a reader ever appears in a report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rate:
    """A share: `count` of `base`, where `basis` names what the base counts ("delivered", ...)."""

    count: int
    base: int
    basis: str

    @property
    def value(self) -> float | None:
        """The share as a fraction (0.004 for 0.4 %); None when there is nothing to divide by."""
        return self.count / self.base if self.base else None


@dataclass(frozen=True)
class LedgerCounts:
    """What the send's ledger knows: what was handed over, not what arrived."""

    provider: str
    first_sent: str  # ISO time of the first run that handed something over ("" if none)
    recipients: int
    handed_over: int
    failed: int
    in_doubt: int
    unsent: int


@dataclass(frozen=True)
class Reason:
    """One bounce or drop reason and how many messages gave it."""

    kind: str  # "hard", "soft" or "dropped"
    reason: str
    count: int


@dataclass(frozen=True)
class LinkClicks:
    """One link and how many readers clicked it (each reader once)."""

    url: str
    readers: int


@dataclass(frozen=True)
class DayStats:
    """One day bucket of SendGrid's category statistics (unique_* are unique within the day only)."""

    date: str  # YYYY-MM-DD
    delivered: int = 0
    deferred: int = 0
    bounces: int = 0
    blocks: int = 0
    dropped: int = 0
    spam_reports: int = 0
    unsubscribes: int = 0
    unique_clicks: int = 0
    unique_opens: int = 0


@dataclass(frozen=True)
class Outcomes:
    """What one source says became of an issue's messages after the hand-over."""

    source: str  # "sendgrid-events", "sendgrid-stats" or "inbox" (SMTP: the return mailbox)
    delivered: int | None = None
    deferred: int | None = None
    bounced_hard: int | None = None
    bounced_soft: int | None = None
    dropped: int | None = None
    spam_reports: int | None = None
    unsubscribes: int | None = None
    unique_clicks: int | None = None
    opens: int | None = None  # an upper bound (privacy proxies, scanners); None unless tracked
    reasons: tuple[Reason, ...] = ()
    top_links: tuple[LinkClicks, ...] = ()
    days: tuple[DayStats, ...] = ()
    unique_per_day: bool = False  # unique_* summed over day buckets: a reader may count once a day
    ignored: int = 0  # events that matched no message of this issue's ledger (test sends...)


@dataclass(frozen=True)
class Rates:
    """The shares a writer watches; each names its base."""

    bounce: Rate | None = None
    hard_bounce: Rate | None = None
    complaint: Rate | None = None
    unsubscribe: Rate | None = None
    click: Rate | None = None
    open: Rate | None = None  # an upper bound, like the opens


@dataclass(frozen=True)
class IssueReport:
    """One issue after its send: the ledger, what the provider told, rates, warnings, and the gaps."""

    slug: str
    subject: str
    date: str  # the day it went out (YYYY-MM-DD), or the issue's date if never sent
    ledger: LedgerCounts
    outcomes: Outcomes | None = None  # the best source available, None if none was
    other_sources: tuple[Outcomes, ...] = ()
    rates: Rates = field(default_factory=Rates)
    opens_tracked: bool = False
    clicks_tracked: bool = False
    warnings: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()  # said plainly: what this report cannot know, and why

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (rates with their value)."""
        return _with_values(asdict(self), self.rates)


@dataclass(frozen=True)
class MonthGrowth:
    """The list in one calendar month: who joined, who left, and its size at the month's end."""

    month: str  # YYYY-MM
    joined: int
    left: int
    size: int

    @property
    def net(self) -> int:
        """Joined minus left."""
        return self.joined - self.left


@dataclass(frozen=True)
class Overview:
    """Every sent issue, newest first, and the list over time."""

    issues: tuple[IssueReport, ...]
    growth: tuple[MonthGrowth, ...] = ()
    warnings: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "issues": [issue.as_json() for issue in self.issues],
            "growth": [{**asdict(m), "net": m.net} for m in self.growth],
            "warnings": list(self.warnings),
            "unknown": list(self.unknown),
        }


def _with_values(data: dict[str, Any], rates: Rates) -> dict[str, Any]:
    for name, rate in vars(rates).items():
        if rate is not None:
            data["rates"][name]["value"] = rate.value
    return data
