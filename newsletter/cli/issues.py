"""Issue commands: build, check, new, init, issues."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.app import app
from newsletter.cli.common import (
    ConfigOption,
    IssueArgument,
    echo,
    handles_errors,
    plural,
    print_checks,
    settings_for,
    unsubscribe_secret,
)


@app.command()
@handles_errors
def build(
    issue: IssueArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.", metavar="DIR")] = Path("build"),
    config: ConfigOption = None,
) -> None:
    """Render an issue to DIR/<slug>/email.html, email.txt and message.eml, and check it.

    The files are what one sample recipient would receive. Exit status 1 if a check fails.

    Example: newsletter build the-fear-of-entering-the-room --out build
    """
    from newsletter.render import build_issue, kb

    settings = settings_for(config)
    result = build_issue(settings, issue, out, secret=unsubscribe_secret(settings))
    echo(f"Built {result.issue.slug}: {result.rendered.subject}")
    for name, size in result.files.items():
        echo(f"  {result.folder / name}  {kb(size)}")
    echo(f"  {result.report.size_summary}")
    print_checks(result.report, verbose=False)
    if result.report.errors:
        raise typer.Exit(1)


@app.command()
@handles_errors
def check(issue: IssueArgument, config: ConfigOption = None) -> None:
    """Run the preflight checks on an issue; exit status 1 on any error.

    Subject length, size against Gmail's 102 KB clip, links, images, placeholders (TK, TODO),
    unsubscribe method and postal address, template fields, front matter.

    Example: newsletter check the-fear-of-entering-the-room
    """
    from newsletter.render import render_and_check

    settings = settings_for(config)
    found, rendered, report = render_and_check(settings, issue)
    echo(f"Checking {found.slug}: {rendered.subject}")
    print_checks(report)
    if report.errors:
        raise typer.Exit(1)


@app.command()
@handles_errors
def new(
    title: Annotated[str, typer.Argument(help="The new issue's title.", metavar="TITLE")],
    slug: Annotated[
        str | None,
        typer.Option("--slug", help="Its slug (default: made from the title).", metavar="SLUG", show_default=False),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create issues/<today>-<slug>.md with its front matter filled in (status: draft).

    The slug names the issue's page, ledger and build folder: a slug another issue has is refused.

    Example: newsletter new "The Logic of Colour" --slug logic-of-colour
    """
    from newsletter.issues import new_issue

    settings = settings_for(config)
    path = new_issue(settings.issues_dir, title, slug=slug)
    echo(f"Created {os.path.relpath(path)}")


@app.command()
@handles_errors
def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the new newsletter.", metavar="DIR")] = Path("."),
    name: Annotated[str, typer.Option("--name", help="The newsletter's name.", metavar="NAME")] = "My Newsletter",
) -> None:
    """Create a newsletter folder: a commented newsletter.toml, issues/, subscribers.csv, .gitignore.

    It never overwrites a file; run it again to finish an init that was interrupted.

    Example: newsletter init my-letter --name "The Long Read"
    """
    from newsletter.scaffold import init_newsletter

    for path in init_newsletter(folder, name):
        echo(f"Created {os.path.relpath(path)}")
    echo("Next: edit newsletter.toml, then: newsletter new \"Your first issue\"")


@app.command("issues")
@handles_errors
def issues_(config: ConfigOption = None) -> None:
    """List every issue: date, status, how many got it (from the ledger), slug and title.

    Exit status 1 if an issue file does not parse or shares its slug with another.

    Example: newsletter issues
    """
    from newsletter.send import issue_rows

    rows = issue_rows(settings_for(config))
    table = [("DATE", "STATUS", "SENT", "SLUG", "TITLE")] + [
        (r.issue.date.isoformat(), r.issue.status, f"{r.sent:,}" if r.sent else "-", r.issue.slug, r.issue.title)
        for r in rows if r.issue is not None
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        echo("  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]),
                        row[3].ljust(widths[3]), row[4]]).rstrip())
    for r in rows:
        if r.issue is not None and (r.failed or r.in_doubt):
            echo(f"{r.issue.slug}: {r.failed:,} failed, {r.in_doubt:,} in doubt "
                 f"(newsletter status {r.issue.slug} tells more)")
    problems = [r.problem for r in rows if r.problem]
    for problem in problems:
        echo(f"error: {problem}", err=True)
    echo(plural(len(rows), "issue"))
    if problems:
        raise typer.Exit(1)
