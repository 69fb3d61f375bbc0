"""`newsletter subscribers bounces`: read the return mailbox, recognise, record, apply, then move.

The order is what makes a crash harmless:

1. read every unprocessed message (BODY.PEEK: unread state untouched) and classify it;
2. attribute each to a subscriber: the VERP token first (it names the recipient and the issue),
   then the Message-ID the report quotes (looked up in the send ledgers), then the addresses
   the report itself names;
3. write the soft-bounce history, then append the events to the inbox (source "mailbox"),
   each with an id made from the message and the address, so a message read twice adds nothing;
4. fold the inbox into the list (newsletter.subscribers.apply: the list lock, the atomic write,
   never a reactivation, never a deleted row);
5. only then move (or flag) the recognised messages.

A kill between 4 and 5 leaves the messages in place: the next run reads them again, finds
their events already in the inbox and the list already changed, and only moves them. A dry run
opens the folder read-only and writes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from newsletter.config import Settings
from newsletter.errors import ConfigError, MailboxError
from newsletter.files import locked, make_folders
from newsletter.mailbox.classify import Failure, Finding, Kind, classify
from newsletter.mailbox.imap import open_mailbox
from newsletter.mailbox.sends import Sends, load_sends
from newsletter.mailbox.soft import SoftBounce, over_threshold, read_history, save_history
from newsletter.subscribers.apply import ApplyReport, apply_inbox
from newsletter.subscribers.changes import find_rows
from newsletter.subscribers.inbox import Event, EventType, Inbox
from newsletter.subscribers.schema import STATUS_RANK, email_key

SOURCE = "mailbox"
LOCK = ".mailbox.lock"
_STATUS = {Kind.COMPLAINT: "complained", Kind.UNSUBSCRIBE: "unsubscribed", Kind.BOUNCE: "bounced"}
_EVENT = {"complained": EventType.COMPLAINED, "unsubscribed": EventType.UNSUBSCRIBED, "bounced": EventType.BOUNCED}


@dataclass
class Seen:
    """One recognised message, whom it is about and what it did (or, on a dry run, would do)."""

    summary: str  # the message's date and subject
    kind: Kind
    email: str
    outcome: str  # "bounced (was active)", "soft bounce 1 of 3 in 15 days", "already bounced", "not on the list"
    issue: str = ""
    changed: bool = False


@dataclass
class BouncesReport:
    """What one run of `subscribers bounces` found and did."""

    read: int = 0  # unprocessed messages read
    seen: list[Seen] = field(default_factory=list)
    unattributed: list[tuple[str, str]] = field(default_factory=list)  # (summary, why): left in place
    left_alone: int = 0  # auto-replies, letters, anything else
    moved: int = 0  # messages moved to processed_folder (or flagged)
    applied: ApplyReport | None = None  # the inbox folded into the list (None on a dry run)
    dry_run: bool = False
    processed_folder: str = ""  # where recognised messages went ("": flagged in place)

    @property
    def changes(self) -> list[Seen]:
        """The messages that changed someone's status."""
        return [s for s in self.seen if s.changed]


@dataclass
class _Plan:
    events: list[Event] = field(default_factory=list)
    soft: dict[str, SoftBounce] = field(default_factory=dict)  # the whole history, new entries included
    soft_added: bool = False
    done: list[bytes] = field(default_factory=list)  # uids of the messages to move


def unsubscribe_address(settings: Settings) -> str:
    """[delivery] unsubscribe_mailto as a bare lower-case address ("" when unset)."""
    value = settings.delivery.unsubscribe_mailto.strip()
    return value.removeprefix("mailto:").partition("?")[0].strip().lower()


def read_bounces(settings: Settings, password: str, *, list_path: Path | None = None,
                 secrets: Sequence[str] = (), dry_run: bool = False) -> BouncesReport:
    """Read the return mailbox and apply what it says to the list (see the module docstring)."""
    section = settings.mailbox
    if not section.host:
        raise ConfigError([f"{settings.config_path}: [mailbox] host is not set: there is no return mailbox to read"],
                          hint="add a [mailbox] section (host, username; the password in $MAILBOX_PASSWORD)")
    if not section.username:
        raise ConfigError([f"{settings.config_path}: [mailbox] username is not set"])
    if not password:
        raise MailboxError(f"no mailbox password: the variable {section.password_env} is not set",
                           hint=f"export {section.password_env}=... (the [mailbox] password_env variable)")
    path = list_path or settings.subscribers_path
    report = BouncesReport(dry_run=dry_run, processed_folder=section.processed_folder)
    ca_file = settings.path(section.ca_file) if section.ca_file else None
    # Connect first: a refused login or a missing folder stops the run before anything is touched.
    with open_mailbox(section, password, ca_file=ca_file, readonly=dry_run) as box, \
            _run_lock(settings.inbox_dir, dry_run):
        fetched = list(box.unprocessed())
        report.read = len(fetched)
        address = unsubscribe_address(settings)
        findings = [(f.uid, classify(f.raw, address)) for f in fetched]
        plan = _plan(settings, path, secrets, findings, report)
        if dry_run:
            return report
        if plan.soft_added:
            save_history(settings.inbox_dir, plan.soft.values(), datetime.now(UTC))
        inbox = Inbox(settings.inbox_dir)
        known = inbox.ids()
        inbox.append([e for e in plan.events if e.id not in known])
        inbox.close()
        report.applied = apply_inbox(path, settings.inbox_dir, settings.root, secrets)
        box.mark_processed(plan.done)
        report.moved = len(plan.done)
    return report


