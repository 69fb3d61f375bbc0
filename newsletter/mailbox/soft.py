"""The soft-bounce history: inbox/soft_bounces.json, the temporary failures counted per address.

A temporary failure (4.x.x: a full mailbox, a greylisting server, a host down for a day) is not
a reason to stop writing to someone; [mailbox] soft_bounces of them within soft_bounce_days
are. Each is kept once, by the id of the message that reported it, so reading a message again
counts nothing twice. The file is small (entries older than a year are dropped) and rewritten
atomically; `subscribers bounces` holds the mailbox lock while it reads and writes it.

    {"soft_bounces": [{"id", "at", "email", "detail"?, "issue"?}, ...]}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from newsletter.errors import SubscriberError
from newsletter.files import atomic_write_text
from newsletter.subscribers.schema import shown

SOFT_BOUNCES = "soft_bounces.json"
KEEP = timedelta(days=366)  # longer than any window soft_bounce_days allows


@dataclass(frozen=True)
class SoftBounce:
    """One temporary failure of one address, reported by one message."""

    id: str
    at: str  # ISO 8601, the report's Date (or when it was read, without one)
    email: str  # the email key
    detail: str = ""
    issue: str = ""

    @property
    def when(self) -> datetime:
        """`at` as an aware datetime."""
        return datetime.fromisoformat(self.at)


def history_path(inbox_dir: Path) -> Path:
    """inbox/soft_bounces.json."""
    return inbox_dir / SOFT_BOUNCES


def read_history(inbox_dir: Path) -> dict[str, SoftBounce]:
    """Every soft bounce kept, by id; {} before the first. A damaged file is an error, not a reset."""
    path = history_path(inbox_dir)
    try:
        raw = json.loads(path.read_bytes())
        records = raw["soft_bounces"]
        found = [SoftBounce(**{k: str(v) for k, v in r.items() if k in SoftBounce.__dataclass_fields__})
                 for r in records]
        for record in found:
            record.when  # noqa: B018 - checks the date now, not in the middle of a count
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SubscriberError(f"{shown(path)}: not a soft-bounce history ({type(exc).__name__}: {exc})",
                              hint="restore it from a backup, or delete it to start counting again") from None
    return {record.id: record for record in found}


def save_history(inbox_dir: Path, records: Iterable[SoftBounce], now: datetime) -> None:
    """Write the history atomically, without entries older than a year."""
    kept = sorted((r for r in records if now - r.when <= KEEP), key=lambda r: (r.at, r.id))
    body = {"soft_bounces": [{k: v for k, v in asdict(r).items() if v} for r in kept]}
    atomic_write_text(history_path(inbox_dir), json.dumps(body, indent=1, ensure_ascii=False) + "\n")


def over_threshold(records: Iterable[SoftBounce], email: str, at: datetime, count: int,
                   days: int) -> list[SoftBounce]:
    """The soft bounces of `email` in the `days` up to `at`, when there are at least `count` (else [])."""
    since = at - timedelta(days=days)
    window = [r for r in records if r.email == email and since <= r.when <= at]
    return sorted(window, key=lambda r: r.at) if len(window) >= count else []
