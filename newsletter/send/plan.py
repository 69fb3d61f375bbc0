"""Sending an issue: the only module that combines render, subscribers, a provider and the ledger.

prepare_send() renders the issue once, runs the preflight checks and works out who gets it
(active subscribers, minus those the ledger says already have it); run_send() hands them to
the provider batch by batch, writing the ledger as it goes (newsletter.send.ledger explains the
records). Nothing is printed here: the CLI presents the plan, the progress and the report.

An outbox run is a rehearsal: it writes the files, keeps its own ledger in the outbox folder (so
it stays resumable), never touches the real ledger or the issue's status, and never stands in the
way of a real send.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.config import Settings
from newsletter.errors import SendError
from newsletter.issues import find_issue, set_status
from newsletter.models import Issue, Recipient, RenderedEmail, SendReport
from newsletter.providers import (
    Credentials,
    Letter,
    Outgoing,
    Provider,
    ProviderName,
    RetryPolicy,
    State,
    batch_size,
    make_provider,
    missing_credentials,
    settings_problems,
)
from newsletter.providers.outbox import outbox_folder
from newsletter.render.checks import CheckReport, run_checks
from newsletter.render.compose import render_issue
from newsletter.render.message import NO_SECRET_TOKEN, has_unsubscribe, needs_secret
from newsletter.send.deliver import Recorder, SendEvents, deliver_all
from newsletter.send.ledger import LedgerState, LedgerWriter, locked, read_ledger, rehearsal_ledger_path
from newsletter.send.quota import within_daily_cap
from newsletter.send.readers import InboxCatchUp, catch_up, waiting_note
from newsletter.send.roster import Batches, Roster
from newsletter.send.schedule import check_schedule
from newsletter.subscribers.schema import email_key
from newsletter.subscribers.store import active_people, iter_active
from newsletter.tokens import parse_secrets

TEST_PREFIX = "[TEST] "


@dataclass(frozen=True)
class SendOptions:
    """What the writer asked for on the command line."""

    subscribers: Path | None = None
    tag: str | None = None
    test: tuple[str, ...] = ()
    dry_run: bool = False
    limit: int | None = None
    schedule: str | None = None
    retry_failed: bool = False
    resend_pending: bool = False
    skip_pull: bool = False  # send without fetching the remote reader service's events first


@dataclass
class SendPlan:
    """Who gets the issue in this run, and what the ledger says about everyone else."""

    settings: Settings
    issue: Issue
    rendered: RenderedEmail
    checks: CheckReport
    options: SendOptions
    recipients: Roster = field(default_factory=Roster)
    already_sent: int = 0
    in_doubt: list[str] = field(default_factory=list)  # pending from an earlier run; left alone
    failed_before: list[str] = field(default_factory=list)  # failed earlier; left alone
    left_for_later: int = 0  # cut by --limit, or never sent when --retry-failed narrows the run
    left_for_tomorrow: int = 0  # cut by [smtp] max_per_day (send.quota)
    send_at: dt.datetime | None = None
    inbox: InboxCatchUp = field(default_factory=InboxCatchUp)  # what readers did, folded in first

    @property
    def provider(self) -> str:
        return self.settings.delivery.provider

    @property
    def batch_size(self) -> int:
        """Recipients per batch: the chosen provider's."""
        return batch_size(self.settings)

    @property
    def rehearsal(self) -> bool:
        """An outbox run: it writes files and delivers nothing."""
        return self.provider == ProviderName.OUTBOX

    @property
    def outbox(self) -> Path:
        """The folder an outbox run writes to (outbox/<slug>/, or its test/ for --test)."""
        return outbox_folder(self.settings, self.issue.slug, test=bool(self.options.test))

    @property
    def ledger(self) -> Path:
        """sends/<slug>.jsonl; for a rehearsal, the outbox folder's own .ledger.jsonl."""
        if self.rehearsal:
            return rehearsal_ledger_path(self.outbox)
        return self.settings.ledger_path(self.issue.slug)

    def batches(self) -> Batches:
        """The recipients cut into the provider's batch size (each unpacked as the send reaches it)."""
        return Batches(self.recipients, self.batch_size)


