"""Before a send picks its recipients: what readers did through the reader service reaches the list.

A send honours every unsubscribe received before it starts. So it first folds the local inbox
into the list (newsletter.subscribers.apply), and with [readers] remote = true it first fetches
the service's new events (newsletter.subscribers.pull). A service that cannot be reached stops
the send with SendError; --skip-pull lets the writer go on knowingly.

--test (a few typed addresses) and --dry-run (which changes nothing) neither pull nor apply: a
dry run says how many events are waiting instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Settings
from newsletter.errors import SendError
from newsletter.subscribers.apply import ApplyReport, apply_inbox, pending_events
from newsletter.subscribers.pull import PullError, PullReport, pull_events
from newsletter.tokens import parse_secrets

SKIP_PULL = "--skip-pull"


@dataclass
class InboxCatchUp:
    """What the send did to bring the list up to date (None: not done)."""

    pulled: PullReport | None = None
    applied: ApplyReport | None = None
    skipped_pull: bool = False


def catch_up(settings: Settings, list_path: Path, secret: str, token: str, *, skip_pull: bool = False) -> InboxCatchUp:
    """Pull (remote service) and apply the inbox to the list this send reads."""
    done = InboxCatchUp(skipped_pull=skip_pull and settings.readers.remote)
    if settings.readers.remote and not skip_pull:
        try:
            done.pulled = pull_events(settings.readers_url, settings.inbox_dir, token)
        except PullError as exc:
            raise SendError(f"{exc.message}; nothing was sent, so that nobody who unsubscribed there gets it",
                            hint=f"{exc.hint + '; or ' if exc.hint else ''}run again with {SKIP_PULL} to send "
                                 "without the service's latest events (they reach the list at the next pull)"
                            ) from None
    done.applied = apply_inbox(list_path, settings.inbox_dir, settings.root, parse_secrets(secret))
    return done


def waiting_note(settings: Settings, list_path: Path) -> str | None:
    """For a dry run: what the real send will fold in first, or None when nothing."""
    waiting = pending_events(list_path, settings.inbox_dir, settings.root)
    local = f"{waiting:,} reader event{'s' if waiting != 1 else ''} in {settings.readers.inbox}/ not applied yet"
    if settings.readers.remote:
        more = f"; {local}" if waiting else ""
        return f"the send first fetches the reader service's new events ({settings.readers_url}){more}"
    if waiting:
        return f"{local}: the send applies them first (or run `newsletter subscribers apply`)"
    return None
