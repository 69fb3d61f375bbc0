"""The ways out: a small Protocol, what passes through it, retries, and one factory.

A provider takes a batch of recipients and reports, as it goes, what became of each one:
*sent* (with the provider's message id), *failed* (with the reason), or *pending* when it
cannot know whether the message was accepted (a timeout or a connection lost after the
request went out). The send loop writes those reports to the ledger; a provider never
touches the ledger, the subscriber list or the environment. Credentials come in through
constructors.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from newsletter.errors import ProviderError

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.models import Recipient, RenderedEmail

T = TypeVar("T")
SENT, FAILED, PENDING = "sent", "failed", "pending"


@dataclass(frozen=True)
class Credentials:
    """Secrets read from the environment by the CLI; never printed (repr hides them)."""

    sendgrid_api_key: str = field(default="", repr=False)
    smtp_password: str = field(default="", repr=False)
    unsubscribe_secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class Letter:
    """What every recipient of one send gets before personalisation: rendered once."""

    rendered: RenderedEmail
    settings: Settings
    secret: str = field(default="", repr=False)  # for unsubscribe tokens in List-Unsubscribe
    subject_prefix: str = ""
    send_at: int | None = None  # unix seconds (SendGrid scheduling)
    batch_id: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """One recipient of a batch, with its 1-based place in the whole send (for file names)."""

    number: int
    recipient: Recipient


@dataclass(frozen=True)
class Outcome:
    """What became of some recipients: state is sent, failed or pending (in doubt)."""

    emails: tuple[str, ...]
    state: str
    detail: str = ""  # the provider's message id when sent, the reason otherwise


Report = Callable[[Outcome], None]


class Provider(Protocol):
    """A way out. deliver() calls report() for every recipient of the batch, exactly once.

    It raises ProviderError only when the whole send must stop (a refused key, a server that
    cannot be reached at all); recipients it has not reported on by then were not handed over.
    A message it cannot build for one recipient is that recipient's FAILED outcome (catch
    RecipientError), never an exception. The send loop may call deliver() with part of a batch
    (SMTP and the outbox get one recipient a call, each recorded pending just before).
    """

    name: str
    batch_size: int

    def deliver(self, letter: Letter, batch: Sequence[Outgoing], report: Report) -> None: ...

    def close(self) -> None: ...


class Transient(Exception):
    """The request did not take effect (a 5xx answer, no connection): safe to try again."""


class RateLimited(Transient):
    """A 429: try again after `wait` seconds."""

    def __init__(self, message: str, wait: float | None) -> None:
        super().__init__(message)
        self.wait = wait


class InDoubt(Exception):
    """The request went out but no answer came back: it may have been accepted."""


class Exhausted(Exception):
    """A transient failure outlasted the retries."""


@dataclass
class RetryPolicy:
    """Exponential backoff with jitter for transient failures; patience for rate limits."""

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_rate_wait: float = 600.0  # one 429 never makes us wait longer than this
    max_rate_limits: int = 50  # 429s in a row for one request before giving up
    sleep: Callable[[float], None] = time.sleep
    on_wait: Callable[[float, str], None] = lambda seconds, why: None

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based): half fixed, half jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def call(self, fn: Callable[[], T]) -> T:
        """Run fn, retrying Transient failures; raise Exhausted when the retries run out."""
        failures = limits = 0
        while True:
            try:
                return fn()
            except RateLimited as exc:
                limits += 1
                if limits > self.max_rate_limits:
                    raise Exhausted(f"{exc} ({limits} times in a row)") from None
                wait = exc.wait if exc.wait is not None else self.backoff(min(limits, 6))
                self._wait(min(max(wait, 0.0), self.max_rate_wait), str(exc))
            except Transient as exc:
                failures += 1
                if failures >= self.attempts:
                    raise Exhausted(f"{exc} (after {failures} attempts)") from None
                self._wait(self.backoff(failures), str(exc))

    def _wait(self, seconds: float, why: str) -> None:
        self.on_wait(seconds, why)
        self.sleep(seconds)


PROVIDER_NAMES = ("outbox", "sendgrid", "smtp")


def make_provider(settings: Settings, credentials: Credentials, policy: RetryPolicy | None = None,
                  *, test_send: bool = False) -> Provider:
    """Map Settings ([delivery] provider and its section) to a ready provider."""
    name = settings.delivery.provider
    policy = policy or RetryPolicy()
    if name == "sendgrid":
        from newsletter.providers.sendgrid.provider import SendGridProvider

        return SendGridProvider.from_settings(settings, credentials.sendgrid_api_key, policy)
    if name == "smtp":
        from newsletter.providers.smtp import SMTPProvider

        return SMTPProvider.from_settings(settings, credentials.smtp_password, policy)
    if name == "outbox":
        from newsletter.providers.outbox import OutboxProvider

        return OutboxProvider.from_settings(settings, test_send=test_send)
    raise ProviderError(f"{settings.config_path}: [delivery] provider: unknown provider {name!r}")


def missing_credentials(settings: Settings, credentials: Credentials) -> ProviderError | None:
    """The error to raise before anything goes out when the chosen provider lacks a secret."""
    name = settings.delivery.provider
    if name == "sendgrid" and not credentials.sendgrid_api_key:
        return ProviderError("SENDGRID_API_KEY is not set: the sendgrid provider needs an API key",
                             hint="export SENDGRID_API_KEY=... (a key with the Mail Send permission)")
    if name == "smtp" and settings.smtp.username and not credentials.smtp_password:
        env = settings.smtp.password_env
        return ProviderError(f"{env} is not set: [smtp] username is {settings.smtp.username!r} "
                             "but there is no password", hint=f"export {env}=... or leave username empty")
    return None
