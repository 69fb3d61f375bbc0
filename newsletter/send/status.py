"""`newsletter status`: what the ledger says about one issue, against today's subscriber list.

Only the real ledger (sends/<slug>.jsonl) counts as delivered; an outbox rehearsal is shown
apart, as files written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Settings
from newsletter.issues import find_issue
from newsletter.models import Issue
from newsletter.providers.base import State
from newsletter.providers.outbox import outbox_folder
from newsletter.send.ledger import Run, read_ledger, rehearsal_ledger_path
from newsletter.subscribers.store import iter_active


@dataclass
class SendStatus:
    """What the ledger says about one issue, against today's subscriber list."""

    issue: Issue
    ledger: Path
    counts: dict[State, int]  # every state, in doubt and unsent included
    runs: list[tuple[Run, int]]  # each run and how many it sent
    failed: dict[str, str]
    in_doubt: list[str]
    active: int | None = None  # active subscribers now (None: no subscriber list here)
    not_yet: int | None = None  # of those, how many have no sent/failed/pending record
    outbox: Path | None = None  # the outbox folder of a rehearsal (None: never rehearsed)
    rehearsed: int = 0  # messages the rehearsal wrote there (delivered to nobody)


def send_status(settings: Settings, ref: str, subscribers: Path | None = None) -> SendStatus:
    """Count sent / failed / in doubt / not yet sent for an issue, and list its runs."""
    issue = find_issue(settings.issues_dir, ref)
    path = settings.ledger_path(issue.slug)
    state = read_ledger(path)
    counts = {s: state.counts()[s] for s in State}
    per_run = Counter(e.run for e in state.entries.values() if e.state == State.SENT)
    status = SendStatus(issue, path, counts, [(r, per_run.get(r.run, 0)) for r in state.runs.values()],
                        {e: x.detail for e, x in state.entries.items() if x.state == State.FAILED},
                        state.in_doubt())
    folder = outbox_folder(settings, issue.slug)
    if rehearsal_ledger_path(folder).exists():
        status.outbox = folder
        status.rehearsed = read_ledger(rehearsal_ledger_path(folder), rehearsal=True).counts()[State.SENT]
    list_path = subscribers or settings.subscribers_path
    if subscribers is not None or list_path.exists():
        status.active = status.not_yet = 0
        for sub in iter_active(list_path):
            status.active += 1
            status.not_yet += state.state_of(sub.email) in (None, State.UNSENT)
    return status
