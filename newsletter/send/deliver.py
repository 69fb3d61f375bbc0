"""The batch loop of a send: in doubt before the hand-off, every outcome as it comes.

Each hand-off (one message for SMTP and the outbox, one request for SendGrid) is recorded
in doubt ("pending", fsynced) just before the provider makes it, so a SIGKILL leaves in doubt only what
was in flight. The provider then reports each recipient; those reports are appended at once
(the next pending's fsync, or the batch's end, makes them durable), so a SIGKILL loses none of
them and a power cut can at worst turn a *sent* back into *in doubt*, never the reverse.
Batches remain the unit of progress and of SendGrid's requests. When the provider stops the
whole send (a refused key), the recipients it never took are recorded *unsent*, not left in doubt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from newsletter.errors import ProviderError, RecipientError
from newsletter.models import SendReport
from newsletter.providers.base import Letter, Outcome, Outgoing, Provider, State
from newsletter.send.ledger import LedgerWriter
from newsletter.subscribers.schema import email_key


@dataclass
class BatchProgress:
    """One finished batch, for the progress display."""

    number: int
    total: int
    size: int
    sent: int
    failed: int
    in_doubt: int


@dataclass
class SendEvents:
    """Callbacks through which the CLI shows progress; the library never prints."""

    on_batch: Callable[[BatchProgress], None] = lambda progress: None
    on_wait: Callable[[float, str], None] = lambda seconds, why: None


class Recorder:
    """Tallies outcomes into the SendReport and, for a recorded send, appends them to the ledger."""

    def __init__(self, report: SendReport, writer: LedgerWriter | None = None, run: str = "") -> None:
        self.report = report
        self.writer = writer
        self.run = run

    def record(self, state: State, batch: int, keys: Sequence[str], detail: str = "", *,
               durable: bool = False) -> None:
        """Append one ledger record for these ledger keys (nothing for a test send)."""
        if self.writer is not None and keys:
            self.writer.recipients(state, self.run, batch, keys, detail, durable=durable)

    def outcome(self, batch: int, outcome: Outcome, keys: Sequence[str]) -> None:
        """Record and count what the provider reported."""
        self.record(outcome.state, batch, keys, outcome.detail)
        if outcome.state == State.SENT:
            self.report.sent += len(outcome.emails)
        elif outcome.state == State.FAILED:
            self.report.failed.update(dict.fromkeys(outcome.emails, outcome.detail))
        elif outcome.state == State.IN_DOUBT:
            self.report.in_doubt.extend(outcome.emails)

    def sync(self) -> None:
        """fsync the ledger (the end of a batch)."""
        if self.writer is not None:
            self.writer.sync()


def deliver_all(batches: Sequence[Sequence[Outgoing]], provider: Provider, letter: Letter, recorder: Recorder,
                on_batch: Callable[[BatchProgress], None]) -> None:
    """Hand each batch to the provider, its `handoff_size` recipients at a time (None: the whole batch).

    Each hand-off is recorded pending, on disk, just before it, so a crash leaves in doubt only
    the hand-off in flight. The send stops early only when the provider says so (or Ctrl-C).
    """
    report = recorder.report
    for number, batch in enumerate(batches, start=1):
        if number < len(batches):  # the next batch, while this one is out
            provider.prepare(letter, batches[number], len(batches) - number)
        counts: Counter[State] = Counter()
        size = provider.handoff_size or len(batch) or 1
        not_attempted = 0
        try:
            for start in range(0, len(batch), size):
                not_attempted = _hand_over(provider, letter, batch[start:start + size], recorder, number, counts)
                if report.stopped:
                    not_attempted += max(0, len(batch) - start - size)  # the rest of this batch
                    break
        finally:
            recorder.sync()
        on_batch(BatchProgress(number, len(batches), len(batch), counts[State.SENT], counts[State.FAILED],
                               counts[State.IN_DOUBT]))
        if report.stopped:
            report.not_attempted = not_attempted + sum(len(b) for b in batches[number:])
            return


def _hand_over(provider: Provider, letter: Letter, unit: Sequence[Outgoing], recorder: Recorder, number: int,
               counts: Counter[State]) -> int:
    """Record one hand-off in doubt, make it, record what became of each; return how many never went."""
    report = recorder.report
    keys = {o.recipient.email: email_key(o.recipient.email.strip()) for o in unit}
    recorder.record(State.IN_DOUBT, number, list(keys.values()), durable=True)  # on disk before the hand-off
    done: set[str] = set()

    def report_one(outcome: Outcome) -> None:
        ks = [keys.get(e) or email_key(e.strip()) for e in outcome.emails]
        recorder.outcome(number, outcome, ks)
        counts[outcome.state] += len(ks)
        done.update(ks)

    try:
        provider.deliver(letter, unit, report_one)
    except RecipientError as exc:
        # A provider let one recipient's error out: nothing of theirs went; they fail, the send goes on.
        for email, k in keys.items():
            if k not in done:
                report_one(Outcome((email,), State.FAILED, str(exc)))
    except ProviderError as exc:
        report.stopped = str(exc) + (f" (hint: {exc.hint})" if exc.hint else "")
        # Never handed over: back to "not sent", so a rerun sends them without any flag.
        unsent = [k for k in keys.values() if k not in done]
        recorder.record(State.UNSENT, number, unsent, str(exc))
        return len(unsent)
    except KeyboardInterrupt:
        report.stopped = "interrupted"
        report.in_doubt.extend(e for e, k in keys.items() if k not in done)  # may be in flight
    else:
        # A recipient the provider did not report on stays in doubt: never resent silently.
        report.in_doubt.extend(e for e, k in keys.items() if k not in done)
    return 0
