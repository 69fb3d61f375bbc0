"""What SendGrid said about each issue's messages: one append-only JSON-lines file per issue.

The reader service receives SendGrid's Event Webhook (newsletter.web.sendgrid_events) and keeps
the delivery events here, beside the inbox, for the per-issue report: inbox/sendgrid/<slug>.jsonl,
or inbox/sendgrid/_unassigned.jsonl for an event that names no issue of ours (a slug never starts
with "_"). An event names its issue by the `newsletter_issue` custom arg every SendGrid request of
a send carries (providers.sendgrid.body.ISSUE_ARG); its `sg_message_id` also starts with the
request's X-Message-Id, which the send's ledger keeps, for a report that wants the batch.

Records (built only here), one per SendGrid event:
    {"sg_event_id", "event", "email", "timestamp" (the event's, unix seconds), "received" (ours),
     "sg_message_id"?, "reason"?, "type"?, "status"?, "bounce_classification"?, "sg_machine_open"?,
     "url"?, "asm_group_id"?}
Each request's records are written with one os.write per file and fsynced before the webhook
answers. A crash can tear only a last line (that request never got its 200, so SendGrid sends
it again): the next append starts on a new line and readers skip a line that is not a record.

Deduplication: SendGrid delivers at least once and retries a failed post for up to 24 hours, so
the sg_event_ids received in the last DEDUPE_SECONDS are remembered (loaded back from the files
after a restart), and a record already on disk is not written again.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from newsletter.files import fsync_dir, make_folders

FOLDER = "sendgrid"  # under the inbox folder
UNASSIGNED = "_unassigned"
SUFFIX = ".jsonl"
DEDUPE_SECONDS = 3 * 24 * 3600  # SendGrid stops retrying after 24 hours; three days leave room
PRUNE_EVERY = 3600.0
MAX_TEXT = 1000  # a reason or URL longer than this is cut: the report needs the start of it
KEPT = frozenset({"processed", "delivered", "deferred", "bounce", "dropped", "open", "click", "spamreport",
                  "unsubscribe", "group_unsubscribe", "group_resubscribe"})
_TEXT_FIELDS = ("sg_message_id", "reason", "type", "status", "bounce_classification", "url")


def one_line_text(value: object, limit: int = MAX_TEXT) -> str:
    """A text field from a SendGrid event as one printable line (not text: "")."""
    if not isinstance(value, str):
        return ""
    text = "".join(c if c.isprintable() else " " for c in value[: limit * 2])
    return " ".join(text.split())[:limit]


def delivery_record(event: Mapping[str, Any], email: str, received: float) -> dict[str, Any]:
    """The record kept for one SendGrid event (its type in KEPT, its sg_event_id checked by the caller)."""
    stamp = event.get("timestamp")
    record: dict[str, Any] = {
        "sg_event_id": event["sg_event_id"], "event": event["event"], "email": email,
        "timestamp": int(stamp) if isinstance(stamp, int | float) and not isinstance(stamp, bool) else 0,
        "received": int(received),
    }
    for name in _TEXT_FIELDS:
        text = one_line_text(event.get(name))
        if text:
            record[name] = text
    if event.get("sg_machine_open") is True:
        record["sg_machine_open"] = True
    group = event.get("asm_group_id")
    if isinstance(group, int) and not isinstance(group, bool):
        record["asm_group_id"] = group
    return record


def store_name(issue: str) -> str:
    """The file name for an issue's events ("" -> the unassigned file); a bug guard against paths."""
    name = issue or UNASSIGNED
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise ValueError(f"not an issue slug: {issue!r}")
    return name + SUFFIX


class DeliveryEvents:
    """The per-issue files under one inbox folder, and the memory of which events are already in.

    One object serves one process: hold `lock` around "which are new?" and the writes that
    follow, so two requests carrying the same event never both write it.
    """

    def __init__(self, inbox_folder: Path) -> None:
        self.folder = inbox_folder / FOLDER
        self.lock = threading.Lock()
        self._seen: dict[str, int] | None = None  # sg_event_id -> when we received it
        self._forwarded: set[str] | None = None  # sg_event_ids already in the inbox (see forwarded)
        self._pruned = 0.0

    # Deduplication ---------------------------------------------------------------------------------

    def is_new(self, sg_event_id: str, now: float) -> bool:
        """True unless this event is already in the store (received within DEDUPE_SECONDS)."""
        return sg_event_id not in self._memory(now)

    def forwarded(self, load: Iterator[str]) -> set[str]:
        """The sg_event_ids already in the inbox: loaded once from `load`, then kept up to date by the caller."""
        if self._forwarded is None:
            self._forwarded = set(load)
        return self._forwarded

    def _memory(self, now: float) -> dict[str, int]:
        if self._seen is None:
            self._seen = dict(self._load_recent(now))
            self._pruned = now
        elif now - self._pruned > PRUNE_EVERY:
            oldest = now - DEDUPE_SECONDS
            self._seen = {k: v for k, v in self._seen.items() if v >= oldest}
            self._pruned = now
        return self._seen

    def _load_recent(self, now: float) -> Iterator[tuple[str, int]]:
        oldest = now - DEDUPE_SECONDS
        try:
            paths = [p for p in self.folder.iterdir() if p.suffix == SUFFIX and p.stat().st_mtime >= oldest]
        except FileNotFoundError:
            return
        for path in paths:
            for record in read_records(path):
                if record.get("received", 0) >= oldest:
                    yield record["sg_event_id"], record["received"]

    # Writing ---------------------------------------------------------------------------------------

    def append(self, by_issue: Mapping[str, Sequence[dict[str, Any]]], now: float) -> None:
        """Write each issue's records (from delivery_record) and return once all are on disk."""
        memory = self._memory(now)
        for issue, records in by_issue.items():
            if records:
                self._write(self.folder / store_name(issue), records)
        for records in by_issue.values():
            memory.update((r["sg_event_id"], r["received"]) for r in records)

    def _write(self, path: Path, records: Sequence[dict[str, Any]]) -> None:
        data = b"".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
                        for r in records)
        make_folders(self.folder)
        made = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if not made and not _ends_with_newline(fd):
                data = b"\n" + data  # a line a crash tore stays a line of its own, skipped by readers
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if made:
            fsync_dir(self.folder)

    # Reading ---------------------------------------------------------------------------------------

    def read(self, issue: str) -> list[dict[str, Any]]:
        """Every record kept for an issue ("" for unassigned events), each sg_event_id once."""
        seen: set[str] = set()
        out = []
        for record in read_records(self.folder / store_name(issue)):
            if record["sg_event_id"] not in seen:
                seen.add(record["sg_event_id"])
                out.append(record)
        return out

    def issues(self) -> list[str]:
        """The slugs that have events ("" for the unassigned file)."""
        if not self.folder.is_dir():
            return []
        names = sorted(p.name.removesuffix(SUFFIX) for p in self.folder.glob("*" + SUFFIX))
        return ["" if n == UNASSIGNED else n for n in names]


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The whole records of one file, skipping a line a crash tore (or anything else not a record)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; a generator must own it
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            if not line.endswith(b"\n"):
                return
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if (isinstance(record, dict) and isinstance(record.get("sg_event_id"), str)
                    and isinstance(record.get("received"), int)):
                yield record


def _ends_with_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size == 0 or os.pread(fd, 1, size - 1) == b"\n"
