"""The report's arithmetic, pure: folding events and day buckets into counts, rates, warnings.

Rates are per delivered message (Gmail counts complaints against what reached the inbox), except
the bounce rates: a bounced message was never delivered, so they are per message handed over.
Where no source tells "delivered" (SMTP), handed over less bounces stands in, an upper bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from newsletter.report.model import DayStats, LedgerCounts, LinkClicks, Outcomes, Rate, Rates, Reason
from newsletter.subscribers.schema import email_key

TOP_LINKS = 5
TOP_REASONS = 5
COMPLAINT_NEAR = 0.001  # Gmail: keep spam reports under 0.1 %...
COMPLAINT_LIMIT = 0.003  # ...and never reach 0.3 %
HARD_BOUNCE_LIMIT = 0.02
DAY_FIELDS = ("delivered", "deferred", "bounces", "blocks", "spam_reports", "unsubscribes",
              "unique_clicks", "unique_opens")


def day_stats(date: str, metrics: Mapping[str, Any]) -> DayStats:
    """One day bucket from SendGrid's `metrics` object (missing or odd numbers count 0)."""
    def number(name: str) -> int:
        value = metrics.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    dropped = sum(number(n) for n in ("bounce_drops", "spam_report_drops", "unsubscribe_drops", "invalid_emails"))
    return DayStats(date, dropped=dropped, **{name: number(name) for name in DAY_FIELDS})


def fold_days(days: Iterable[DayStats], *, opens_tracked: bool) -> Outcomes:
    """Sum day buckets into one issue's outcomes; unique_* stay unique per day only (said so)."""
    ordered = tuple(sorted(days, key=lambda d: d.date))
    total = {name: sum(getattr(d, name) for d in ordered) for name in (*DAY_FIELDS, "dropped")}
    return Outcomes(
        "sendgrid-stats", delivered=total["delivered"], deferred=total["deferred"],
        bounced_hard=total["bounces"], bounced_soft=total["blocks"], dropped=total["dropped"],
        spam_reports=total["spam_reports"], unsubscribes=total["unsubscribes"],
        unique_clicks=total["unique_clicks"], opens=total["unique_opens"] if opens_tracked else None,
        days=ordered, unique_per_day=True)


def is_ours(sg_message_id: str, ours: set[str]) -> bool:
    """Whether an event's sg_message_id ('<x-message-id>.filter...') starts with one of our message ids.

    Matched at each '.', not cut at the first: nothing promises an X-Message-Id has no dot.
    """
    parts = sg_message_id.split(".")
    return any(".".join(parts[:n]) in ours for n in range(1, len(parts) + 1))


def fold_events(records: Iterable[Mapping[str, Any]], message_ids: Mapping[str, str],
                *, opens_tracked: bool) -> Outcomes:
    """Count an issue's webhook events per recipient, joined to its ledger.

    `message_ids` maps each address the ledger handed over (its "same address" key) to the
    message id the provider returned. An event counts when its sg_message_id starts with one of
    those ids, or, lacking one, when its address is in the ledger; the rest (test sends, another
    issue's mail) are `ignored`. Each recipient counts once per kind, whatever SendGrid repeated.
    """
    ours = set(message_ids.values())
    seen: set[str] = set()
    who: dict[str, set[str]] = {}
    reasons: Counter[tuple[str, str]] = Counter()
    links: dict[str, set[str]] = {}
    ignored = 0
    for record in records:
        event_id, kind, email = record.get("sg_event_id"), record.get("event"), str(record.get("email", ""))
        if not isinstance(event_id, str) or event_id in seen or not isinstance(kind, str):
            continue
        seen.add(event_id)
        key = email_key(email.strip())
        message = str(record.get("sg_message_id") or "")
        if not (is_ours(message, ours) if message else key in message_ids):
            ignored += 1
            continue
        kind = _kind(kind, record)
        if kind == "open" and (record.get("sg_machine_open") or not opens_tracked):
            continue
        if key in who.setdefault(kind, set()):
            continue
        who[kind].add(key)
        if kind in ("hard", "soft", "dropped"):
            reasons[kind, str(record.get("reason") or record.get("bounce_classification") or "no reason given")] += 1
        elif kind == "click" and record.get("url"):
            links.setdefault(str(record["url"]), set()).add(key)
    count = {kind: len(emails) for kind, emails in who.items()}
    return Outcomes(
        "sendgrid-events", delivered=count.get("delivered", 0), deferred=count.get("deferred", 0),
        bounced_hard=count.get("hard", 0), bounced_soft=count.get("soft", 0), dropped=count.get("dropped", 0),
        spam_reports=count.get("spamreport", 0), unsubscribes=count.get("unsubscribe", 0),
        unique_clicks=count.get("click", 0), opens=count.get("open", 0) if opens_tracked else None,
        reasons=top_reasons(reasons), top_links=top_links(links), ignored=ignored)