def _run_lock(inbox_dir: Path, dry_run: bool) -> AbstractContextManager[None]:
    """One run at a time: two would count the same soft bounce in two histories."""
    if dry_run:
        return nullcontext()
    make_folders(inbox_dir)
    busy = MailboxError("another `subscribers bounces` is still reading the mailbox")
    return locked(inbox_dir / LOCK, timeout=10, busy=busy)


def _plan(settings: Settings, path: Path, secrets: Sequence[str], findings: list[tuple[bytes, Finding]],
          report: BouncesReport) -> _Plan:
    """Attribute each finding, decide its events and say what each does to the list."""
    plan = _Plan(soft=read_history(settings.inbox_dir))
    recognised = [(uid, f) for uid, f in findings if f.kind is not Kind.OTHER]
    report.left_alone = len(findings) - len(recognised)
    if not recognised:
        return plan
    sends = load_sends(settings)
    who = [(uid, f, _attribute(settings, secrets, sends, f)) for uid, f in recognised]
    wanted = {key for _, _, people in who for key, _, _ in people}
    rows = find_rows(path, wanted, must_exist=False).rows
    statuses = {key: sub.status for key, (_, _, sub) in rows.items()}
    for uid, finding, people in who:
        if not people:
            report.unattributed.append((finding.summary, "it names no recipient the list or the sends know"))
            continue
        for key, failure, issue in people:
            _decide(settings, plan, report, finding, key, failure, issue, statuses)
            if key in rows:
                report.seen[-1].email = rows[key][2].email  # as the list spells it
        plan.done.append(uid)
    return plan


def _attribute(settings: Settings, secrets: Sequence[str], sends: Sends,
               finding: Finding) -> list[tuple[str, Failure, str]]:
    """(email key, failure, issue) for each person the finding is about: VERP, then Message-ID, then the report."""
    failures = finding.failures
    worst = min(failures, key=lambda f: (not f.permanent, not f.status)) if failures else Failure("")
    return_path = settings.smtp.return_path
    if return_path and secrets and finding.kind is not Kind.UNSUBSCRIBE:
        for address in finding.delivered_to:
            found = sends.by_verp(address, return_path, secrets)
            if found:
                return [(email_key(found[1]), worst, found[0])]
    known = sends.by_message_id(finding.original_id) if finding.original_id and finding.kind is not Kind.UNSUBSCRIBE \
        else None
    if known:
        return [(email_key(known[1]), worst, known[0])]
    people: dict[str, tuple[str, Failure, str]] = {}
    for failure in failures:
        if failure.address:
            key = email_key(failure.address)
            people.setdefault(key, (key, failure, ""))
    return list(people.values())


def _decide(settings: Settings, plan: _Plan, report: BouncesReport, finding: Finding, key: str,
            failure: Failure, issue: str, statuses: dict[str, str]) -> None:
    """The event of one person in one message, and what it does to their row."""
    seen = Seen(finding.summary, finding.kind, key, "", issue)
    report.seen.append(seen)
    current = statuses.get(key)
    if current is None:
        seen.outcome = "not on the list"
        return
    event_id = f"mailbox-{finding.fingerprint}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    detail = " ".join(part for part in (failure.status, failure.diagnostic) if part)
    if finding.kind is Kind.BOUNCE and not failure.permanent:
        detail = _soft(settings, plan, finding, key, event_id, detail, issue, seen)
        if not detail:
            return
    status = _STATUS[finding.kind]
    plan.events.append(Event(event_id, datetime.now(UTC).isoformat(timespec="seconds"), _EVENT[status], SOURCE,
                             email=key, detail=detail or ("permanent failure" if status == "bounced" else ""),
                             issue=issue))
    if STATUS_RANK[current] >= STATUS_RANK[status]:
        seen.outcome = seen.outcome or f"already {current}"
        return
    seen.outcome = f"{status} (was {current})" + (f": {seen.outcome}" if seen.outcome else "")
    seen.changed = True
    statuses[key] = status


def _soft(settings: Settings, plan: _Plan, finding: Finding, key: str, event_id: str, detail: str, issue: str,
          seen: Seen) -> str:
    """Count a temporary failure; the detail of a bounce when it reaches the threshold, else ""."""
    at = finding.date.astimezone(UTC) if finding.date else datetime.now(UTC)
    if event_id not in plan.soft:
        plan.soft[event_id] = SoftBounce(event_id, at.isoformat(timespec="seconds"), key, detail, issue)
        plan.soft_added = True
    count, days = settings.mailbox.soft_bounces, settings.mailbox.soft_bounce_days
    window = over_threshold(plan.soft.values(), key, plan.soft[event_id].when, count, days)
    if not window:
        so_far = len([r for r in plan.soft.values() if r.email == key
                      and 0 <= (at - r.when).total_seconds() <= days * 86400])
        seen.outcome = f"soft bounce {so_far} of {count} in {days} days"
        return ""
    seen.outcome = f"{len(window)} soft bounces in {days} days"
    return f"{len(window)} soft bounces in {days} days; last: {detail or 'temporary failure'}"
