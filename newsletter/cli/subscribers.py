"""`newsletter subscribers ...`: the subscriber list sub-app.

Every command works on the list named by --subscribers PATH (then no newsletter.toml is needed)
or, without it, on newsletter.toml's [subscribers] file (--config to point elsewhere).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.app import app
from newsletter.cli.common import (
    ConfigOption,
    SubscribersOption,
    echo,
    handles_errors,
    plural,
    readers_token,
    settings_for,
    unsubscribe_secrets,
)
from newsletter.errors import ConfigError, SubscriberError
from newsletter.models import SubscriberStatus
from newsletter.subscribers import PLATFORMS

if TYPE_CHECKING:
    from newsletter.mailbox.bounces import BouncesReport
    from newsletter.models import Subscriber
    from newsletter.subscribers import CheckReport, ImportReport, ListStats
    from newsletter.subscribers.apply import ApplyReport
    from newsletter.subscribers.pull import PullReport

subscribers_app = typer.Typer(
    help="Manage the subscriber list (a CSV file).", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(subscribers_app, name="subscribers")


class ListFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


ImportFormat = StrEnum("ImportFormat", [(name, name) for name in PLATFORMS])  # type: ignore[misc]


EmailsArgument = Annotated[
    list[str], typer.Argument(help="One or more addresses ('Name <ADDRESS>' too).", metavar="ADDRESS",
                              show_default=False)
]
StatusOption = Annotated[SubscriberStatus | None, typer.Option("--status", help="Only people with this status.")]
TagOption = Annotated[str | None, typer.Option("--tag", metavar="TAG", help="Only people with this tag.")]
TagsOption = Annotated[
    list[str] | None, typer.Option("--tag", metavar="TAG", help="A tag to give them (repeatable).")
]


def list_path(config: Path | None, subscribers: Path | None) -> Path:
    """The list to use: --subscribers if given (no config needed), else newsletter.toml's."""
    if subscribers is not None:
        return subscribers
    try:
        return settings_for(config).subscribers_path
    except ConfigError as exc:
        if config is None and not Path("newsletter.toml").exists():
            raise ConfigError(exc.problems, hint="run this in your newsletter's folder, or pass --config PATH "
                              "or --subscribers PATH") from None
        raise


@subscribers_app.command()
@handles_errors
def add(
    people: Annotated[list[str], typer.Argument(
        help="One or more addresses, each 'ADDRESS' or 'Name <ADDRESS>'.", metavar="ADDRESS",
        show_default=False)],
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="Their name (one address only).")] = "",
    tag: TagsOption = None,
    resubscribe: Annotated[bool, typer.Option(
        "--resubscribe", help="Make someone who unsubscribed, bounced or complained active again.")] = False,
    subscribers: SubscribersOption = None,
    config: ConfigOption = None,
) -> None:
    """Add active subscribers; an address already on the list is reported, not repeated.

    Someone who unsubscribed, bounced or complained stays that way unless you pass --resubscribe
    (do that only when they asked to come back). Several people are added together or, if one
    of them is refused, not at all.

    Example: newsletter subscribers add ada@example.com --name "Ada Lovelace" --tag founding

    Example: newsletter subscribers add "Grace Hopper <grace@example.org>" jon@example.com
    """
    from newsletter.subscribers import add_subscribers

    path = list_path(config, subscribers)
    results = add_subscribers(path, _named(people, name), tags=tag or (), resubscribe=resubscribe)
    for result in results:
        sub, tags = result.subscriber, ", ".join(result.subscriber.tags) or "none"
        echo({"added": f"Added {sub.email}.", "unchanged": f"{sub.email} is already subscribed.",
              "updated": f"{sub.email} is already subscribed; now tagged {tags}.",
              "resubscribed": f"Resubscribed {sub.email} (was {result.previous_status})."}[result.outcome])


def _addresses(people: list[str]) -> list[str]:
    """The address of each argument, 'ADDRESS' or 'Name <ADDRESS>' (as copied from a mail client)."""
    from newsletter.subscribers import split_mailbox

    return [split_mailbox(text)[0] for text in people]


