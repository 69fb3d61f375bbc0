"""How the sending commands present plans, progress and reports (plain text, pipe-friendly)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from newsletter.cli.common import echo, plural

if TYPE_CHECKING:
    from newsletter.models import SendReport
    from newsletter.send.deliver import BatchProgress, SendEvents
    from newsletter.send.plan import SendPlan
    from newsletter.send.schedule import CancelResult
    from newsletter.send.status import SendStatus
    from newsletter.send.suppressions import SyncResult

SHOWN = 20  # addresses listed before "... and N more"


def _rel(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return os.path.relpath(path)
    return str(path)


def _where(plan: SendPlan) -> str:
    s = plan.settings
    if plan.provider == "outbox":
        return f"outbox -> {_rel(plan.outbox)}/ (a rehearsal: nothing is delivered)"
    if plan.provider == "smtp":
        return f"smtp -> {s.smtp.host}:{s.smtp.port} ({s.smtp.security})"
    return f"sendgrid -> {s.sendgrid.host}"


def show_plan(plan: SendPlan) -> bool:
    """Print the summary and the preflight findings; False when a check failed."""
    echo(f"Issue:      {plan.issue.title} ({plan.issue.slug})")
    echo(f"Subject:    {'[TEST] ' if plan.options.test else ''}{plan.rendered.subject}")
    echo(f"From:       {plan.settings.sender.from_}")
    echo(f"Provider:   {_where(plan)}")
    n, batches = len(plan.recipients), len(plan.batches())
    who = ("test address", "test addresses") if plan.options.test else ("recipient", "recipients")
    echo(f"Recipients: {plural(n, *who)} now, in {plural(batches, 'batch', 'batches')}" if n
         else "Recipients: nobody left to send to")
    if plan.rehearsal and not plan.options.test:
        echo(f"Outbox:     {plan.already_sent:,} already written, {len(plan.failed_before):,} failed earlier, "
             f"{plan.left_for_later:,} left for later")
    elif not plan.options.test:
        echo(f"Ledger:     {plan.already_sent:,} already sent, {len(plan.in_doubt):,} in doubt, "
             f"{len(plan.failed_before):,} failed earlier, {plan.left_for_later:,} left for later")
    if plan.left_for_tomorrow:
        echo(f"Daily cap:  {plan.left_for_tomorrow:,} left for tomorrow ([smtp] max_per_day)")
    if plan.send_at:
        echo(f"Scheduled:  {plan.send_at.isoformat(timespec='minutes')} (SendGrid send_at)")
    for result in plan.checks.results:
        if result.level != "ok":
            echo(f"  {result.level:<8} {result.message}")
    e, w = len(plan.checks.errors), len(plan.checks.warnings)
    echo(f"Checks:     {plural(e, 'error')}, {plural(w, 'warning')}")
    return not plan.checks.errors


def show_dry_run(plan: SendPlan) -> None:
    """Every batch and every recipient that would be handed over."""
    for number, batch in enumerate(plan.batches(), start=1):
        echo(f"batch {number}: {plural(len(batch), 'recipient')}")
        for out in batch:
            echo(f"  {out.number:>6}  {out.recipient.email}")
    echo(f"Dry run: nothing sent; {plural(len(plan.recipients), 'message')} would be handed to {plan.provider}.")


def stdin_is_terminal() -> bool:
    """Whether a person can answer a question (tests replace this)."""
    return sys.stdin.isatty()


def confirm(plan: SendPlan, yes: bool) -> None:
    """Ask before sending; refuse without a terminal unless --yes was given."""
    from newsletter.errors import SendError

    if yes or not plan.recipients or plan.options.test:  # a test goes only to addresses typed just now
        return
    if not stdin_is_terminal():
        raise SendError("not a terminal, so nobody can confirm: refusing to send", hint="add --yes to send anyway")
    if plan.rehearsal:
        question = (f"Write {plural(len(plan.recipients), 'message')} to {_rel(plan.outbox)}/ "
                    "(a rehearsal: nothing is delivered)?")
    else:
        question = f"Send to {plural(len(plan.recipients), 'person', 'people')} now?"
    if not typer.confirm(question, default=False):
        echo("Nothing written." if plan.rehearsal else "Nothing sent.")
        raise typer.Exit(1)


@contextlib.contextmanager
def progress_events(plan: SendPlan) -> Iterator[SendEvents]:
    """A rich progress bar on a terminal; a plain line per batch otherwise."""
    from newsletter.send.deliver import SendEvents

    if not plan.recipients:
        yield SendEvents()
        return
    done = "written" if plan.rehearsal else "sent"
    if not sys.stdout.isatty():
        yield SendEvents(on_batch=lambda p: echo(_batch_line(p, done)), on_wait=_plain_wait)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("Writing" if plan.rehearsal else "Sending"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as progress:
        task = progress.add_task("send", total=len(plan.recipients))

        def on_batch(p: BatchProgress) -> None:
            progress.advance(task, p.size)
            if p.failed or p.in_doubt:
                progress.console.print(_batch_line(p, done))

        yield SendEvents(on_batch=on_batch, on_wait=lambda s, why: progress.console.print(_wait_line(s, why)))


def _batch_line(p: BatchProgress, done: str = "sent") -> str:
    extra = f", {p.in_doubt:,} in doubt" if p.in_doubt else ""
    return f"batch {p.number}/{p.total}: {p.sent:,} {done}, {p.failed:,} failed{extra}"


def _wait_line(seconds: float, why: str) -> str:
    return f"  waiting {seconds:.1f} s: {why}"


def _plain_wait(seconds: float, why: str) -> None:
    echo(_wait_line(seconds, why))


def _addresses(label: str, items: Sequence[str]) -> None:
    for item in items[:SHOWN]:
        echo(f"  {label:<9} {item}")
    if len(items) > SHOWN:
        echo(f"  ... and {len(items) - SHOWN:,} more")


def show_report(plan: SendPlan, report: SendReport) -> int:
    """Print what the send did; return the exit status.

    0 only when nothing failed (in this run or an earlier one not retried) and nothing is in doubt.
    """
    if report.test:
        echo(f"Test send: {report.sent:,} sent, {len(report.failed):,} failed (nothing recorded in the ledger)")
    elif report.rehearsal:
        _rehearsal_summary(plan, report)
    elif not (report.sent or report.failed or report.in_doubt or report.stopped):
        earlier = f", {report.failed_before:,} failed earlier" if report.failed_before else ""
        echo(f"Nothing to send: {report.skipped:,} already sent{earlier}.")
    else:
        echo(f"Sent {report.sent:,}, skipped {report.skipped:,} (already sent), failed {len(report.failed):,}, "
             f"in doubt {len(report.in_doubt):,} ({report.elapsed:.1f} s)")
    _addresses("failed", [f"{e}: {why}" for e, why in report.failed.items()])
    _addresses("in doubt", report.in_doubt)
    if report.in_doubt and report.rehearsal:
        echo("  (the run stopped while writing them; a rerun writes them again)")
    elif report.in_doubt:
        echo("  (the provider may have accepted them; to send again anyway: "
             f"newsletter send {plan.issue.slug} --resend-pending)")
    if report.failed or report.failed_before:
        echo(f"  (to retry them: newsletter send {plan.issue.slug} --retry-failed)")
    if report.scheduled_for:
        echo(f"Scheduled for {report.scheduled_for}; to cancel: newsletter cancel {plan.issue.slug}")
    if report.left_for_later:
        echo(f"{report.left_for_later:,} more left for a later send.")
    if report.left_for_tomorrow:
        echo(f"{report.left_for_tomorrow:,} left for tomorrow ([smtp] max_per_day = "
             f"{plan.settings.smtp.max_per_day:,} in any 24 hours); run the same command again")
    if report.marked_sent:
        echo(f"{_rel(plan.issue.path)}: status is now sent.")
    if report.stopped:
        echo(f"error: the send stopped: {report.stopped}; {report.not_attempted:,} not sent", err=True)
    return 0 if not (report.failed or report.in_doubt or report.stopped or report.failed_before) else 1


def _rehearsal_summary(plan: SendPlan, report: SendReport) -> None:
    """What an outbox run wrote, and that it delivered nothing."""
    folder = f"{_rel(plan.outbox)}/"
    problems = "".join(f", {what}" for what in (
        f"{len(report.failed):,} failed" if report.failed else "",
        f"{len(report.in_doubt):,} in doubt" if report.in_doubt else "",
        f"{report.failed_before:,} failed earlier" if report.failed_before else "") if what)
    if not (report.sent or report.failed or report.in_doubt or report.stopped):
        echo(f"Nothing to write: {plural(report.skipped, 'message is', 'messages are')} in {folder} already"
             f"{problems}; nothing was delivered.")
    else:
        there = f" ({report.skipped:,} there already)" if report.skipped else ""
        echo(f"Wrote {plural(report.sent, 'message')} to {folder}{there}{problems}; nothing was delivered "
             f"({report.elapsed:.1f} s).")
    echo(f"To deliver it: newsletter send {plan.issue.slug} --provider smtp (or sendgrid)")


def show_status(status: SendStatus) -> None:
    """The ledger's counts, the runs, and who failed or is in doubt."""
    from newsletter.providers.base import State

    c = status.counts
    echo(f"{status.issue.slug} (status: {status.issue.status}; ledger {_rel(status.ledger)})")
    echo(f"  sent          {c[State.SENT]:,}")
    echo(f"  failed        {c[State.FAILED]:,}")
    echo(f"  in doubt      {c[State.IN_DOUBT]:,}")
    if status.not_yet is not None:
        echo(f"  not yet sent  {status.not_yet:,} of {plural(status.active or 0, 'active subscriber')}")
    for run, sent in status.runs:
        extra = ""
        if run.send_at:
            when = dt.datetime.fromtimestamp(run.send_at, dt.UTC).isoformat(timespec="minutes")
            extra = f", scheduled for {when}" + (" (cancelled)" if run.cancelled else "")
        echo(f"  run {run.at}  {run.provider:<8}  {sent:,} sent{extra}")
    _addresses("failed", [f"{e}: {why}" for e, why in status.failed.items()])
    _addresses("in doubt", status.in_doubt)
    if status.outbox is not None:
        echo(f"  rehearsal     {plural(status.rehearsed, 'message')} written to {_rel(status.outbox)}/ "
             "(delivered to nobody)")


