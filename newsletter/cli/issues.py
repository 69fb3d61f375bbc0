"""Issue commands: build, check, new, init."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli import app
from newsletter.cli.common import ConfigOption, echo, handles_errors, kb, print_checks, settings_for

IssueArgument = Annotated[str, typer.Argument(help="The issue: its slug or the path of its .md file.")]


@app.command()
@handles_errors
def build(
    issue: IssueArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("build"),
    config: ConfigOption = None,
) -> None:
    """Render an issue to DIR/<slug>/email.html, email.txt and message.eml, and check it.

    The files are what one sample recipient would receive. Exit status 1 if a check fails.

    Example: newsletter build the-fear-of-entering-the-room --out build
    """
    from newsletter.build import build_issue

    settings = settings_for(config)
    secret = os.environ.get(settings.delivery.unsubscribe_secret_env, "")
    result = build_issue(settings, issue, out, secret=secret)
    echo(f"Built {result.issue.slug}: {result.rendered.subject}")
    for name, size in result.files.items():
        echo(f"  {result.folder / name}  {kb(size)}")
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
    from newsletter.build import render_and_check

    settings = settings_for(config)
    found, rendered, report = render_and_check(settings, issue)
    echo(f"Checking {found.slug}: {rendered.subject}")
    print_checks(report)
    if report.errors:
        raise typer.Exit(1)


@app.command()
@handles_errors
def new(
    title: Annotated[str, typer.Argument(help="The new issue's title.")],
    config: ConfigOption = None,
) -> None:
    """Create issues/<today>-<slug>.md with its front matter filled in (status: draft).

    Example: newsletter new "The Logic of Colour"
    """
    from newsletter.issues import new_issue

    settings = settings_for(config)
    path = new_issue(settings.issues_dir, title)
    echo(f"Created {os.path.relpath(path)}")


@app.command()
@handles_errors
def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the new newsletter.")] = Path("."),
    name: Annotated[str, typer.Option("--name", help="The newsletter's name.")] = "My Newsletter",
) -> None:
    """Create a newsletter folder: a commented newsletter.toml, issues/, subscribers.csv.

    Example: newsletter init my-letter --name "The Long Read"
    """
    from newsletter.build import init_newsletter

    for path in init_newsletter(folder, name):
        echo(f"Created {os.path.relpath(path)}")
    echo("Next: edit newsletter.toml, then: newsletter new \"Your first issue\"")