def _named(people: list[str], name: str) -> list[tuple[str, str]]:
    """(address, name) for each argument, 'ADDRESS' or 'Name <ADDRESS>'; --name for a lone address."""
    from newsletter.subscribers import split_mailbox

    if name and len(people) > 1:
        raise SubscriberError("--name names one person, but several addresses were given",
                              hint="give each their name as 'Name <ADDRESS>'")
    pairs = [split_mailbox(text) for text in people]
    if name and pairs[0][1] and pairs[0][1] != name.strip():
        raise SubscriberError(f"two names for {pairs[0][0]}: {pairs[0][1]!r} and --name {name!r}")
    return [(address, own or name) for address, own in pairs]


@subscribers_app.command()
@handles_errors
def unsubscribe(emails: EmailsArgument, subscribers: SubscribersOption = None, config: ConfigOption = None) -> None:
    """Mark people unsubscribed. Their rows stay, so that no later import brings them back.

    Example: newsletter subscribers unsubscribe jon.olsen@example.com
    """
    from newsletter.subscribers import unsubscribe as unsubscribe_people

    for email, old, new in unsubscribe_people(list_path(config, subscribers), _addresses(emails)):
        same = f"{email} already has status {old}; left as it is."
        echo(same if old == new else f"Unsubscribed {email} (was {old}).")


@subscribers_app.command()
@handles_errors
def remove(
    emails: EmailsArgument,
    forget: Annotated[bool, typer.Option("--forget", help="Really delete the rows (an erasure request).")] = False,
    subscribers: SubscribersOption = None,
    config: ConfigOption = None,
) -> None:
    """Delete people's rows entirely, for an erasure request (needs --forget).

    Unsubscribing keeps a row, so no import can bring the person back; forgetting deletes every
    trace of them, and a later import that contains them would add them again.

    Example: newsletter subscribers remove jon.olsen@example.com --forget
    """
    from newsletter.subscribers import forget_subscribers

    if not forget:
        raise SubscriberError(
            "remove deletes rows for good, so it needs --forget; nothing was removed",
            hint="to stop writing to someone, use 'newsletter subscribers unsubscribe ADDRESS': it keeps their "
            "row so no import brings them back. Use 'remove --forget' for an erasure request.",
        )
    for email in forget_subscribers(list_path(config, subscribers), _addresses(emails)):
        echo(f"Forgot {email} (row deleted; a later import could add them again).")


@subscribers_app.command("list")
@handles_errors
def list_(
    status: StatusOption = None,
    tag: TagOption = None,
    fmt: Annotated[ListFormat, typer.Option("--format", help="How to print them.")] = ListFormat.table,
    subscribers: SubscribersOption = None,
    config: ConfigOption = None,
) -> None:
    """List subscribers (every status unless --status). Use --format csv for a big list.

    CSV is written as export writes it: a cell that begins with = + - or @ gets a leading '.

    Example: newsletter subscribers list --status active --tag film
    """
    from newsletter.subscribers import export_subscribers, select_subscribers

    path, statuses = list_path(config, subscribers), [status.value] if status else None
    if fmt is ListFormat.table:
        _print_table(select_subscribers(path, statuses, tag))
        return
    for chunk in export_subscribers(path, fmt=fmt.value, statuses=statuses, tag=tag)[1]:  # as safe as export
        typer.echo(chunk, nl=False)


@subscribers_app.command()
@handles_errors
def count(
    status: Annotated[SubscriberStatus, typer.Option("--status", help="Count people with this status.")] = (
        SubscriberStatus.ACTIVE),
    tag: TagOption = None,
    subscribers: SubscribersOption = None,
    config: ConfigOption = None,
) -> None:
    """Print how many people are active (or have --status / --tag): one number, for scripts.

    Example: newsletter subscribers count --tag film
    """
    from newsletter.subscribers import count_subscribers

    echo(str(count_subscribers(list_path(config, subscribers), status.value, tag)))


@subscribers_app.command()
@handles_errors
def stats(subscribers: SubscribersOption = None, config: ConfigOption = None) -> None:
    """Show the list by status, by tag, by domain, and who joined and left each month.

    Example: newsletter subscribers stats
    """
    from newsletter.subscribers import list_stats

    _print_stats(list_stats(list_path(config, subscribers)))