def _kind(event: str, record: Mapping[str, Any]) -> str:
    """The kind an event counts as: a bounce is hard, a block (SendGrid's type "blocked") soft."""
    if event == "bounce":
        return "soft" if record.get("type") == "blocked" else "hard"
    if event == "group_unsubscribe":
        return "unsubscribe"
    return event


def top_reasons(reasons: Mapping[tuple[str, str], int]) -> tuple[Reason, ...]:
    """The most frequent reasons of each kind, most frequent first."""
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    out: list[Reason] = []
    for kind in ("hard", "soft", "dropped"):
        out += [Reason(k, reason, n) for (k, reason), n in ranked if k == kind][:TOP_REASONS]
    return tuple(out)


def top_links(links: Mapping[str, set[str]]) -> tuple[LinkClicks, ...]:
    """The most clicked links by readers, most first (ties by URL, so the order is stable)."""
    ranked = sorted(links.items(), key=lambda item: (-len(item[1]), item[0]))
    return tuple(LinkClicks(url, len(readers)) for url, readers in ranked[:TOP_LINKS])


def fold_inbox(kinds: Sequence[tuple[str, str, str]]) -> Outcomes:
    """Count the inbox's (type, email, detail) events for an issue: what an SMTP sender can know.

    A bounce the return mailbox recorded is hard (it was a final answer); nothing says
    "delivered", so delivered, deferred, clicks and opens stay unknown (None).
    """
    who: dict[str, set[str]] = {}
    reasons: Counter[tuple[str, str]] = Counter()
    for kind, email, detail in kinds:
        key = email_key(email.strip())
        if key in who.setdefault(kind, set()):
            continue
        who[kind].add(key)
        if kind == "bounced":
            reasons["hard", detail or "no reason given"] += 1
    return Outcomes("inbox", bounced_hard=len(who.get("bounced", ())), spam_reports=len(who.get("complained", ())),
                    unsubscribes=len(who.get("unsubscribed", ())), reasons=top_reasons(reasons))


def rates(ledger: LedgerCounts, outcomes: Outcomes | None) -> Rates:
    """The rates of one issue: bounces per message handed over, the rest per delivered message."""
    if outcomes is None:
        return Rates()
    hard = outcomes.bounced_hard or 0
    bounced = hard + (outcomes.bounced_soft or 0)
    sent = max(ledger.handed_over, (outcomes.delivered or 0) + bounced)
    if outcomes.delivered is not None:
        base, basis = outcomes.delivered, "delivered"
    else:
        base, basis = max(ledger.handed_over - bounced, 0), "handed over less bounces (at most delivered)"

    def per(count: int | None) -> Rate | None:
        return None if count is None else Rate(count, base, basis)

    return Rates(
        bounce=Rate(bounced, sent, "handed over"), hard_bounce=Rate(hard, sent, "handed over"),
        complaint=per(outcomes.spam_reports), unsubscribe=per(outcomes.unsubscribes),
        click=per(outcomes.unique_clicks), open=per(outcomes.opens))


def warnings(subject: str, r: Rates) -> tuple[str, ...]:
    """Words, not numbers only: a complaint rate near Gmail's limits, a hard-bounce rate past 2 %."""
    out = []
    complaint = r.complaint.value if r.complaint else None
    if complaint is not None and complaint >= COMPLAINT_LIMIT:
        out.append(f"{subject}: the complaint rate is {percent(complaint)}, at or past Gmail's 0.3 % limit: "
                   "Gmail may send the next issue to spam or refuse it")
    elif complaint is not None and complaint >= COMPLAINT_NEAR:
        out.append(f"{subject}: the complaint rate is {percent(complaint)}, above the 0.1 % Gmail asks senders "
                   "to stay under (never 0.3 %)")
    hard = r.hard_bounce.value if r.hard_bounce else None
    if hard is not None and hard > HARD_BOUNCE_LIMIT:
        out.append(f"{subject}: {percent(hard)} of messages bounced hard, past 2 %: "
                   "the list has addresses that no longer exist; `subscribers apply` retires them")
    return tuple(out)


def percent(value: float | None) -> str:
    """0.0042 -> '0.42 %' (two decimals: complaint rates live below 1 %); None -> '-'."""
    return "-" if value is None else f"{value * 100:.2f} %"
