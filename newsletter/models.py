"""Plain data passed between the modules. Imports nothing of ours."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class IssueStatus(StrEnum):
    """An issue's `status:` in its front matter."""

    DRAFT = "draft"
    READY = "ready"
    SENT = "sent"


class SubscriberStatus(StrEnum):
    """A subscriber's status column in the list."""

    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class ProviderName(StrEnum):
    """The ways out: [delivery] provider and the CLI's --provider (newsletter.providers builds each)."""

    OUTBOX = "outbox"
    SENDGRID = "sendgrid"
    SMTP = "smtp"


ISSUE_STATUSES = tuple(status.value for status in IssueStatus)  # plain strings, in this order in messages
SUBSCRIBER_STATUSES = tuple(status.value for status in SubscriberStatus)
PROVIDERS = tuple(name.value for name in ProviderName)  # the one list of provider names
PUBLISHED_STATUSES = (IssueStatus.READY.value, IssueStatus.SENT.value)  # what `newsletter archive` publishes


def now_iso() -> str:
    """The current time as the list and the ledger write it: ISO 8601, UTC, to the second."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Issue:
    """One essay from issues/: its front matter and its Markdown body."""

    path: Path
    title: str
    date: dt.date
    slug: str
    status: str
    body: str
    body_line: int  # line number in the file where the Markdown body starts
    subtitle: str = ""
    preheader: str = ""
    subject: str = ""
    author: str = ""

    @property
    def effective_subject(self) -> str:
        return self.subject or self.title

    @property
    def effective_preheader(self) -> str:
        return self.preheader or self.subtitle


@dataclass(slots=True)
class Subscriber:
    """One row of the subscriber CSV. `extra` keeps the writer's own columns, in order.

    Treat it as a value (change one with dataclasses.replace). It is not frozen because a frozen
    dataclass's __init__ alone costs a third of loading a million-row list; slots halve its memory.
    Rows without extra columns share one empty read-only mapping.
    """

    email: str
    name: str = ""
    status: str = "active"
    tags: tuple[str, ...] = ()
    created_at: str = ""
    updated_at: str = ""
    source: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else ""


@dataclass(frozen=True)
class Recipient:
    """The per-recipient values filled into a rendered email after rendering."""

    email: str
    name: str = ""
    unsubscribe_url: str = ""

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else ""


@dataclass(frozen=True)
class CheckResult:
    """One preflight finding. level is 'error', 'warning' or 'ok'."""

    level: str
    code: str
    message: str


@dataclass(frozen=True)
class RenderedEmail:
    """An issue rendered once, CSS inlined, with per-recipient placeholders still in it.

    The placeholders (see render.PLACEHOLDERS) are plain ASCII tokens that survive
    autoescaping and CSS inlining; message.personalize fills them for one recipient.
    """

    slug: str
    subject: str
    preheader: str
    html: str
    text: str
    web_url: str
    links: tuple[str, ...] = ()
    images: tuple[tuple[str, str, str], ...] = ()  # (src, alt, width as written)
    problems: tuple[str, ...] = ()  # found while rendering, reported by the checks
    link_texts: tuple[str, ...] = ()  # the visible text of each link, in order
    refs: tuple[tuple[str, str, str], ...] = ()  # every a/img address: (tag, as written, as resolved)


@dataclass
class SendReport:
    """What a send did, for the CLI to present."""

    slug: str
    provider: str
    sent: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # email -> reason
    in_doubt: list[str] = field(default_factory=list)
    dry_run: bool = False
    batches: int = 0
    test: bool = False  # a --test send: nothing recorded in the ledger
    rehearsal: bool = False  # an outbox run: files written, nothing delivered, the issue's status untouched
    failed_before: int = 0  # failed in an earlier run and not retried in this one
    stopped: str = ""  # why the send stopped early (a refused key, Ctrl-C); "" if it ran to the end
    not_attempted: int = 0  # recipients never handed over because the send stopped
    left_for_later: int = 0  # recipients left out by --limit
    left_for_tomorrow: int = 0  # recipients left out by [smtp] max_per_day: the same command sends them later
    scheduled_for: str = ""  # ISO time of a SendGrid scheduled send
    marked_sent: bool = False  # the issue's front matter status became "sent"
    elapsed: float = 0.0  # seconds