def refuse_unsafe(settings: Settings, credentials: Credentials) -> None:
    """Refuse before anything goes out: no unsubscribe method, no token secret, no provider key."""
    if not has_unsubscribe(settings):
        raise SendError(f"{settings.config_path}: no unsubscribe method configured: refusing to send",
                        hint="set [delivery] unsubscribe_mailto or unsubscribe_url, or [sendgrid] "
                             "unsubscribe_group_id with the sendgrid provider")
    # An outbox rehearsal of the reader service's links goes on without the secret, with a warning
    # and a token that is plainly not one (_unsigned_rehearsal): the quick start needs no environment.
    rehearsal = settings.delivery.provider == ProviderName.OUTBOX
    if needs_secret(settings) and not parse_secrets(credentials.unsubscribe_secret) and not (
            rehearsal and settings.readers_url):
        env = settings.delivery.unsubscribe_secret_env
        what = "[readers] url's unsubscribe links need" if settings.readers_url else \
            "[delivery] unsubscribe_url uses {token}, which needs"
        raise SendError(f"{env} is not set: {what} a secret; nothing was sent",
                        hint=f"export {env}=<a long random string> (keep it: old links depend on it)")
    problem = missing_credentials(settings, credentials)
    if problem is not None:
        raise problem


def prepare_send(settings: Settings, ref: str, options: SendOptions, credentials: Credentials,
                 now: dt.datetime | None = None) -> SendPlan:
    """Check, render once, run the preflight checks and select this run's recipients."""
    refuse_unsafe(settings, credentials)
    if options.test and (options.schedule or options.retry_failed or options.resend_pending):
        raise SendError("--test sends at once to the addresses given: it does not combine with --schedule, "
                        "--retry-failed or --resend-pending")
    send_at = check_schedule(settings, options.schedule, now) if options.schedule else None
    if options.limit is not None and options.limit < 1:
        raise SendError(f"--limit {options.limit}: must be at least 1")
    issue = find_issue(settings.issues_dir, ref)
    rendered = render_issue(issue, settings)
    plan = SendPlan(settings, issue, rendered, run_checks(issue, rendered, settings), options, send_at=send_at)
    problems = settings_problems(_letter(plan, credentials))
    if problems:
        raise SendError(problems[0])
    path = options.subscribers or settings.subscribers_path
    _unsigned_rehearsal(plan, credentials)
    if options.test:
        plan.recipients = _test_recipients(path, options.test)
    elif options.dry_run:
        note = waiting_note(settings, path)
        if note:
            plan.checks.add("warning", "inbox", note)
    else:
        plan.inbox = catch_up(settings, path, credentials.unsubscribe_secret, credentials.readers_token,
                              skip_pull=options.skip_pull)
    if not options.test:
        _select(plan, path, read_ledger(plan.ledger, rehearsal=plan.rehearsal))
        fit, plan.left_for_tomorrow = within_daily_cap(settings, len(plan.recipients), now)
        if plan.left_for_tomorrow:
            plan.recipients = plan.recipients[:fit]
    return plan


def _unsigned_rehearsal(plan: SendPlan, credentials: Credentials) -> None:
    """A rehearsal without the secret goes on (the quick start needs none), and says its links do not work."""
    if needs_secret(plan.settings) and not parse_secrets(credentials.unsubscribe_secret):
        env = plan.settings.delivery.unsubscribe_secret_env
        plan.checks.add("warning", "unsubscribe", f"{env} is not set: this rehearsal's unsubscribe links carry "
                        f"a placeholder token ({NO_SECRET_TOKEN}) that unsubscribes nobody; a real send needs it")


def _test_recipients(path: Path, addresses: Sequence[str]) -> Roster:
    """The --test addresses, with their names from the list when they are on it."""
    from newsletter.subscribers.store import normalize_email

    wanted = {email_key(a.strip()): normalize_email(a) for a in addresses}
    names = {email_key(s.email.strip()): s.name for s in iter_active(path)} if path.exists() else {}
    return Roster.of(Outgoing(n, Recipient(email, names.get(k, ""))) for n, (k, email) in enumerate(wanted.items(), 1))


def eligible(state: State | None, options: SendOptions, rehearsal: bool = False) -> bool:
    """Whether an address in this ledger state is sent to in this run.

    A rehearsal rewrites the file of one left in doubt: writing it again delivers nothing twice.
    """
    if state == State.SENT:
        return False
    if state == State.IN_DOUBT:
        return options.resend_pending or rehearsal
    if state == State.FAILED:
        return options.retry_failed
    return not options.retry_failed  # never sent (or unsent): --retry-failed retries only the failed


