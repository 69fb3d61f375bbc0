"""How `newsletter report` shows its results as text (--format json prints the model as it is)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.cli.common import echo, plural

if TYPE_CHECKING:
    from newsletter.report import IssueReport, Outcomes, Overview, Rate

SOURCE_NAMES = {
    "sendgrid-events": "SendGrid's webhook events (each reader once)",
    "sendgrid-stats": "SendGrid's category statistics (day buckets)",
    "inbox": "the inbox (bounces, complaints and unsubscribes recorded for this issue)",
}


def _count(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def _rate(rate: Rate | None) -> str:
    from newsletter.report.arithmetic import percent

    if rate is None or rate.value is None:
        return ""
    return f"{percent(rate.value)} of {rate.basis}"


def _row(label: str, value: str, note: str = "") -> None:
    echo(f"  {label:<15} {value:>9}   {note}".rstrip())


def show_issue(report: IssueReport) -> None:
    """Print one issue's report: ledger, the best source's counts, reasons, links, warnings, gaps."""
    ledger = report.ledger
    echo(f"{report.subject or report.slug} ({report.slug}), sent {ledger.first_sent[:10]} by {ledger.provider}")
    echo("")
    echo("From the ledger (what was handed over)")
    for label, value in (("recipients", ledger.recipients), ("handed over", ledger.handed_over),
                         ("failed", ledger.failed), ("in doubt", ledger.in_doubt)):
        _row(label, _count(value))
    if report.outcomes is not None:
        echo("")
        _show_outcomes(report, report.outcomes)
    _show_lists(report)


def _show_outcomes(report: IssueReport, o: Outcomes) -> None:
    r = report.rates
    echo(f"From {SOURCE_NAMES.get(o.source, o.source)}")
    _row("delivered", _count(o.delivered))
    _row("deferred", _count(o.deferred))
    _row("bounced hard", _count(o.bounced_hard), _rate(r.hard_bounce))
    _row("bounced soft", _count(o.bounced_soft))
    _row("dropped", _count(o.dropped))
    _row("spam reports", _count(o.spam_reports), _rate(r.complaint))
    _row("unsubscribes", _count(o.unsubscribes), _rate(r.unsubscribe))
    if o.source == "inbox":
        _row("unique clicks", "unknown")
    elif report.clicks_tracked or o.unique_clicks:
        _row("unique clicks", _count(o.unique_clicks), _rate(r.click))
    else:
        _row("unique clicks", "-", "click tracking is off ([sendgrid] click_tracking)")
    if o.opens is None:
        _row("opens", "-", "open tracking is off ([sendgrid] open_tracking)" if o.source != "inbox" else "")
    else:
        _row("opens", f"<= {o.opens:,}", f"{_rate(r.open)}; an upper bound: privacy proxies and scanners open "
                                         "mail too (machine opens left out)")
    if o.unique_per_day:
        echo("  (unique clicks and opens are unique per day: a reader who clicks on two days counts twice)")
    if o.ignored:
        echo(f"  ({plural(o.ignored, 'event')} matched no message of this send, such as test sends: left out)")


def _show_lists(report: IssueReport) -> None:
    o = report.outcomes
    if o is not None and o.reasons:
        echo("")
        echo("Bounce and drop reasons")
        for reason in o.reasons:
            echo(f"  {reason.kind:<8} {reason.count:>5}  {reason.reason}")
    if o is not None and o.top_links:
        echo("")
        echo("Most clicked links (readers)")
        for link in o.top_links:
            echo(f"  {link.readers:>5}  {link.url}")
    _notes(report.warnings, report.unknown)


def _notes(warnings: tuple[str, ...], unknown: tuple[str, ...]) -> None:
    if warnings:
        echo("")
        for warning in warnings:
            echo(f"warning: {warning}")
    if unknown:
        echo("")
        for line in unknown:
            echo(f"not known: {line}")


def show_overview(overview: Overview) -> None:
    """Print one row per sent issue, newest first, then the list month by month."""
    from newsletter.report.arithmetic import percent

    if not overview.issues:
        echo("No issue has been sent yet.")
    else:
        echo(f"{'date':<10}  {'subject':<32} {'recipients':>10} {'delivered':>9} {'bounces':>8} "
             f"{'complaints':>10} {'unsubs':>6} {'clicks':>6}")
    for r in overview.issues:
        o = r.outcomes
        delivered = _count(o.delivered) if o else "unknown"
        clicks = _count(o.unique_clicks) if o else "unknown"
        bounce = percent(r.rates.bounce.value) if r.rates.bounce else "-"
        complaint = percent(r.rates.complaint.value) if r.rates.complaint else "-"
        unsubs = _count(o.unsubscribes) if o else "unknown"
        subject = (r.subject or r.slug)[:32]
        echo(f"{r.ledger.first_sent[:10]:<10}  {subject:<32} {r.ledger.recipients:>10,} {delivered:>9} {bounce:>8} "
             f"{complaint:>10} {unsubs:>6} {clicks:>6}")
    if overview.growth:
        echo("")
        echo("The list, month by month")
        echo(f"  {'month':<8} {'joined':>7} {'left':>6} {'net':>6} {'size':>7}")
        for m in overview.growth:
            echo(f"  {m.month:<8} {m.joined:>7,} {m.left:>6,} {m.net:>+6,} {m.size:>7,}")
    _notes(overview.warnings, overview.unknown)
