"""Where a report's numbers come from: the ledger, the webhook's events, the inbox, SendGrid's stats.

The only module of the package that reads files or asks SendGrid; the arithmetic is pure
(newsletter.report.arithmetic, .build). SendGrid is reached through a `StatsSource` the CLI
builds from SendGridAPI (it holds the key); without one, or when SendGrid cannot be reached,
the ledger part still stands and `unknown` says what is missing, in one line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from newsletter.config import Settings
from newsletter.errors import NewsletterError
from newsletter.issues import locate_issue, parse_issue
from newsletter.models import ProviderName
from newsletter.providers.base import State
from newsletter.report.arithmetic import day_stats, fold_days, fold_events, fold_inbox
from newsletter.report.build import build_issue_report, build_overview
from newsletter.report.categories import category_for
from newsletter.report.listgrowth import list_growth
from newsletter.report.model import DayStats, IssueReport, LedgerCounts, Outcomes, Overview
from newsletter.send.ledger import LedgerState, read_ledger
from newsletter.subscribers.inbox import EventType, Inbox
from newsletter.subscribers.provider_events import DeliveryEvents

SUMS_PAGE = 500
NO_EVENTS = "{slug}: no webhook events kept for this issue (is SendGrid's Event Webhook posting to `newsletter serve`?)"
SMTP_UNKNOWN = ("an SMTP server says only that it accepted a message: delivered, deferred, clicks and opens "
                "cannot be known; bounces and complaints count once the return mailbox records them")
PER_DAY = "SendGrid's unique clicks and opens are unique per day: a reader who clicks on two days counts twice"
LINK_UNSUBSCRIBES = ("unsubscribes through the newsletter's own link are counted for the last issue sent "
                     "before them (the link does not name the issue)")


class GetJSON(Protocol):
    """SendGridAPI.get_json: GET /v3/<path> with a query, decoded."""

    def __call__(self, path: Sequence[str], query: dict[str, Any] | None = None) -> Any: ...


class Unavailable(Exception):
    """SendGrid could not be asked (no key, unreachable, refused): one line saying which."""


@dataclass(frozen=True)
class StatsSource:
    """SendGrid's category statistics, or why they cannot be had (`missing`)."""

    get_json: GetJSON | None = None
    missing: str = ""
    errors: tuple[type[BaseException], ...] = (NewsletterError,)  # what a failed call raises

    def days(self, category: str, start: str, end: str) -> tuple[DayStats, ...]:
        """GET /v3/categories/stats?aggregated_by=day for one category (Unavailable if it fails)."""
        data = self._get(["categories", "stats"], {"start_date": start, "end_date": end,
                                                   "categories": category, "aggregated_by": "day"})
        out = []
        for bucket in data if isinstance(data, list) else []:
            for stat in bucket.get("stats", []) if isinstance(bucket, dict) else []:
                if isinstance(stat, dict) and stat.get("name") == category and isinstance(stat.get("metrics"), dict):
                    out.append(day_stats(str(bucket.get("date", "")), stat["metrics"]))
        return tuple(out)

    def sums(self, start: str, end: str) -> dict[str, DayStats]:
        """GET /v3/categories/stats/sums, every page: each category's totals over the days."""
        out: dict[str, DayStats] = {}
        offset = 0
        while True:
            data = self._get(["categories", "stats", "sums"], {"start_date": start, "end_date": end,
                                                               "limit": SUMS_PAGE, "offset": offset})
            stats = data.get("stats", []) if isinstance(data, dict) else []
            for stat in stats:
                if isinstance(stat, dict) and isinstance(stat.get("metrics"), dict):
                    out[str(stat.get("name", ""))] = day_stats(start, stat["metrics"])
            if len(stats) < SUMS_PAGE:
                return out
            offset += SUMS_PAGE

    def _get(self, path: list[str], query: dict[str, Any]) -> Any:
        if self.get_json is None:
            raise Unavailable(self.missing or "SendGrid's statistics were not asked for")
        try:
            return self.get_json(path, query)
        except self.errors as exc:
            raise Unavailable(f"SendGrid's statistics could not be read: {exc}") from None


def ledger_counts(state: LedgerState) -> LedgerCounts:
    """The ledger's part of a report."""
    counts = state.counts()
    runs = sorted(state.runs.values(), key=lambda r: r.at)
    provider = runs[-1].provider if runs else ""
    return LedgerCounts(provider, runs[0].at if runs else "", len(state.entries),
                        counts[State.SENT], counts[State.FAILED], counts[State.IN_DOUBT], counts[State.UNSENT])


def message_ids(state: LedgerState) -> dict[str, str]:
    """Each handed-over address's provider message id (SendGrid's X-Message-Id, or a Message-ID)."""
    return {email: e.detail for email, e in state.entries.items() if e.state == State.SENT and e.detail}


def sent_slugs(settings: Settings) -> list[str]:
    """The issues with a ledger ([delivery] ledger_dir/<slug>.jsonl)."""
    folder = settings.path(settings.delivery.ledger_dir)
    return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []


def subject_and_date(settings: Settings, slug: str) -> tuple[str, str]:
    """The issue's title and date from issues/, or ("", "") when its file is gone or broken."""
    path = locate_issue(settings.issues_dir, slug, skip_broken=True)
    if path is None:
        return "", ""
    try:
        issue = parse_issue(path)
    except NewsletterError:
        return "", ""
    return issue.title, issue.date.isoformat()


@dataclass(frozen=True)
class _Sent:
    slug: str
    state: LedgerState
    counts: LedgerCounts


def issue_report(settings: Settings, slug: str, stats: StatsSource, *, today: dt.date | None = None) -> IssueReport:
    """One issue's report from every source there is (NewsletterError if it was never sent)."""
    sent = _read_sent(settings, [slug])
    if not sent or not sent[0].counts.first_sent:
        raise NewsletterError(f"{settings.ledger_path(slug)}: issue {slug!r} has not been sent (no ledger)",
                              hint="`newsletter issues` lists the issues and how many got each")
    inbox = list(Inbox(settings.inbox_dir).scan())
    return _report(settings, sent[0], stats, [e for e, _ in inbox], _windows(sent), today=today, by_day=True)


def overview(settings: Settings, stats: StatsSource, *, today: dt.date | None = None) -> Overview:
    """Every sent issue, newest first, and the list over time (from the subscriber CSV)."""
    sent = [s for s in _read_sent(settings, sent_slugs(settings)) if s.counts.first_sent]
    inbox = [e for e, _ in Inbox(settings.inbox_dir).scan()]
    unknown: list[str] = []
    sums: dict[str, DayStats] | None = None
    if any(s.counts.provider == ProviderName.SENDGRID for s in sent):
        start = min(s.counts.first_sent[:10] for s in sent)
        try:
            sums = stats.sums(start, _end(start, today))
        except Unavailable as exc:
            unknown.append(str(exc))
    windows = _windows(sent)
    reports = [_report(settings, s, stats, inbox, windows, today=today, sums=sums) for s in sent]
    growth = list_growth(settings.subscribers_path) if settings.subscribers_path.exists() else ()
    if not settings.subscribers_path.exists():
        unknown.append(f"{settings.subscribers_path}: no subscriber list, so no list over time")
    return build_overview(reports, growth, unknown + [u for r in reports for u in r.unknown])


def _read_sent(settings: Settings, slugs: Iterable[str]) -> list[_Sent]:
    out = []
    for slug in slugs:
        state = read_ledger(settings.ledger_path(slug))
        out.append(_Sent(slug, state, ledger_counts(state)))
    return out


def _windows(sent: Sequence[_Sent]) -> Callable[[str], str]:
    """Which issue an unsubscribe at a time belongs to: the last one sent before it."""
    starts = sorted((s.counts.first_sent, s.slug) for s in sent if s.counts.first_sent)

    def owner(at: str) -> str:
        before = [slug for first, slug in starts if first <= at]
        return before[-1] if before else ""

    return owner


def _end(start: str, today: dt.date | None) -> str:
    end = (today or dt.datetime.now(dt.UTC).date()).isoformat()
    return max(start, end)


def _report(settings: Settings, sent: _Sent, stats: StatsSource, inbox: Sequence[Any],
            owner: Callable[[str], str], *, today: dt.date | None, by_day: bool = False,
            sums: dict[str, DayStats] | None = None) -> IssueReport:
    subject, date = subject_and_date(settings, sent.slug)
    opens, clicks = settings.sendgrid.open_tracking, settings.sendgrid.click_tracking
    sources: list[Outcomes] = []
    unknown: list[str] = []
    mine = [e for e in inbox if e.issue == sent.slug]
    linked = sum(1 for e in inbox if e.type == EventType.UNSUBSCRIBED and not e.issue and owner(e.at) == sent.slug)
    if sent.counts.provider == ProviderName.SENDGRID:
        events = DeliveryEvents(settings.inbox_dir).read(sent.slug)
        if events:
            sources.append(fold_events(events, message_ids(sent.state), opens_tracked=opens))
        start = sent.counts.first_sent[:10]
        category = category_for(sent.slug)
        try:
            if by_day:
                sources.append(fold_days(stats.days(category, start, _end(start, today)), opens_tracked=opens))
            elif sums is not None and category in sums:
                sources.append(fold_days([sums[category]], opens_tracked=opens))
        except Unavailable as exc:
            unknown.append(str(exc))
        if not events:
            unknown.append(NO_EVENTS.format(slug=sent.slug))
    else:
        kinds = [(str(e.type), e.email, e.detail) for e in mine
                 if e.type in (EventType.BOUNCED, EventType.COMPLAINED, EventType.UNSUBSCRIBED)]
        sources.append(fold_inbox(kinds))
        unknown.append(SMTP_UNKNOWN)
        opens = clicks = False
    if linked:
        unknown.append(LINK_UNSUBSCRIBES)
    return build_issue_report(sent.slug, subject, date or sent.counts.first_sent[:10], sent.counts, sources,
                              link_unsubscribes=linked, opens_tracked=opens, clicks_tracked=clicks,
                              unknown=unknown)