def show_cancel(result: CancelResult) -> int:
    """Print what was cancelled; 1 when something could not be."""
    for run in result.cancelled:
        echo(f"Cancelled SendGrid batch {run.batch_id} (run {run.run}).")
    if result.cancelled:
        echo(f"{plural(result.recipients, 'recipient')} back to not sent.")
    for run in result.too_late:
        when = dt.datetime.fromtimestamp(run.send_at or 0, dt.UTC).isoformat(timespec="minutes")
        echo(f"error: batch {run.batch_id} is due at {when}: too late to cancel "
             "(SendGrid allows it until 10 minutes before)", err=True)
    return 1 if result.too_late else 0


def show_sync(result: SyncResult, path: Path) -> None:
    """What SendGrid listed and which subscribers changed."""
    since = dt.datetime.fromtimestamp(result.since, dt.UTC).isoformat(timespec="minutes") if result.since else None
    echo(f"SendGrid suppressions {'since ' + since if since else '(all)'}:")
    for name, n in result.found.items():
        echo(f"  {name:<24} {n:,}")
    echo(f"{_rel(path)}: {plural(len(result.changed), 'subscriber')} changed")
    for email, old, new in result.changed[:SHOWN]:
        echo(f"  {email}: {old} -> {new}")
    if len(result.changed) > SHOWN:
        echo(f"  ... and {len(result.changed) - SHOWN:,} more")
