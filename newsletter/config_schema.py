"""The schema of newsletter.toml: one frozen dataclass per section, and what a valid value is.

config.py reads and layers the values; this module says what each key may hold. Every check
appends to one list of problems and names where the value came from (the file's key, the
environment variable or the command-line option), so all problems are reported together.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsletter.mailbox.verp import MAX_LOCAL_PART, TOKEN_CHARS, verp_room
from newsletter.models import PROVIDERS


@dataclass(frozen=True)
class NewsletterSection:
    name: str
    url: str  # where the web archive lives; 'view in browser' links and absolute URLs
    description: str = ""
    author: str = ""
    language: str = "en"
    direction: str = "ltr"
    postal_address: str = ""
    subscribe_url: str = ""  # a sign-up page, linked from the web archive
    subscribe_mailto: str = ""  # or an address readers write to, to subscribe


@dataclass(frozen=True)
class SenderSection:
    from_: str = field(metadata={"key": "from"})
    reply_to: str = ""


@dataclass(frozen=True)
class SubscribersSection:
    file: str = "subscribers.csv"


@dataclass(frozen=True)
class DeliverySection:
    provider: str = "outbox"
    unsubscribe_mailto: str = ""
    unsubscribe_url: str = ""  # https URL template with {email} and {token}
    unsubscribe_secret_env: str = "NEWSLETTER_UNSUBSCRIBE_SECRET"
    outbox_dir: str = "outbox"
    ledger_dir: str = "sends"
    list_id: str = ""  # default: <slug-of-name>.<sender domain>


@dataclass(frozen=True)
class SendGridSection:
    host: str = "https://api.sendgrid.com"
    unsubscribe_group_id: int | None = None
    categories: list[str] = field(default_factory=lambda: ["newsletter"])
    timeout: float = 30.0
    batch_size: int = 1000
    concurrency: int = 4  # requests in flight at once (1..16); README: "How fast a send goes"
    # Off unless the writer turns them on: SendGrid then adds no pixel and rewrites no link.
    open_tracking: bool = False
    click_tracking: bool = False  # HTML links only: the text part keeps the essay's own links


@dataclass(frozen=True)
class SMTPSection:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username: str = ""
    password_env: str = "SMTP_PASSWORD"
    timeout: float = 30.0
    ca_file: str = ""  # a PEM file of CA certificates to trust instead of the system's (a private CA)
    return_path: str = ""  # the envelope sender (MAIL FROM) bounces go to; "" = the From address
    verp: bool = True  # with return_path: bounces+TOKEN@domain per recipient (the mailbox needs plus addressing)
    connections: int = 1  # SMTP sessions in parallel, each its own login (relays cap them: see the README)
    max_per_minute: int = 0  # messages a minute over all connections together; 0 = as fast as the relay takes them
    max_per_day: int = 0  # messages in any 24 hours, over every issue's ledger (Gmail, SES sandbox); 0 = no cap


@dataclass(frozen=True)
class ArchiveSection:
    out: str = "site"
    feed_entries: int = 20  # newest issues in feed.xml; 0 = all


@dataclass(frozen=True)
class ReadersSection:
    """The reader service (`newsletter serve`): subscribe, confirm, unsubscribe, SendGrid's events."""

    url: str = ""  # its public https base URL, e.g. https://example.com/r/ ("" = no service)
    inbox: str = "inbox"  # the folder of its event journal, relative to the newsletter folder
    remote: bool = False  # true: it runs on another machine; send and `subscribers pull` fetch its events
    token_env: str = "NEWSLETTER_READERS_TOKEN"  # the bearer token of its events endpoint (pull)
    double_opt_in: bool = True
    confirm_hours: float = 72.0  # how long a confirmation link works
    per_address_per_day: int = 3  # confirmation emails to one address in 24 hours
    per_ip_per_hour: int = 30  # subscribe attempts from one client address in an hour
    host: str = "127.0.0.1"  # where `newsletter serve` listens (behind the TLS proxy)
    port: int = 8025
    threads: int = 8  # the production server's worker threads
    trusted_proxies: int = 0  # proxies in front that set X-Forwarded-For (0: the socket's address is the client's)


