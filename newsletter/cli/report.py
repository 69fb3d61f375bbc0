"""CLI command: report (what became of each issue after its send, and the list over time).

SENDGRID_API_KEY is read here (SendGrid's category statistics); without it the report still
prints what the ledger, the webhook's events and the inbox know, and says what is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.app import app
from newsletter.cli.common import ConfigOption, echo, handles_errors, settings_for
from newsletter.cli.report_output import show_issue, show_overview
from newsletter.report import IssueReport

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.report import Overview
    from newsletter.report.sources import StatsSource


class ReportFormat(StrEnum):
    text = "text"
    json = "json"


def stats_source(settings: Settings) -> StatsSource:
    """SendGrid's category statistics through SendGridAPI, or why they cannot be had."""
    from newsletter.errors import NewsletterError
    from newsletter.providers import Exhausted, InDoubt, Transient
    from newsletter.providers.sendgrid.api import KEY_VARIABLE, SendGridAPI
    from newsletter.report.sources import StatsSource

    key = os.environ.get(KEY_VARIABLE, "").strip()
    if not key:
        return StatsSource(missing=f"{KEY_VARIABLE} is not set: SendGrid's statistics were not read "
                                   "(a key with the Stats read permission adds them)")
    try:
        api = SendGridAPI.from_settings(settings, key)
    except NewsletterError as exc:
        return StatsSource(missing=exc.message)
    return StatsSource(api.get_json, errors=(NewsletterError, Transient, InDoubt, Exhausted))


def overview_for(settings: Settings) -> Overview:
    """Every sent issue and the list over time (the preview's Reports page calls this too)."""
    from newsletter.report.sources import overview

    return overview(settings, stats_source(settings))


def issue_report_for(settings: Settings, ref: str) -> IssueReport:
    """One issue's report, by slug or by the path of its file."""
    from newsletter.errors import NewsletterError
    from newsletter.issues import find_issue
    from newsletter.report.sources import issue_report

    slug = ref
    if not settings.ledger_path(ref).exists():
        with contextlib.suppress(NewsletterError):  # a sent issue whose file is gone: still its slug
            slug = find_issue(settings.issues_dir, ref).slug
    return issue_report(settings, slug, stats_source(settings))


@app.command()
@handles_errors
def report(
    issue: Annotated[str | None, typer.Argument(
        help="One issue (slug or file); without it, every sent issue.", metavar="[ISSUE]", show_default=False)] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="text, or json for scripts.")] = ReportFormat.text,
    config: ConfigOption = None,
) -> None:
    """What became of each issue: delivered, bounced, complaints, unsubscribes, clicks; the list over time.

    Reads the send's ledger, the events the reader service kept, and SendGrid's category
    statistics (with SENDGRID_API_KEY). Opens only when open tracking is on, as an upper bound.

    Example: newsletter report the-fear-of-entering-the-room --format json
    """
    settings = settings_for(config)
    result = issue_report_for(settings, issue) if issue else overview_for(settings)
    if fmt is ReportFormat.json:
        echo(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
    elif isinstance(result, IssueReport):
        show_issue(result)
    else:
        show_overview(result)
