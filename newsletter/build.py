"""`newsletter build`: render an issue and write what a person can open and inspect."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsletter.checks import CheckReport, run_checks
from newsletter.config import Settings
from newsletter.fsutil import atomic_write_bytes, atomic_write_text
from newsletter.issues import find_issue
from newsletter.message import SAMPLE_RECIPIENT, build_message, personalize, recipient_for
from newsletter.models import Issue, RenderedEmail
from newsletter.render import render_issue


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

    `build` writes these bytes and `preview` serves them, so the two can never disagree.
    """
    recipient = recipient_for(settings, SAMPLE_RECIPIENT.email, SAMPLE_RECIPIENT.name, secret)
    html, text = personalize(rendered, recipient)
    message = build_message(rendered, recipient, settings, secret=secret).as_bytes()
    return {"email.html": html.encode(), "email.txt": text.encode(), "message.eml": message}


def build_issue(settings: Settings, ref: str, out_dir: Path, secret: str = "") -> BuildResult:
    """Write out_dir/<slug>/email.html, email.txt and message.eml (for a sample recipient)."""
    issue, rendered, report = render_and_check(settings, ref)
    folder = out_dir / issue.slug
    files = sample_files(rendered, settings, secret)
    for name, data in files.items():
        atomic_write_bytes(folder / name, data)
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


def init_newsletter(folder: Path, name: str) -> list[Path]:
    """Create a newsletter folder: newsletter.toml, issues/, subscribers.csv. Never overwrites."""
    from newsletter.errors import NewsletterError

    config = folder / "newsletter.toml"
    if config.exists():
        raise NewsletterError(f"{config}: already exists; not overwriting it")
    if '"' in name or "\\" in name or "\n" in name:
        raise NewsletterError("the newsletter name may not contain quotes, backslashes or newlines")
    (folder / "issues").mkdir(parents=True, exist_ok=True)
    created = [config, folder / "issues"]
    atomic_write_text(config, NEWSLETTER_TOML.format(name=name))
    subscribers = folder / "subscribers.csv"
    if not subscribers.exists():
        atomic_write_text(subscribers, SUBSCRIBERS_HEADER)
        created.append(subscribers)
    return created
