"""`subscribers sync`: SendGrid's suppression lists -> subscriber statuses in the CSV.

Pulls, since the last sync, global unsubscribes and the unsubscribe group's members
(-> unsubscribed), bounces and invalid emails (-> bounced) and spam reports (-> complained),
and marks those subscribers in the CSV through subscribers.apply_statuses (atomic, under the
list's lock, never deleting, never reactivating). Blocks are left out: SendGrid lists a block
for a temporary refusal by the receiving server, not for a dead address.

The time of the last sync is kept in <ledger_dir>/sendgrid-sync.json and moved on only after
the CSV was written, so a failed sync is simply repeated in full next time.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter.config import Settings
from newsletter.errors import SendError
from newsletter.files import atomic_write_text
from newsletter.providers import Exhausted, RetryPolicy
from newsletter.providers.sendgrid.api import SendGridAPI

PAGE_LIMIT = 500  # SendGrid's largest page
OVERLAP = 3600  # seconds read again each time, in case SendGrid's clock and ours disagree
LISTS = (  # (endpoint, status), weakest first: an address on several lists gets the last
    ("unsubscribes", "unsubscribed"),
    ("invalid_emails", "bounced"),
    ("bounces", "bounced"),
    ("spam_reports", "complained"),
)
STATE_FILE = "sendgrid-sync.json"


@dataclass
class SyncResult:
    """What SendGrid listed and what changed in the CSV."""

    since: int | None
    until: int
    found: dict[str, int] = field(default_factory=dict)  # list -> addresses listed
    changed: list[tuple[str, str, str]] = field(default_factory=list)  # (email, old, new)


def pages(api: SendGridAPI, endpoint: str, since: int | None, until: int,
          policy: RetryPolicy) -> Iterator[dict[str, Any]]:
    """Every entry of one suppression list between since and until, page by page."""
    offset = 0
    while True:
        query: dict[str, Any] = {"end_time": until, "limit": PAGE_LIMIT, "offset": offset}
        if since is not None:
            query["start_time"] = since
        page = _get(api, ["suppression", endpoint], query, policy)
        if not isinstance(page, list):
            raise SendError(f"SendGrid's /v3/suppression/{endpoint} answered something that is not a list")
        yield from (e for e in page if isinstance(e, dict) and e.get("email"))
        if len(page) < PAGE_LIMIT:  # a short page is the last one
            return
        offset += PAGE_LIMIT


def _get(api: SendGridAPI, path: list[str], query: dict[str, Any] | None, policy: RetryPolicy) -> Any:
    try:
        return policy.call(lambda: api.get_json(path, query))
    except Exhausted as exc:
        raise SendError(f"SendGrid /v3/{'/'.join(path)}: {exc}") from None


def collect(settings: Settings, api: SendGridAPI, since: int | None, until: int,
            policy: RetryPolicy) -> tuple[dict[str, str], dict[str, int]]:
    """email -> new status from every list, and how many entries each list had."""
    changes: dict[str, str] = {}
    found: dict[str, int] = {}
    group = settings.sendgrid.unsubscribe_group_id
    if group is not None:  # not paginated and without times: the whole group, every time
        members = _get(api, ["asm", "groups", str(group), "suppressions"], None, policy)
        emails = [str(m) for m in members if isinstance(m, str)] if isinstance(members, list) else []
        found[f"group {group} unsubscribes"] = len(emails)
        changes.update(dict.fromkeys((e.strip().lower() for e in emails), "unsubscribed"))
    for endpoint, status in LISTS:
        entries = list(pages(api, endpoint, since, until, policy))
        found[endpoint.replace("_", " ")] = len(entries)
        changes.update({str(e["email"]).strip().lower(): status for e in entries})
    return changes, found


def sync_suppressions(settings: Settings, subscribers: Path, api_key: str, *, full: bool = False,
                      now: dt.datetime | None = None, policy: RetryPolicy | None = None) -> SyncResult:
    """Fetch SendGrid's suppressions since the last sync and mark those subscribers in the CSV."""
    from newsletter.subscribers.store import apply_statuses

    if not api_key:
        raise SendError("SENDGRID_API_KEY is not set: `subscribers sync` reads SendGrid's suppression lists",
                        hint="export SENDGRID_API_KEY=... (a key with read access to Suppressions)")
    policy = policy or RetryPolicy()
    state_path = settings.path(settings.delivery.ledger_dir) / STATE_FILE
    last = None if full else _last_sync(state_path)
    until = int((now or dt.datetime.now(dt.UTC)).timestamp())
    since = max(0, last - OVERLAP) if last is not None else None
    api = SendGridAPI.from_settings(settings, api_key)
    changes, found = collect(settings, api, since, until, policy)
    result = SyncResult(since, until, found)
    result.changed = list(apply_statuses(subscribers, changes, source="sendgrid")) if changes else []
    atomic_write_text(state_path, json.dumps({"last_sync": until}) + "\n")
    return result


def _last_sync(path: Path) -> int | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("last_sync")
    except FileNotFoundError:
        return None
    except (ValueError, AttributeError):
        raise SendError(f"{path}: not a sync record", hint="delete it, or pass --full") from None
    return int(value) if isinstance(value, int | float) else None
