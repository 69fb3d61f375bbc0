"""[smtp] max_per_day: a relay's daily cap (Gmail, Fastmail, the SES sandbox), kept by the plan.

A relay counts every message it took in the last 24 hours, whatever issue it belonged to, so the
count comes from the ledgers of every issue (sends/*.jsonl): the addresses an SMTP run left sent
or in doubt (the relay may have counted those) less than 24 hours ago. A send that would pass the
cap takes only what fits; the rest are "left for tomorrow", never recorded, so running the same
command again later carries on where this one stopped.
"""

from __future__ import annotations

import datetime as dt

from newsletter.config import Settings
from newsletter.errors import SendError
from newsletter.models import ProviderName
from newsletter.providers.base import State
from newsletter.send.ledger import read_ledger

DAY = dt.timedelta(hours=24)


def sent_in_last_day(settings: Settings, now: dt.datetime | None = None) -> int:
    """Messages SMTP runs of any issue handed over (sent or in doubt) in the 24 hours before now."""
    since = (now or dt.datetime.now(dt.UTC)) - DAY
    folder = settings.path(settings.delivery.ledger_dir)
    count = 0
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else ():
        try:
            ledger = read_ledger(path)
        except SendError:
            continue  # a damaged ledger is reported by the send of its own issue, not here
        smtp_runs = {r.run for r in ledger.runs.values() if r.provider == ProviderName.SMTP}
        count += sum(1 for e in ledger.entries.values()
                     if e.state in (State.SENT, State.IN_DOUBT) and e.run in smtp_runs and _after(e.at, since))
    return count


def within_daily_cap(settings: Settings, wanted: int, now: dt.datetime | None = None) -> tuple[int, int]:
    """How many of `wanted` recipients fit under [smtp] max_per_day today, and how many are left for tomorrow."""
    cap = settings.smtp.max_per_day
    if settings.delivery.provider != ProviderName.SMTP or cap <= 0 or not wanted:
        return wanted, 0
    room = max(0, cap - sent_in_last_day(settings, now))
    return min(wanted, room), max(0, wanted - room)


def _after(at: str, since: dt.datetime) -> bool:
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError:
        return False
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)) > since
