"""The send ledger: sends/<slug>.jsonl, the per-recipient record of what went to a provider.

Append-only JSON lines. What is handed over is recorded *pending* (flushed and fsynced) just
before the provider sees it (each message for SMTP and the outbox, each request for SendGrid),
then *sent* (with the provider's message id), *failed* (with the reason) or *unsent* (never
handed over after all) as the provider reports. The latest record for an address is its state
(providers.base.State); one left *pending* is in doubt (State.IN_DOUBT): the provider may have
accepted it, so it is never resent without --resend-pending. Every record is built here. A
crash can tear only the last line; it is cut off (under the lock) before the next append and
ignored when reading.

An outbox run is a rehearsal, not a send: it keeps a ledger of its own, outbox/<slug>/.ledger.jsonl,
beside the files it wrote (delete the folder and the rehearsal starts over), and the real ledger
ignores the outbox runs older versions recorded in it, so a rehearsal never counts as delivered.

Records: {"event": "run", "run", "at", "provider", "issue", "send_at"?, "batch_id"?}
         {"event": "pending" | "sent" | "failed" | "unsent", "run", "batch", "at", "to": [...],
          "detail"?}
         {"event": "cancelled", "at", "batch_id"}  (a scheduled send cancelled: back to not sent)
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from newsletter import files
from newsletter.errors import SendError
from newsletter.files import fsync_dir
from newsletter.models import now_iso
from newsletter.providers.base import State
from newsletter.subscribers.schema import email_key

RECIPIENT_EVENTS = tuple(state.value for state in State)  # one record per state: the state is the event
EVENTS = ("run", *RECIPIENT_EVENTS, "cancelled")
REHEARSAL = "outbox"  # the provider whose runs deliver nothing
REHEARSAL_LEDGER = ".ledger.jsonl"
_sync = getattr(os, "fdatasync", os.fsync)  # an append needs the data and the size, not the times


@dataclass
class Entry:
    """One address's latest state."""

    state: State
    at: str
    run: str
    detail: str = ""


@dataclass
class Run:
    """One `newsletter send` that handed something over (test sends are not recorded)."""

    run: str
    at: str
    provider: str
    send_at: int | None = None
    batch_id: str | None = None
    cancelled: bool = False


@dataclass
class LedgerState:
    """Everything the ledger says about one issue."""

    entries: dict[str, Entry] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    skip: set[str] | None = field(default=None, repr=False)  # outbox runs in a real ledger (None: keep all)

    def emails(self, state: State) -> list[str]:
        """Addresses whose latest state is `state`, in the order they were recorded."""
        return [email for email, e in self.entries.items() if e.state == state]

    def in_doubt(self) -> list[str]:
        """Addresses handed over with no answer recorded: they may have it; never resent silently."""
        return self.emails(State.IN_DOUBT)

    def state_of(self, email: str) -> State | None:
        """An address's latest state (under the "same address" key); None if never recorded."""
        return self.state_of_key(email_key(email.strip()))

    def state_of_key(self, key: str) -> State | None:
        """The latest state recorded under this same-address key; None if never recorded."""
        entry = self.entries.get(key)
        return entry.state if entry else None

    def counts(self) -> Counter[State]:
        """How many addresses are in each state."""
        return Counter(e.state for e in self.entries.values())

    def scheduled(self) -> list[Run]:
        """Runs scheduled with SendGrid (send_at and batch_id) and not cancelled."""
        return [r for r in self.runs.values() if r.batch_id and r.send_at and not r.cancelled]


def rehearsal_ledger_path(folder: Path) -> Path:
    """outbox/<slug>/.ledger.jsonl: an outbox run's own record, in the folder it writes."""
    return folder / REHEARSAL_LEDGER


def read_ledger(path: Path, *, rehearsal: bool = False) -> LedgerState:
    """Replay the ledger into each address's latest state; a missing file is an empty ledger.

    A real ledger (rehearsal=False) skips the records of outbox runs: they delivered nothing.
    """
    state = LedgerState(skip=None if rehearsal else set())
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return state
    lines = data.split(b"\n")
    torn = lines.pop()  # the text after the last newline: empty, or a write a crash cut short
    for number, line in enumerate(lines, start=1):
        if line.strip():
            _apply(state, _parse(path, number, line))
    if torn.strip():
        with contextlib.suppress(SendError):
            _apply(state, _parse(path, len(lines) + 1, torn))
    return state