@dataclass(frozen=True)
class MailboxSection:
    """The return mailbox (`subscribers bounces`): where bounces, complaints and mailto unsubscribes arrive."""

    host: str = ""  # the IMAP server ("" = no return mailbox)
    port: int = 993
    security: str = "tls"  # tls | starttls | none (none only on 127.0.0.1)
    username: str = ""
    password_env: str = "MAILBOX_PASSWORD"
    folder: str = "INBOX"
    processed_folder: str = ""  # recognised messages are moved here ("" = flagged and left in place)
    soft_bounces: int = 3  # this many temporary failures...
    soft_bounce_days: int = 15  # ...within this many days mark an address bounced
    timeout: float = 30.0
    ca_file: str = ""  # a PEM file of CA certificates to trust instead of the system's (a private CA)


SECTIONS: dict[str, type] = {
    "newsletter": NewsletterSection,
    "sender": SenderSection,
    "subscribers": SubscribersSection,
    "delivery": DeliverySection,
    "sendgrid": SendGridSection,
    "smtp": SMTPSection,
    "archive": ArchiveSection,
    "readers": ReadersSection,
    "mailbox": MailboxSection,
}


@dataclass
class Origin:
    """Where each value came from, so a problem names the variable or option that set it."""

    path: Path
    names: dict[tuple[str, str], str] = field(default_factory=dict)  # (section, key) -> env var or option

    def __call__(self, section: str, key: str) -> str:
        return self.names.get((section, key)) or f"{self.path}: [{section}] {key}"


Problems = list[str]
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_SMTP_CONNECTIONS = 16  # beyond this a relay sees an attack, and the client's two cores are the limit
MAX_TIMEOUT = 3600.0  # an hour; larger values overflow the socket layer or hang a send for ever


def _https(value: str) -> bool:
    url = urlsplit(value)
    return url.scheme == "https" and bool(url.netloc)


def _address(value: str) -> bool:
    return "@" in value.removeprefix("mailto:").split("?")[0]


def _in_range(at: Origin, section: str, key: str, value: float, low: float, high: float,
              problems: Problems) -> None:
    """Report a number outside low..high (both included); NaN is never in range."""
    if not low <= value <= high:
        problems.append(f"{at(section, key)}: must be between {low:g} and {high:g}, got {value!r}")


def _timeout(at: Origin, section: str, value: float, problems: Problems) -> None:
    if not 0 < value <= MAX_TIMEOUT:
        problems.append(f"{at(section, 'timeout')}: must be more than 0 and at most {MAX_TIMEOUT:g} seconds, "
                        f"got {value!r}")


def _env_name(at: Origin, section: str, key: str, value: str, problems: Problems) -> None:
    """A *_env key names a variable; never echo a value that may be the secret itself."""
    if not ENV_NAME.fullmatch(value):
        problems.append(f"{at(section, key)}: must be the name of an environment variable (letters, digits "
                        "and _), not the secret itself")


def _check_newsletter(s: NewsletterSection, at: Origin, problems: Problems) -> None:
    if not _https(s.url):
        problems.append(f"{at('newsletter', 'url')}: must be an absolute https:// URL, got {s.url!r}")
    if s.direction not in ("ltr", "rtl"):
        problems.append(f"{at('newsletter', 'direction')}: must be 'ltr' or 'rtl'")
    if s.subscribe_url and not _https(s.subscribe_url):
        problems.append(f"{at('newsletter', 'subscribe_url')}: must be an https:// URL, got {s.subscribe_url!r}")
    if s.subscribe_mailto and not _address(s.subscribe_mailto):
        problems.append(f"{at('newsletter', 'subscribe_mailto')}: not an address: {s.subscribe_mailto!r}")