def _select(plan: SendPlan, path: Path, ledger: LedgerState) -> None:
    """Pack this run's recipients (the list reader refuses an address listed twice)."""
    chosen, options, rehearsal = Roster(), plan.options, plan.rehearsal
    for number, (email, name) in enumerate(active_people(path, options.tag), start=1):
        key = email_key(email.strip())  # once a person: the roster keeps it for the ledger's records
        state = ledger.state_of_key(key)
        if eligible(state, options, rehearsal):
            chosen.add(number, email, name, key)  # the unsubscribe link is made when the message is built
        elif state == State.SENT:
            plan.already_sent += 1
        elif state == State.IN_DOUBT:
            plan.in_doubt.append(email)
        elif state == State.FAILED:
            plan.failed_before.append(email)
        else:
            plan.left_for_later += 1
    limit = options.limit
    if limit is not None and len(chosen) > limit:
        plan.left_for_later += len(chosen) - limit
        chosen = chosen[:limit]
    plan.recipients = chosen


def _letter(plan: SendPlan, credentials: Credentials, batch_id: str | None = None) -> Letter:
    return Letter(plan.rendered, plan.settings, credentials.unsubscribe_secret,
                  subject_prefix=TEST_PREFIX if plan.options.test else "",
                  send_at=int(plan.send_at.timestamp()) if plan.send_at else None, batch_id=batch_id)


def run_send(plan: SendPlan, credentials: Credentials, events: SendEvents | None = None,
             policy: RetryPolicy | None = None) -> SendReport:
    """Hand the plan's recipients to the provider, recording every step in the ledger."""
    if plan.checks.errors:
        raise SendError(f"{len(plan.checks.errors)} preflight check(s) failed: {plan.checks.errors[0].message}",
                        hint=f"newsletter check {plan.issue.slug}")
    events = events or SendEvents()
    report = SendReport(plan.issue.slug, plan.provider, skipped=plan.already_sent, dry_run=plan.options.dry_run,
                        test=bool(plan.options.test), left_for_later=plan.left_for_later,
                        batches=len(plan.batches()), in_doubt=list(plan.in_doubt), rehearsal=plan.rehearsal,
                        failed_before=len(plan.failed_before), left_for_tomorrow=plan.left_for_tomorrow)
    if plan.options.dry_run:
        return report
    policy = policy or RetryPolicy()
    policy.on_wait = events.on_wait
    started = time.monotonic()
    provider = make_provider(plan.settings, credentials, policy, test_send=bool(plan.options.test))
    try:
        if plan.options.test:
            deliver_all(plan.batches(), provider, _letter(plan, credentials), Recorder(report), events.on_batch)
        else:
            with locked(plan.ledger):
                _send_recorded(plan, provider, credentials, report, events)
    finally:
        provider.close()
    report.elapsed = time.monotonic() - started
    return report


def _send_recorded(plan: SendPlan, provider: Provider, credentials: Credentials, report: SendReport,
                   events: SendEvents) -> None:
    fresh = read_ledger(plan.ledger, rehearsal=plan.rehearsal)  # another send may have run since planning
    if fresh.entries:
        plan.recipients = plan.recipients.keep(lambda key: eligible(fresh.state_of_key(key), plan.options,
                                                                    plan.rehearsal))
    report.batches = len(plan.batches())
    if plan.recipients:
        _hand_over(plan, provider, credentials, report, events)
    if plan.rehearsal:
        return
    if _complete(plan, report) and (report.sent or report.skipped) and plan.issue.status != "sent":
        set_status(plan.issue, "sent")
        report.marked_sent = True


def _hand_over(plan: SendPlan, provider: Provider, credentials: Credentials, report: SendReport,
               events: SendEvents) -> None:
    run = uuid.uuid4().hex[:12]
    send_at = batch_id = None
    if plan.send_at is not None:
        batch_id = provider.create_batch()  # check_schedule let only a provider that schedules (SendGrid) here
        report.scheduled_for = plan.send_at.isoformat(timespec="minutes")
        send_at = int(plan.send_at.timestamp())
    writer = LedgerWriter(plan.ledger)
    try:
        writer.run(run, plan.provider, plan.issue.slug, send_at=send_at, batch_id=batch_id)
        deliver_all(plan.batches(), provider, _letter(plan, credentials, batch_id), Recorder(report, writer, run),
                    events.on_batch)
    finally:
        writer.close()


def _complete(plan: SendPlan, report: SendReport) -> bool:
    """A full successful send: everyone selectable now has it, nothing failed or in doubt."""
    return not (report.stopped or report.failed or report.in_doubt or plan.failed_before
                or plan.left_for_later or plan.left_for_tomorrow or report.not_attempted)