def _parse(path: Path, number: int, line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[... nested too deep
        raise SendError(f"{path}:{number}: not a ledger record (not JSON)",
                        hint="the ledger is written by `newsletter send`; restore it from a backup") from None
    if not isinstance(record, dict) or record.get("event") not in EVENTS:
        raise SendError(f"{path}:{number}: not a ledger record (no known 'event')")
    if record["event"] in RECIPIENT_EVENTS and not isinstance(record.get("to"), list):
        raise SendError(f"{path}:{number}: a {record['event']} record without its 'to' list")
    send_at = record.get("send_at")
    if send_at is not None and (not isinstance(send_at, int) or isinstance(send_at, bool)):
        raise SendError(f"{path}:{number}: a {record['event']} record whose 'send_at' is not a time")
    return record


def _apply(state: LedgerState, record: dict[str, Any]) -> None:
    event, at, run = record["event"], str(record.get("at", "")), str(record.get("run", ""))
    if state.skip is not None and (run in state.skip or (event == "run" and record.get("provider") == REHEARSAL)):
        state.skip.add(run)
        return
    if event == "run":
        state.runs[run] = Run(run, at, str(record.get("provider", "")), record.get("send_at"),
                              record.get("batch_id"))
    elif event == "cancelled":
        runs = {r.run for r in state.runs.values() if r.batch_id == record.get("batch_id")}
        for r in runs:
            state.runs[r].cancelled = True
        for email, entry in state.entries.items():
            if entry.run in runs and entry.state in (State.SENT, State.IN_DOUBT):
                state.entries[email] = Entry(State.UNSENT, at, entry.run, "scheduled send cancelled")
    else:
        detail, recorded = str(record.get("detail", "")), State(event)
        for email in record["to"]:  # keyed again: older ledgers keyed some spellings differently
            state.entries[email_key(str(email).strip())] = Entry(recorded, at, run, detail)


def locked(path: Path) -> contextlib.AbstractContextManager[None]:
    """Hold sends/<slug>.jsonl.lock: two sends of one issue can never run at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    busy = SendError(f"{path}: another send of this issue is running (lock {path.name}.lock is held)",
                     hint="wait for it to finish; `newsletter status` shows its progress")
    return files.locked(Path(str(path) + ".lock"), timeout=0, busy=busy)


class LedgerWriter:
    """Appends records; durable ones are fsynced before append() returns. Use under locked()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        self._fh: IO[bytes] = open(path, "ab")  # noqa: SIM115 - closed by close()
        _cut_torn_tail(self._fh)
        if created:
            fsync_dir(path.parent)

    def append(self, record: dict[str, Any], *, durable: bool = True) -> None:
        """Write one record as a line and flush it; fsync it too when durable."""
        self._fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        self._fh.flush()
        if durable:
            _sync(self._fh.fileno())

    def run(self, run: str, provider: str, issue: str, *, send_at: int | None = None,
            batch_id: str | None = None) -> None:
        """Append the record that opens a run (with its SendGrid schedule, if it has one)."""
        record: dict[str, Any] = {"event": "run", "run": run, "at": now_iso(), "provider": provider, "issue": issue}
        if send_at is not None:
            record.update(send_at=send_at, batch_id=batch_id)
        self.append(record)

    def recipients(self, state: State, run: str, batch: int, emails: Iterable[str], detail: str = "",
                   *, durable: bool = True) -> None:
        """Append a record of some addresses' new state (in doubt, sent, failed, unsent)."""
        record: dict[str, Any] = {"event": state.value, "run": run, "batch": batch, "at": now_iso(),
                                  "to": list(emails)}
        if detail:
            record["detail"] = detail
        self.append(record, durable=durable)

    def cancelled(self, batch_id: str) -> None:
        """Append that a scheduled batch was cancelled: its run's recipients are back to not sent."""
        self.append({"event": "cancelled", "at": now_iso(), "batch_id": batch_id})

    def sync(self) -> None:
        """fsync everything appended so far."""
        self._fh.flush()
        _sync(self._fh.fileno())

    def close(self) -> None:
        """Sync and close the file."""
        if not self._fh.closed:
            self.sync()
            self._fh.close()


def _cut_torn_tail(fh: IO[bytes]) -> None:
    """Make the file end with a newline after a crash: end a whole record, cut a partial one.

    read_ledger counts the same text the same way (a last line that parses is a record).
    """
    size = fh.seek(0, os.SEEK_END)
    if size == 0:
        return
    with open(fh.name, "rb") as reader:
        pos = size
        while pos > 0:
            start = max(0, pos - 65536)
            reader.seek(start)
            chunk = reader.read(pos - start)
            if pos == size and chunk.endswith(b"\n"):
                return
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                break
            pos = start
        cut = start + newline + 1 if pos > 0 else 0
        reader.seek(cut)
        tail = reader.read()
    try:
        json.loads(tail)
    except (ValueError, UnicodeDecodeError, RecursionError):
        os.truncate(fh.name, cut)
    else:
        fh.write(b"\n")
        fh.flush()