def _check_sender(s: SenderSection, at: Origin, problems: Problems) -> None:
    if "@" not in parseaddr(s.from_)[1] or "\n" in s.from_ or "\r" in s.from_:
        problems.append(f"{at('sender', 'from')}: not an address like 'Name <you@example.com>': {s.from_!r}")
    if s.reply_to and "@" not in parseaddr(s.reply_to)[1]:
        problems.append(f"{at('sender', 'reply_to')}: not an address: {s.reply_to!r}")


def _check_delivery(s: DeliverySection, at: Origin, problems: Problems) -> None:
    if s.provider not in PROVIDERS:
        problems.append(f"{at('delivery', 'provider')}: must be one of {', '.join(PROVIDERS)}, got {s.provider!r}")
    if s.unsubscribe_url and not _https(s.unsubscribe_url):
        problems.append(f"{at('delivery', 'unsubscribe_url')}: must be an https:// URL")
    elif s.unsubscribe_url and "{email}" not in s.unsubscribe_url and "{token}" not in s.unsubscribe_url:
        problems.append(f"{at('delivery', 'unsubscribe_url')}: must contain {{email}} and/or {{token}}")
    if s.unsubscribe_mailto and not _address(s.unsubscribe_mailto):
        problems.append(f"{at('delivery', 'unsubscribe_mailto')}: not an address: {s.unsubscribe_mailto!r}")
    _env_name(at, "delivery", "unsubscribe_secret_env", s.unsubscribe_secret_env, problems)


def _check_sendgrid(s: SendGridSection, at: Origin, problems: Problems) -> None:
    _in_range(at, "sendgrid", "batch_size", s.batch_size, 1, 1000, problems)  # SendGrid's personalizations cap
    _in_range(at, "sendgrid", "concurrency", s.concurrency, 1, 16, problems)
    _timeout(at, "sendgrid", s.timeout, problems)
    if s.unsubscribe_group_id is not None and s.unsubscribe_group_id < 1:
        problems.append(f"{at('sendgrid', 'unsubscribe_group_id')}: must be a group id (1 or more), "
                        f"got {s.unsubscribe_group_id!r}")


def _check_smtp(s: SMTPSection, at: Origin, problems: Problems) -> None:
    if not s.host.strip() or any(c.isspace() for c in s.host):
        problems.append(f"{at('smtp', 'host')}: must be a host name or address, got {s.host!r}")
    _in_range(at, "smtp", "port", s.port, 1, 65535, problems)
    if s.security not in ("starttls", "tls", "none"):
        problems.append(f"{at('smtp', 'security')}: must be starttls, tls or none, got {s.security!r}")
    _timeout(at, "smtp", s.timeout, problems)
    _env_name(at, "smtp", "password_env", s.password_env, problems)
    ca_file = at.path.parent / s.ca_file
    if s.ca_file and not ca_file.is_file():
        problems.append(f"{at('smtp', 'ca_file')}: no such file: {ca_file}")
    if s.return_path:
        _return_path(s, at, problems)
    _in_range(at, "smtp", "connections", s.connections, 1, MAX_SMTP_CONNECTIONS, problems)
    for key in ("max_per_minute", "max_per_day"):
        if getattr(s, key) < 0:
            problems.append(f"{at('smtp', key)}: must be 0 (no limit) or more, got {getattr(s, key)!r}")


def _return_path(s: SMTPSection, at: Origin, problems: Problems) -> None:
    local, _, domain = s.return_path.rpartition("@")
    if not local or not domain or any(c.isspace() or c in '<>()",;' or ord(c) < 32 for c in s.return_path):
        problems.append(f"{at('smtp', 'return_path')}: must be a bare address like bounces@example.com, "
                        f"got {s.return_path!r}")
    elif s.verp and not verp_room(s.return_path):
        problems.append(f"{at('smtp', 'return_path')}: the part before @ is too long for a VERP token "
                        f"(at most {MAX_LOCAL_PART - TOKEN_CHARS - 1} characters with [smtp] verp = true)")


def _check_archive(s: ArchiveSection, at: Origin, problems: Problems) -> None:
    if s.feed_entries < 0:
        problems.append(f"{at('archive', 'feed_entries')}: must be 0 (all issues) or more")


