"""Sending commands: send, status, cancel, and `subscribers sync`.

Secrets are read here, from the environment only, and passed down: SENDGRID_API_KEY, the
variable named by [smtp] password_env, and the one named by [delivery] unsubscribe_secret_env.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.app import app
from newsletter.cli.common import ConfigOption, IssueArgument, SubscribersOption, echo, handles_errors, settings_for
from newsletter.cli.send_output import (
    confirm,
    progress_events,
    show_cancel,
    show_dry_run,
    show_plan,
    show_report,
    show_status,
    show_sync,
)
from newsletter.cli.subscribers import print_apply, print_pull, subscribers_app
from newsletter.models import ProviderName

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.providers import Credentials
    from newsletter.send import SendPlan


def credentials_for(settings: Settings) -> Credentials:
    """The secrets, from environment variables only."""
    from newsletter.providers import Credentials

    return Credentials(
        sendgrid_api_key=os.environ.get("SENDGRID_API_KEY", "").strip(),
        smtp_password=os.environ.get(settings.smtp.password_env, ""),
        unsubscribe_secret=os.environ.get(settings.delivery.unsubscribe_secret_env, ""),
        readers_token=os.environ.get(settings.readers.token_env, "").strip(),
    )


@app.command()
@handles_errors
def send(
    issue: IssueArgument,
    subscribers: SubscribersOption = None,
    provider: Annotated[ProviderName | None, typer.Option(
        "--provider", help="How to send (default: [delivery] provider).", show_default=False)] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Only active subscribers with this tag.")] = None,
    test: Annotated[list[str] | None, typer.Option(
        "--test", metavar="ADDRESS", help="Send only to ADDRESS (repeatable), subject prefixed [TEST]; "
        "nothing is recorded.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show exactly what would be sent; send nothing.")] = False,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, metavar="N", help="Send to at most N more people.")] = None,
    schedule: Annotated[str | None, typer.Option(
        "--schedule", metavar="WHEN", help="SendGrid only: deliver at WHEN (ISO 8601, or +2h), at most 72 h ahead.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Send without asking (needed without a terminal).")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Retry only those recorded as failed.")] = False,
    resend_pending: Annotated[bool, typer.Option(
        "--resend-pending", help="Also send to those left in doubt by an interrupted send (they may get it twice).")
    ] = False,
    skip_pull: Annotated[bool, typer.Option(
        "--skip-pull", help="With [readers] remote: send even though the reader service cannot be reached "
        "(its newest unsubscribes are not honoured).")] = False,
    config: ConfigOption = None,
) -> None:
    """Send an issue to every active subscriber, each exactly once, and report what happened.

    Runs the preflight checks, shows a summary and asks before sending. The ledger
    (sends/<slug>.jsonl) makes a rerun skip everyone who already has it. What readers did
    through the reader service (the inbox; pulled first with [readers] remote) is applied to
    the list before anyone is picked, so every unsubscribe received before the send is honoured.

    Example: newsletter send the-fear-of-entering-the-room --dry-run
    """
    from newsletter.send.plan import SendOptions, prepare_send, run_send

    settings = settings_for(config, delivery__provider=provider.value if provider else None)
    credentials = credentials_for(settings)
    options = SendOptions(subscribers, tag, tuple(test or ()), dry_run, limit, schedule, retry_failed, resend_pending,
                          skip_pull)
    plan = prepare_send(settings, issue, options, credentials)
    show_inbox(plan)
    if not show_plan(plan):
        raise typer.Exit(1)
    if dry_run:
        show_dry_run(plan)
        return
    confirm(plan, yes)
    with progress_events(plan) as events:
        report = run_send(plan, credentials, events)
    raise typer.Exit(show_report(plan, report))


def show_inbox(plan: SendPlan) -> None:
    """What the send folded into the list first (nothing is shown when there was nothing)."""
    done = plan.inbox
    if done.pulled is not None:
        print_pull(done.pulled)
    if done.applied is not None and (done.applied.events or done.pulled is not None):
        print_apply(done.applied)
    if done.skipped_pull:
        echo("Inbox:      not fetched from the reader service (--skip-pull): its newest unsubscribes are not "
             "honoured in this send")


@app.command()
@handles_errors
def status(issue: IssueArgument, subscribers: SubscribersOption = None, config: ConfigOption = None) -> None:
    """Show from the ledger how many got an issue, failed, are in doubt or are not yet sent.

    An outbox rehearsal is shown apart: its files were delivered to nobody.

    Example: newsletter status the-fear-of-entering-the-room
    """
    from newsletter.send.status import send_status

    show_status(send_status(settings_for(config), issue, subscribers))


@app.command()
@handles_errors
def cancel(issue: IssueArgument, config: ConfigOption = None) -> None:
    """Cancel an issue's scheduled SendGrid send (up to 10 minutes before its time).

    Its recipients go back to "not sent" in the ledger; the issue's status back to ready.

    Example: newsletter cancel the-fear-of-entering-the-room
    """
    from newsletter.send.schedule import cancel_scheduled

    settings = settings_for(config)
    result = cancel_scheduled(settings, issue, credentials_for(settings))
    raise typer.Exit(show_cancel(result))


@subscribers_app.command("sync")
@handles_errors
def sync(
    subscribers: SubscribersOption = None,
    full: Annotated[bool, typer.Option("--full", help="Read SendGrid's lists from the start, "
                                                      "not since the last sync.")] = False,
    config: ConfigOption = None,
) -> None:
    """Mark subscribers SendGrid reports as unsubscribed, bounced or complained.

    Reads global and group unsubscribes, bounces, spam reports and invalid emails since the
    last sync (needs SENDGRID_API_KEY). Never deletes anyone.

    Example: newsletter subscribers sync
    """
    from newsletter.send.suppressions import sync_suppressions

    settings = settings_for(config)
    path = subscribers or settings.subscribers_path
    show_sync(sync_suppressions(settings, path, credentials_for(settings).sendgrid_api_key, full=full), path)

