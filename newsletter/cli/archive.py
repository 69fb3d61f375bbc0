"""CLI command: archive (the static web archive and its Atom feed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.app import app
from newsletter.cli.common import ConfigOption, echo, handles_errors, settings_for

if TYPE_CHECKING:
    from newsletter.archive import SiteReport

LISTED = 20  # written files named one per line; a full rebuild of a long archive is summarised


@app.command()
@handles_errors
def archive(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default: [archive] out, i.e. site/).", show_default=False,
                     metavar="DIR"),
    ] = None,
    include_drafts: Annotated[
        bool,
        typer.Option("--include-drafts", help="Also build draft issues (marked, noindex, never in the feed)."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Write the web archive: index.html, a page per published issue, feed.xml, sitemap.xml.

    Any static host can serve the folder as it is, at [newsletter] url. Files this command
    did not write are never overwritten or removed; pages of issues that were removed or turned
    back to draft are.

    Example: newsletter archive --out site
    """
    from newsletter.archive import write_site

    settings = settings_for(config)
    report = write_site(settings, out if out is not None else settings.path(settings.archive.out), include_drafts)
    _present(report, include_drafts)


def _present(report: SiteReport, include_drafts: bool) -> None:
    for warning in report.warnings:
        echo(f"warning: {warning}", err=True)
    folder = os.path.relpath(report.folder)
    for rel in report.written[:LISTED]:
        echo(f"  wrote    {os.path.join(folder, rel)}")
    if len(report.written) > LISTED:
        echo(f"  ... and {len(report.written) - LISTED} more")
    for rel in report.removed:
        echo(f"  removed  {os.path.join(folder, rel)}")
    issues = f"{report.issues} issue{'s' if report.issues != 1 else ''}"
    drafts = f" and {report.drafts} draft{'s' if report.drafts != 1 else ''}" if include_drafts else ""
    echo(f"Archive in {folder}/: {issues}{drafts}; {len(report.written)} written, "
         f"{len(report.unchanged)} unchanged, {len(report.removed)} removed")
    if report.drafts:
        echo("Drafts are included: do not publish this folder as it is.")
    else:
        echo(f"Publish {folder}/ at {report.home_url} (feed: {report.home_url}feed.xml)")