def _check_readers(s: ReadersSection, at: Origin, problems: Problems) -> None:
    if s.url and not (_https(s.url) or _loopback_http(s.url)):
        problems.append(f"{at('readers', 'url')}: must be an https:// URL (http only on 127.0.0.1), got {s.url!r}")
    elif s.url and (urlsplit(s.url).query or urlsplit(s.url).fragment):
        problems.append(f"{at('readers', 'url')}: must be a base URL without ?query or #fragment, got {s.url!r}")
    if s.remote and not s.url:
        problems.append(f"{at('readers', 'remote')}: needs [readers] url, the service to fetch events from")
    _env_name(at, "readers", "token_env", s.token_env, problems)
    _in_range(at, "readers", "confirm_hours", s.confirm_hours, 1, 24 * 30, problems)
    _in_range(at, "readers", "per_address_per_day", s.per_address_per_day, 1, 100, problems)
    _in_range(at, "readers", "per_ip_per_hour", s.per_ip_per_hour, 1, 100_000, problems)
    _in_range(at, "readers", "port", s.port, 1, 65535, problems)
    _in_range(at, "readers", "threads", s.threads, 1, 256, problems)
    _in_range(at, "readers", "trusted_proxies", s.trusted_proxies, 0, 5, problems)
    if not s.host.strip() or any(c.isspace() for c in s.host):
        problems.append(f"{at('readers', 'host')}: must be a host name or address, got {s.host!r}")


def _check_mailbox(s: MailboxSection, at: Origin, problems: Problems) -> None:
    if s.host and any(c.isspace() for c in s.host):
        problems.append(f"{at('mailbox', 'host')}: must be a host name or address, got {s.host!r}")
    _in_range(at, "mailbox", "port", s.port, 1, 65535, problems)
    if s.security not in ("tls", "starttls", "none"):
        problems.append(f"{at('mailbox', 'security')}: must be tls, starttls or none, got {s.security!r}")
    elif s.security == "none" and s.host and s.host not in ("127.0.0.1", "localhost", "::1"):
        problems.append(f"{at('mailbox', 'security')}: none sends the password in clear text; only allowed "
                        f"on 127.0.0.1, not {s.host!r}")
    _env_name(at, "mailbox", "password_env", s.password_env, problems)
    for key in ("folder", "processed_folder"):
        value = getattr(s, key)
        if any(c in value for c in '\r\n\0"') or (key == "folder" and not value.strip()):
            problems.append(f"{at('mailbox', key)}: must be a folder name, got {value!r}")
    if s.processed_folder and s.processed_folder == s.folder:
        problems.append(f"{at('mailbox', 'processed_folder')}: must differ from [mailbox] folder")
    _in_range(at, "mailbox", "soft_bounces", s.soft_bounces, 1, 100, problems)
    _in_range(at, "mailbox", "soft_bounce_days", s.soft_bounce_days, 1, 365, problems)
    _timeout(at, "mailbox", s.timeout, problems)
    if s.ca_file and not (at.path.parent / s.ca_file).is_file():
        problems.append(f"{at('mailbox', 'ca_file')}: no such file: {at.path.parent / s.ca_file}")


def _loopback_http(value: str) -> bool:
    """http:// to this machine: what tests and a service behind a local proxy may use."""
    url = urlsplit(value)
    return url.scheme == "http" and (url.hostname or "") in ("127.0.0.1", "localhost", "::1")


def _check_nothing(s: object, at: Origin, problems: Problems) -> None:
    """[subscribers] file is checked where it is read."""


SECTION_CHECKS: dict[str, Callable[[Any, Origin, Problems], None]] = {
    "newsletter": _check_newsletter, "sender": _check_sender, "subscribers": _check_nothing,
    "delivery": _check_delivery, "sendgrid": _check_sendgrid, "smtp": _check_smtp, "archive": _check_archive,
    "readers": _check_readers, "mailbox": _check_mailbox,
}
