"""The Reports page: what became of each sent issue, and the list over time, drawn from an Overview.

The numbers come from a callable the CLI hands the preview (newsletter.cli.report.overview_for):
reading ledgers, webhook events and SendGrid's statistics needs the API key and the send package,
neither of which a preview may touch. This module only arranges an Overview for the page: the
charts (newsletter.preview.charts), the table `newsletter report` prints, the warnings, the gaps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from newsletter.config import Settings
from newsletter.preview.charts import Bar, Point, growth_chart, issue_chart
from newsletter.report.arithmetic import percent
from newsletter.report.model import IssueReport, Overview, Rate

ReportsSource = Callable[[Settings], Overview]
FRESH_SECONDS = 300.0  # SendGrid's statistics are asked again after this, or when a ledger changes
GROWTH_MONTHS = 24  # the chart's span; the table below it has every month
SOURCE_NAMES = {
    "sendgrid-events": "SendGrid's webhook events, each reader once",
    "sendgrid-stats": "SendGrid's category statistics (unique per day)",
    "inbox": "the inbox: bounces, complaints and unsubscribes recorded for this issue",
}


@dataclass(frozen=True)
class IssueCard:
    """One issue's chart and where its numbers come from."""

    slug: str
    subject: str
    date: str
    chart: Markup
    source: str


def tracking_note(settings: Settings) -> tuple[str, str]:
    """(opens, links): what the provider tracks, in words, as the issue page and Reports say it."""
    if settings.delivery.provider != "sendgrid":
        return ("not tracked: no provider but SendGrid can tell opens",
                "sent as written: nothing rewrites them")
    s = settings.sendgrid
    opens = ("tracked by SendGrid's pixel; an upper bound (privacy proxies and scanners open mail too)"
             if s.open_tracking else "not tracked ([sendgrid] open_tracking is off)")
    links = ("HTML links go through SendGrid's click tracking; the plain-text part keeps the essay's own links"
             if s.click_tracking else "sent as written ([sendgrid] click_tracking is off)")
    return opens, links


def bars_for(report: IssueReport) -> tuple[list[Bar], int]:
    """The five bars of one issue, and the scale they are drawn against (messages handed over)."""
    o = report.outcomes
    if o is None:
        return [Bar(label, None, kind) for label, kind in _KINDS], max(report.ledger.handed_over, 1)
    bounced = None
    if o.bounced_hard is not None or o.bounced_soft is not None:
        bounced = (o.bounced_hard or 0) + (o.bounced_soft or 0)
    clicks, blank = o.unique_clicks, "unknown"
    if o.source != "inbox" and not report.clicks_tracked and not o.unique_clicks:
        clicks, blank = None, "not tracked"
    values = [o.delivered, bounced, o.spam_reports, o.unsubscribes, clicks]
    bars = [Bar(label, value, kind, blank if kind == "clicked" else "unknown")
            for (label, kind), value in zip(_KINDS, values, strict=True)]
    scale = max(report.ledger.handed_over, (o.delivered or 0) + (bounced or 0), 1)
    return bars, scale


_KINDS = (("delivered", "delivered"), ("bounced", "bounced"), ("complained", "complained"),
          ("unsubscribed", "unsubscribed"), ("clicked", "clicked"))


def _count(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def _rate(rate: Rate | None) -> str:
    return percent(rate.value) if rate is not None else "-"


def table_row(report: IssueReport) -> dict[str, str]:
    """One row of the table `newsletter report` prints."""
    o = report.outcomes
    return {
        "slug": report.slug, "date": report.ledger.first_sent[:10] or report.date,
        "subject": report.subject or report.slug, "recipients": f"{report.ledger.recipients:,}",
        "delivered": _count(o.delivered) if o else "unknown", "bounces": _rate(report.rates.bounce),
        "complaints": _rate(report.rates.complaint), "unsubscribes": _count(o.unsubscribes) if o else "unknown",
        "clicks": _count(o.unique_clicks) if o else "unknown",
    }


def page_context(overview: Overview, settings: Settings) -> dict[str, Any]:
    """Everything reports.html shows, from one Overview."""
    cards = []
    for report in overview.issues:
        bars, scale = bars_for(report)
        subject = report.subject or report.slug
        source = SOURCE_NAMES.get(report.outcomes.source, report.outcomes.source) if report.outcomes else \
            "the ledger only: no source told what became of the messages"
        cards.append(IssueCard(report.slug, subject, report.ledger.first_sent[:10] or report.date,
                               issue_chart(f"{subject}: delivered, bounced, complained, unsubscribed, clicked "
                                           f"of {report.ledger.handed_over:,} handed over", bars, scale), source))
    growth = overview.growth[-GROWTH_MONTHS:]
    chart = growth_chart("The list's size at the end of each month", [Point(m.month, m.size) for m in growth]) \
        if growth else None
    opens, links = tracking_note(settings)
    return {"cards": cards, "rows": [table_row(r) for r in overview.issues], "growth": overview.growth,
            "growth_chart": chart, "warnings": overview.warnings, "unknown": overview.unknown,
            "opens_note": opens, "links_note": links}


class ReportsCache:
    """The last Overview, asked again when a ledger or the list changes, or after FRESH_SECONDS.

    One question at a time: a page that reloads on every save never sends SendGrid a burst.
    """

    def __init__(self, source: ReportsSource | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.clock = clock
        self._lock = threading.Lock()
        self._last: tuple[tuple[object, ...], float, Overview] | None = None

    def get(self, settings: Settings) -> tuple[Overview, float] | None:
        """(the Overview, when it was read on time.time()'s clock), or None without a source."""
        if self.source is None:
            return None
        key = (settings, _stamp(settings))
        with self._lock:
            if self._last is None or self._last[0] != key or self.clock() - self._last[1] > FRESH_SECONDS:
                self._last = (key, self.clock(), self.source(settings))
                self._read_at = time.time()
            return self._last[2], self._read_at


def _stamp(settings: Settings) -> tuple[object, ...]:
    """mtime and size of each ledger, the list and the inbox's files: a send or an apply shows at once."""
    folders = [settings.ledger_path("x").parent, settings.inbox_dir]
    files = [settings.subscribers_path, *(p for d in folders if d.is_dir() for p in sorted(d.rglob("*")))]
    return tuple(_stat(p) for p in files)


def _stat(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (str(path), 0, -1)
    return (str(path), st.st_mtime_ns, st.st_size)
