"""`newsletter init`: a new newsletter folder with a commented newsletter.toml, issues/, the list, .gitignore."""

from __future__ import annotations

import contextlib
from pathlib import Path

from newsletter.errors import FileWriteError, NewsletterError
from newsletter.files import create_exclusive, make_folders, remove_folders, sweep_temps
from newsletter.subscribers import COLUMNS

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
SUBSCRIBERS_HEADER = ",".join(COLUMNS) + "\n"
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
