"""The report after a send: what became of each issue, and the list over time.

The face re-exports the pure parts only (the category name, the model, the builders), which
import neither send nor providers, so the SendGrid body builder and the preview may use them.
Reading the ledger, the event store and SendGrid's statistics is newsletter.report.sources,
which the CLI calls.
"""

from __future__ import annotations

from newsletter.report.categories import category_for
from newsletter.report.model import (
    DayStats,
    IssueReport,
    LedgerCounts,
    LinkClicks,
    MonthGrowth,
    Outcomes,
    Overview,
    Rate,
    Rates,
    Reason,
)

__all__ = ["DayStats", "IssueReport", "LedgerCounts", "LinkClicks", "MonthGrowth", "Outcomes", "Overview",
           "Rate", "Rates", "Reason", "category_for"]