@subscribers_app.command("import")
@handles_errors
def import_(
    file: Annotated[Path, typer.Argument(help="The export: a CSV, or Mailchimp's ZIP.", metavar="PATH",
                                         show_default=False)],
    fmt: Annotated[ImportFormat, typer.Option("--format", help="Whose export (auto: from its header).")] = (
        ImportFormat.auto),  # type: ignore[attr-defined]
    tag: TagsOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would change; write nothing.")] = False,
    encoding: Annotated[str | None, typer.Option("--encoding", metavar="ENCODING",
                                                 help="The file's encoding, if not UTF-8.")] = None,
    subscribers: SubscribersOption = None,
    config: ConfigOption = None,
) -> None:
    """Bring in a list from Substack, Mailchimp, Buttondown, listmonk, Ghost, or any CSV with an email column.

    Nobody who unsubscribed, bounced or complained (here or there) becomes active again: the more
    restrictive status wins. Each skipped row is listed with its line and the reason.

    Example: newsletter subscribers import mailchimp-export.zip --tag from-mailchimp --dry-run
    """
    from newsletter.subscribers import import_subscribers

    path = list_path(config, subscribers)
    report = import_subscribers(path, file, platform=fmt.value, encoding=encoding, tags=tag or (), dry_run=dry_run)
    _print_import(report)


