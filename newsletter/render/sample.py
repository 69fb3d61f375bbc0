"""`newsletter build` and `check`: render an issue for a sample reader, check it, write what a person can open.

The preview serves the same bytes (sample_files), so build and preview can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Settings
from newsletter.files import write_files
from newsletter.issues import find_issue
from newsletter.models import Issue, RenderedEmail
from newsletter.render.checks import CheckReport, run_checks
from newsletter.render.compose import render_issue
from newsletter.render.message import build_message, personalize, sample_recipient

SAMPLE_FILES = ("email.html", "email.txt", "message.eml")


@dataclass
class BuildResult:
    issue: Issue
    rendered: RenderedEmail
    report: CheckReport
    folder: Path
    files: dict[str, int]  # file name -> bytes written


def render_and_check(settings: Settings, ref: str) -> tuple[Issue, RenderedEmail, CheckReport]:
    """Find an issue by slug or path, render it once and run the preflight checks."""
    issue = find_issue(settings.issues_dir, ref)
    rendered = render_issue(issue, settings)
    return issue, rendered, run_checks(issue, rendered, settings)


def sample_files(rendered: RenderedEmail, settings: Settings, secret: str = "") -> dict[str, bytes]:
    """email.html, email.txt and message.eml as the sample recipient would receive them.

    `build` writes these bytes and `preview` serves them, so the two can never disagree. The
    essay's own images (files under issues/) come along at their site paths and email.html
    shows them from there, so they show before the archive is published; message.eml, like
    every sent message, keeps their absolute URLs.
    """
    from newsletter.render.references import local_images, show_local_images

    recipient = sample_recipient(settings, secret)
    html, text = personalize(rendered, recipient)
    message = build_message(rendered, recipient, settings, secret=secret).as_bytes()
    images = {rel: path for rel, path in local_images(settings, rendered).items() if rel not in SAMPLE_FILES}
    files = {"email.html": show_local_images(html, settings, images).encode(), "email.txt": text.encode(),
             "message.eml": message}
    return files | {rel: path.read_bytes() for rel, path in images.items()}


def build_issue(settings: Settings, ref: str, out_dir: Path, secret: str = "") -> BuildResult:
    """Write out_dir/<slug>/email.html, email.txt and message.eml (for a sample recipient).

    All three are staged before any is replaced: a full disk or a read-only folder leaves the
    last build as it was, with no temp file or new folder behind.
    """
    issue, rendered, report = render_and_check(settings, ref)
    folder = out_dir / issue.slug
    files = sample_files(rendered, settings, secret)
    write_files(folder, files)
    return BuildResult(issue, rendered, report, folder, {k: len(v) for k, v in files.items()})
