"""Scheduled sends (SendGrid only): when, checked before anything goes out, and cancelling.

A scheduled send is handed to SendGrid now with `send_at` under a `batch_id` created for it;
SendGrid holds the messages until then. `newsletter cancel` cancels every batch of the issue
that SendGrid still allows to cancel (until 10 minutes before its time) and returns its
recipients to "not sent" in the ledger.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.config import Settings
from newsletter.errors import SendError
from newsletter.issues import find_issue, set_status
from newsletter.providers import Credentials, ProviderName, RetryPolicy, State, missing_credentials
from newsletter.send.ledger import LedgerWriter, Run, locked, read_ledger

if TYPE_CHECKING:
    from newsletter.providers.sendgrid.api import SendGridAPI

MAX_AHEAD = dt.timedelta(hours=72)  # SendGrid's limit for send_at
CANCEL_MARGIN = dt.timedelta(minutes=10)  # SendGrid cannot cancel later than this before send_at
_RELATIVE = re.compile(r"\+\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
FORMAT_HINT = "use an ISO 8601 time (2026-11-24T08:00+01:00; no zone = this computer's) or +N[m|h|d] (+2h)"


def parse_schedule(text: str, now: dt.datetime) -> dt.datetime:
    """'+2h', '+90m', '+1d' or an ISO 8601 time -> an aware datetime."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        return now + dt.timedelta(seconds=float(relative.group(1)) * _UNITS[relative.group(2)])
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SendError(f"--schedule {text!r}: not a time", hint=FORMAT_HINT) from None
    return when if when.tzinfo is not None else when.astimezone()


def check_schedule(settings: Settings, text: str, now: dt.datetime | None = None) -> dt.datetime:
    """Parse --schedule and refuse what SendGrid would: another provider, the past, > 72 h ahead."""
    if settings.delivery.provider != ProviderName.SENDGRID:
        raise SendError(f"--schedule works only with the sendgrid provider, not {settings.delivery.provider}",
                        hint="use --provider sendgrid, or send now without --schedule")
    now = now or dt.datetime.now(dt.UTC)
    when = parse_schedule(text, now)
    if when <= now:
        raise SendError(f"--schedule {text!r}: {when.isoformat(timespec='minutes')} is in the past")
    if when - now > MAX_AHEAD:
        raise SendError(f"--schedule {text!r}: {when.isoformat(timespec='minutes')} is more than 72 hours "
                        "ahead; SendGrid schedules at most 72 hours ahead")
    return when


@dataclass
class CancelResult:
    """Which scheduled batches were cancelled and which were too late."""

    cancelled: list[Run]
    too_late: list[Run]
    recipients: int  # how many recipients went back to "not sent"


def cancel_scheduled(settings: Settings, ref: str, credentials: Credentials, now: dt.datetime | None = None,
                     policy: RetryPolicy | None = None) -> CancelResult:
    """Cancel the issue's scheduled SendGrid batches that can still be cancelled."""
    from newsletter.providers.sendgrid.api import SendGridAPI

    issue = find_issue(settings.issues_dir, ref)
    path = settings.ledger_path(issue.slug)
    now = now or dt.datetime.now(dt.UTC)
    with locked(path):
        state = read_ledger(path)
        runs = state.scheduled()
        if not runs:
            raise SendError(f"{path}: no scheduled send of {issue.slug} to cancel")
        open_runs = [r for r in runs if dt.datetime.fromtimestamp(r.send_at or 0, dt.UTC) - now > CANCEL_MARGIN]
        too_late = [r for r in runs if r not in open_runs]
        if not open_runs:
            return CancelResult([], too_late, 0)
        problem = missing_credentials(_as_sendgrid(settings), credentials)
        if problem:
            raise problem
        api = SendGridAPI.from_settings(settings, credentials.sendgrid_api_key)
        before = state.counts()
        writer = LedgerWriter(path)
        try:
            for run in open_runs:
                _cancel_one(api, run, policy or RetryPolicy())
                writer.cancelled(str(run.batch_id))
        finally:
            writer.close()
    back = read_ledger(path).counts()[State.UNSENT] - before[State.UNSENT]
    if issue.status == "sent":
        set_status(issue, "ready")
    return CancelResult(open_runs, too_late, back)


def _cancel_one(api: SendGridAPI, run: Run, policy: RetryPolicy) -> None:
    from newsletter.providers.retry import Exhausted
    from newsletter.providers.sendgrid.api import BadRequest

    try:
        policy.call(lambda: api.cancel_batch(str(run.batch_id)))
    except BadRequest as exc:
        raise SendError(f"SendGrid would not cancel batch {run.batch_id}: {exc}") from None
    except Exhausted as exc:
        raise SendError(f"could not cancel batch {run.batch_id}: {exc}") from None


def _as_sendgrid(settings: Settings) -> Settings:
    import dataclasses

    delivery = dataclasses.replace(settings.delivery, provider=ProviderName.SENDGRID)
    return dataclasses.replace(settings, delivery=delivery)
