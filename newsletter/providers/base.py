"""The Protocol every way out follows, and what passes through it.

A provider takes a batch of recipients and reports, as it goes, what became of each one:
*sent* (with the provider's message id), *failed* (with the reason), or *in doubt* when it
cannot know whether the message was accepted (a timeout or a connection lost after the
request went out). The send loop writes those reports to the ledger; a provider never
touches the ledger, the subscriber list or the environment. Credentials come in through
constructors. Retries are in providers.retry; choosing a provider is the package's face.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.models import Recipient, RenderedEmail


class State(StrEnum):
    """What became of a recipient, as a provider reports it and the ledger records it.

    The on-disk word for "in doubt" is "pending": the ledger records it just before the hand-off.
    """

    SENT = "sent"
    FAILED = "failed"
    IN_DOUBT = "pending"  # handed over (or about to be), no answer yet: may have been accepted
    UNSENT = "unsent"  # never handed over after all (the send loop's word, never a provider's)


@dataclass(frozen=True)
class Credentials:
    """Secrets read from the environment by the CLI; never printed (repr hides them)."""

    sendgrid_api_key: str = field(default="", repr=False)
    smtp_password: str = field(default="", repr=False)
    unsubscribe_secret: str = field(default="", repr=False)
    readers_token: str = field(default="", repr=False)  # the reader service's events (send pulls first)


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
    key: str = ""  # the same-address key the ledger records, when the planner worked it out already


@dataclass(frozen=True)
class Outcome:
    """What became of some recipients: sent, failed or in doubt."""

    emails: tuple[str, ...]
    state: State
    detail: str = ""  # the provider's message id when sent, the reason otherwise


Report = Callable[[Outcome], None]


def on_disk() -> None:
    """`durable` for a hand-off whose in-doubt record was on disk before deliver() was called."""


class Provider(Protocol):
    """A way out: everything the send loop may ask of one.

    deliver() calls report() for every recipient of the batch, exactly once. It raises
    ProviderError only when the whole send must stop (a refused key, a server that cannot be
    reached at all); recipients it has not reported on by then were not handed over. A message
    it cannot build for one recipient is that recipient's FAILED outcome (catch RecipientError),
    never an exception. The send loop calls deliver() with `handoff_size` recipients at a time
    (SMTP and the outbox: one, each recorded in doubt just before; SendGrid: the whole batch).

    With `concurrency` N above 1, the send loop makes up to N deliver() calls at once, from N
    worker threads, each with its own `slot` (0..N-1: per-slot state such as a connection is
    never shared by two calls at once); report() may then be called from those threads. It may
    start a call while the hand-off's in-doubt record is still being synced to disk, and then
    passes `durable`: the provider calls it just before the point of no return (an SMTP
    message's data, a SendGrid request), and it returns once the record is on disk (it raises
    ProviderError if it never will be). Everything before that point may overlap the fsync.
    """

    name: str
    batch_size: int  # recipients per batch: the unit of progress (and of SendGrid's requests)
    handoff_size: int | None  # recipients per deliver() call; None: the whole batch
    concurrency: int  # deliver() calls in flight at once (1: one at a time)

    def prepare(self, letter: Letter, batch: Sequence[Outgoing], remaining: int) -> None:
        """Start work on the next batch while this one is out (a no-op where nothing is gained)."""

    def deliver(self, letter: Letter, batch: Sequence[Outgoing], report: Report, *, slot: int = 0,
                durable: Callable[[], None] = on_disk) -> None: ...

    def create_batch(self) -> str:
        """A batch id under which a scheduled send can be cancelled (ProviderError if it cannot schedule)."""
        ...

    def close(self) -> None: ...