@subscribers_app.command()
@handles_errors
def export(
    status: StatusOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).",
                                                metavar="PATH", dir_okay=False)] = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or json.")] = ExportFormat.csv,
    tag: TagOption = None,
    subscribers: SubscribersOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the list out for a spreadsheet or another tool (every status unless --status).

    Safe to open in a spreadsheet: a cell that begins with = + - or @ gets a leading ' so it is
    shown as text, never run as a formula. A CSV file written with -o starts with a UTF-8 BOM.

    Example: newsletter subscribers export --status active -o active.csv
    """
    from newsletter.subscribers import export_subscribers, write_export

    path, statuses = list_path(config, subscribers), [status.value] if status else None
    if output is not None:
        written = write_export(path, output, fmt=fmt.value, statuses=statuses, tag=tag)
        echo(f"Exported {written} subscriber{'s' if written != 1 else ''} to {output}.")
        return
    for chunk in export_subscribers(path, fmt=fmt.value, statuses=statuses, tag=tag)[1]:
        typer.echo(chunk, nl=False)


@subscribers_app.command()
@handles_errors
def check(
    fix: Annotated[bool, typer.Option("--fix", help="Repair what can be repaired safely.")] = False,
    subscribers: SubscribersOption = None,
    config: ConfigOption = None,
) -> None:
    """Check every row and list each problem with its line; exit status 1 if any remain.

    --fix rewrites what is safe (spacing, case, date forms, repeated rows that agree) and lists
    the rest for you to decide (bad addresses, unknown statuses, rows that disagree).

    Example: newsletter subscribers check --fix
    """
    from newsletter.subscribers import check_list, fix_list

    path = list_path(config, subscribers)
    report = fix_list(path) if fix else check_list(path)
    _print_check(report)
    if report.remaining:
        raise typer.Exit(1)


ResubscribeOption = Annotated[bool, typer.Option(
    "--resubscribe", help="Let a confirmed sign-up make someone who bounced or complained active again.")]
ApplyDryRunOption = Annotated[bool, typer.Option("--dry-run", help="Report what would change; write nothing.")]


@subscribers_app.command("apply")
@handles_errors
def apply_(
    resubscribe: ResubscribeOption = False,
    dry_run: ApplyDryRunOption = False,
    subscribers: SubscribersOption = None,
    config: ConfigOption = None,
) -> None:
    """Fold what readers did through the reader service (the inbox) into the list.

    Confirmed sign-ups are added, unsubscribes, bounces and complaints marked, each event once, in
    the order it happened. An unsubscribe always wins; a confirmed sign-up makes an unsubscribed
    person active again (their own new consent), but someone who bounced or complained only with
    --resubscribe. Safe to run at any time, from cron too: `send` runs it first anyway.

    Example: newsletter subscribers apply --dry-run
    """
    from newsletter.subscribers.apply import apply_inbox

    settings = settings_for(config)
    path = subscribers or settings.subscribers_path
    report = apply_inbox(path, settings.inbox_dir, settings.root, unsubscribe_secrets(settings),
                         resubscribe=resubscribe, dry_run=dry_run)
    print_apply(report)


@subscribers_app.command()
@handles_errors
def pull(
    resubscribe: ResubscribeOption = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Fetch the events, but change nothing in the list.")
                       ] = False,
    subscribers: SubscribersOption = None,
    config: ConfigOption = None,
) -> None:
    """Fetch new events from the reader service on another machine, then apply them.

    Asks [readers] url for the events after the last pull, with the token from the variable
    [readers] token_env names, and adds them to the local inbox (each once), then runs `apply`.

    Example: NEWSLETTER_READERS_TOKEN=... newsletter subscribers pull
    """
    from newsletter.subscribers.apply import apply_inbox
    from newsletter.subscribers.pull import pull_events

    settings = settings_for(config)
    if not settings.readers_url:
        raise ConfigError([f"{settings.config_path}: [readers] url is not set: there is no reader service to pull "
                           "from"])
    print_pull(pull_events(settings.readers_url, settings.inbox_dir, readers_token(settings)))
    path = subscribers or settings.subscribers_path
    print_apply(apply_inbox(path, settings.inbox_dir, settings.root, unsubscribe_secrets(settings),
                            resubscribe=resubscribe, dry_run=dry_run))


@subscribers_app.command()
@handles_errors
def bounces(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read the mailbox read-only; report what would "
                                          "change; write and move nothing.")] = False,
    subscribers: SubscribersOption = None,
    config: ConfigOption = None,
) -> None:
    """Read the return mailbox ([mailbox], IMAP): bounces, complaints and mailto unsubscribes.

    A permanent failure (5.x.x) marks the address bounced, [mailbox] soft_bounces temporary ones
    (4.x.x) within soft_bounce_days too; a spam complaint (ARF) marks it complained, a mail to
    [delivery] unsubscribe_mailto saying "unsubscribe" unsubscribes its sender. Each is recorded
    in the inbox and applied to the list, then the message is moved to processed_folder (or
    flagged). Auto-replies and everything else stay where they are, unread if they were.
    The password comes from the variable [mailbox] password_env names.

    Example: MAILBOX_PASSWORD=... newsletter subscribers bounces --dry-run
    """
    import os

    from newsletter.mailbox.bounces import read_bounces

    settings = settings_for(config)
    password = os.environ.get(settings.mailbox.password_env, "")
    print_bounces(read_bounces(settings, password, list_path=subscribers, secrets=unsubscribe_secrets(settings),
                               dry_run=dry_run))


def print_bounces(report: BouncesReport) -> None:
    """What the mailbox held and did: one line per recognised message, then what was left."""
    recognised = len(report.seen) + len(report.unattributed)
    echo(f"Mailbox: {plural(report.read, 'message')} read: {len(report.changes):,} changed the list, "
         f"{report.left_alone:,} left alone (not bounces, complaints or unsubscribes)")
    for seen in report.seen:
        issue = f" [{seen.issue}]" if seen.issue else ""
        echo(f"  {seen.kind:<11} {seen.email}: {seen.outcome}{issue} ({seen.summary})")
    for summary, why in report.unattributed:
        echo(f"  not attributed: {summary}: {why}; left in the folder")
    if report.applied is not None and (report.applied.changed or report.applied.events):
        print_apply(report.applied)
    if report.dry_run:
        echo("Dry run: the mailbox was opened read-only; nothing was written or moved.")
    elif recognised and report.processed_folder:
        echo(f"Moved {plural(report.moved, 'message')} to {report.processed_folder}.")
    elif recognised:
        echo(f"Flagged {plural(report.moved, 'message')} as processed.")


def print_pull(report: PullReport) -> None:
    """One line: what a pull fetched."""
    new = f", {report.added:,} new here" if report.added != report.fetched else ""
    echo(f"Pulled {plural(report.fetched, 'event')} from {report.url}{new}.")


_SHOWN = 20  # changes listed one by one; the rest are counted


def print_apply(report: ApplyReport) -> None:
    """What apply changed, like import: the counts, then each change."""
    if not report.events:
        echo("Inbox: no new events.")
        return
    counts = [f"{len(report.added):,} added", f"{len(report.resubscribed):,} resubscribed",
              f"{len(report.updated):,} updated", f"{len(report.left):,} left", f"{report.unchanged:,} unchanged"]
    if report.awaiting:
        counts.append(f"{report.awaiting:,} awaiting confirmation")
    if report.not_on_list:
        counts.append(f"{report.not_on_list:,} not on the list")
    echo(f"Inbox: {plural(report.events, 'new event')}: {', '.join(counts)}")
    lines = [f"  added {email}" for email in report.added]
    lines += [f"  resubscribed {email} (was {old})" for email, old in report.resubscribed]
    lines += [f"  updated {email} (tags or name)" for email in report.updated]
    lines += [f"  {new} {email} (was {old})" for email, old, new in report.left]
    lines += [f"  not resubscribed {email}: status {status} (if they asked to come back: --resubscribe)"
              for email, status in report.refused]
    lines += [f"  skipped event {event}: {why}" for event, why in report.invalid]
    for line in lines[:_SHOWN]:
        echo(line)
    if len(lines) > _SHOWN:
        echo(f"  ... and {len(lines) - _SHOWN:,} more")
    if report.dry_run:
        echo("Dry run: nothing was written.")


def _print_table(rows: list[Subscriber]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("email", no_wrap=True)
    for column in ("name", "status", "tags", "since"):
        table.add_column(column, overflow="fold", no_wrap=column in ("status", "since"))
    for sub in rows:
        table.add_row(sub.email, sub.name, sub.status, ", ".join(sub.tags), sub.created_at[:10])
    Console(markup=False, emoji=False, highlight=False).print(table)
    echo(plural(len(rows), "subscriber"))


def _print_stats(stats: ListStats) -> None:
    echo(plural(stats.total, "subscriber"))
    for status, n in stats.by_status.items():
        echo(f"  {status:<14}{n:>10,}")
    for title, counter in (("Tags", stats.by_tag), ("Domains", stats.by_domain)):
        echo(f"\n{title} (active subscribers{', top 10' if len(counter) > 10 else ''})")
        for key, n in counter.most_common(10):
            echo(f"  {key:<30}{n:>10,}")
        if not counter:
            echo("  (none)")
    echo(f"\n{'Month':<10}{'joined':>10}{'left':>10}{'net':>10}")
    for month in sorted(stats.joined.keys() | stats.left.keys()):
        joined, left = stats.joined[month], stats.left[month]
        echo(f"{month:<10}{joined:>10,}{left:>10,}{joined - left:>+10,}")


PLATFORM_NAMES = {"substack": "Substack", "mailchimp": "Mailchimp", "buttondown": "Buttondown",
                  "listmonk": "listmonk", "ghost": "Ghost", "csv": "Generic CSV"}


def _print_import(report: ImportReport) -> None:
    platform = PLATFORM_NAMES.get(report.platform, report.platform)
    echo(f"{platform} export ({report.encoding}): {report.added:,} added, {report.updated:,} updated, "
         f"{report.unchanged:,} unchanged, {len(report.skipped):,} skipped")
    for where, reason in report.skipped:
        echo(f"  skipped {where}: {reason}")
    for note in report.notes:
        echo(f"  note: {note}")
    if report.new_columns:
        more = f" and {len(report.new_columns) - 20:,} more" if len(report.new_columns) > 20 else ""
        echo(f"  new columns: {', '.join(report.new_columns[:20])}{more}")
    if report.dry_run:
        echo("Dry run: nothing was written.")


def _print_check(report: CheckReport) -> None:
    for problem in report.problems:
        mark = " (fixed)" if report.fixed and problem.fixable else (" (fixable)" if problem.fixable else "")
        echo(f"{report.where}:{problem.line}: {problem.message}{mark}")
    fixable = sum(p.fixable for p in report.problems)
    summary = f"{report.where}: {plural(report.rows, 'row')}, {plural(len(report.remaining), 'problem')}"
    if report.fixed:
        summary += f" left ({fixable} fixed)"
    elif fixable:
        summary += f" ({fixable} fixable: run 'newsletter subscribers check --fix')"
    echo(summary)
