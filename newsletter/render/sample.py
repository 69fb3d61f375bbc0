"""`newsletter build`: render an issue and write what a person can open and inspect."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Settings
from newsletter.errors import FileWriteError, NewsletterError
from newsletter.files import create_exclusive, make_folders, remove_folders, sweep_temps, write_files
from newsletter.issues import find_issue
from newsletter.models import Issue, RenderedEmail
from newsletter.render.checks import CheckReport, run_checks
from newsletter.render.compose import render_issue
from newsletter.render.message import SAMPLE_RECIPIENT, build_message, personalize, recipient_for

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


def sample_parts(rendered: RenderedEmail, settings: Settings, secret: str) -> tuple[str, str]:
    """The HTML and text exactly as the sample recipient would receive them."""
    recipient = recipient_for(settings, SAMPLE_RECIPIENT.email, SAMPLE_RECIPIENT.name, secret)
    return personalize(rendered, recipient)


def sample_files(rendered: RenderedEmail, settings: Settings, secret: str = "") -> dict[str, bytes]:
    """email.html, email.txt and message.eml as the sample recipient would receive them.

    `build` writes these bytes and `preview` serves them, so the two can never disagree. The
    essay's own images (files under issues/) come along at their site paths and email.html
    shows them from there, so they show before the archive is published; message.eml, like
    every sent message, keeps their absolute URLs.
    """
    from newsletter.render.references import local_images, show_local_images

    recipient = recipient_for(settings, SAMPLE_RECIPIENT.email, SAMPLE_RECIPIENT.name, secret)
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


NEWSLETTER_TOML = '''# {name}: configuration for the `newsletter` tool.
# Every key can be overridden by an environment variable NEWSLETTER_<SECTION>__<KEY>,
# e.g. NEWSLETTER_DELIVERY__PROVIDER=sendgrid. Secrets never go in this file: the SendGrid key
# comes from SENDGRID_API_KEY, the SMTP password from the variable named by [smtp] password_env.

[newsletter]
name = "{name}"
description = ""              # a sentence or two: shown in every email's footer
author = ""
url = "https://example.com/"  # where the web archive lives ('view in browser' links)
language = "en"
postal_address = ""           # required by anti-spam laws in most countries; check warns if empty
subscribe_url = ""            # a sign-up page, linked from the web archive
subscribe_mailto = ""         # or an address readers write to, to subscribe

[sender]
from = "Your Name <you@example.com>"
reply_to = ""

[subscribers]
file = "subscribers.csv"

[delivery]
provider = "outbox"           # outbox (writes .eml files) | sendgrid | smtp
unsubscribe_mailto = "unsubscribe@example.com"
# The token in unsubscribe_url is an HMAC keyed by the env var NEWSLETTER_UNSUBSCRIBE_SECRET:
# unsubscribe_url = "https://example.com/unsubscribe?e={{email}}&t={{token}}"

[sendgrid]
# host = "https://api.eu.sendgrid.com"   # EU data residency
# unsubscribe_group_id = 12345           # use SendGrid's unsubscribe groups

[smtp]
host = "localhost"
port = 587
security = "starttls"         # starttls | tls | none
username = ""
password_env = "SMTP_PASSWORD"
'''
SUBSCRIBERS_HEADER = "email,name,status,tags,created_at,updated_at,source\n"
GITIGNORE = """# Written by `newsletter init`. These hold your readers' addresses or generated output:
# keep them out of the repository (delete the subscribers.csv line to keep the list in a
# private one).
outbox/
sends/
build/
site/
subscribers.csv
.*.lock
"""


def init_newsletter(folder: Path, name: str) -> list[Path]:
    """Create a newsletter folder: subscribers.csv, issues/, .gitignore, newsletter.toml.

    Never overwrites: what exists is kept. newsletter.toml comes last, so an init that was killed
    or failed half way is finished by running it again; a failed one removes what it made.
    """
    config = folder / "newsletter.toml"
    _check_name(name)
    try:
        if config.exists():
            raise NewsletterError(f"{config}: already exists; not overwriting it")
    except OSError as exc:
        raise FileWriteError(config, exc) from None
    made = make_folders(folder)
    sweep_temps(folder, ["subscribers.csv", ".gitignore", "newsletter.toml"])  # left by a killed init
    created: list[Path] = []
    try:
        made += make_folders(folder / "issues")
        if folder / "issues" in made:
            created.append(folder / "issues")
        for path, text, mode in [
            (folder / "subscribers.csv", SUBSCRIBERS_HEADER, 0o600),  # personal data: owner only
            (folder / ".gitignore", GITIGNORE, 0o644),
            (config, NEWSLETTER_TOML.format(name=name), 0o644),
        ]:
            with contextlib.suppress(FileExistsError):
                create_exclusive(path, text.encode("utf-8"), mode)
                created.append(path)
    except BaseException:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.unlink() if path.is_file() else path.rmdir()
        remove_folders(made)
        raise
    return created


def _check_name(name: str) -> None:
    """The name goes into a TOML string as it is: refuse what would break it."""
    if not name.strip():
        raise NewsletterError("the newsletter name may not be empty")
    if any(c in name for c in '"\\') or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise NewsletterError("the newsletter name may not contain quotes, backslashes or control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise NewsletterError("the newsletter name is not UTF-8 text (it has a byte that is not a character)") from None
