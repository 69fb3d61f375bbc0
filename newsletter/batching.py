"""The batch loop of a send: pending before the hand-off, every outcome as it comes.

A batch is recorded *pending* (fsynced) before the provider sees it. The provider then
reports each recipient; those reports are appended at once and fsynced when the batch ends,
so a SIGKILL loses none of them and a power cut can at worst turn a *sent* back into *in
doubt*, never the reverse. When the provider stops the whole send (a refused key), the
recipients it never took are recorded *unsent*, not left in doubt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from newsletter.errors import ProviderError
from newsletter.ledger import LedgerWriter, key
from newsletter.models import SendReport
from newsletter.providers import FAILED, PENDING, SENT, Letter, Outcome, Outgoing, Provider


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

    def record(self, event: str, batch: int, keys: Sequence[str], detail: str = "", *,
               durable: bool = False) -> None:
        """Append one ledger record for these ledger keys (nothing for a test send)."""
        if self.writer is not None and keys:
            self.writer.recipients(event, self.run, batch, keys, detail, durable=durable)

    def outcome(self, batch: int, outcome: Outcome, keys: Sequence[str]) -> None:
        """Record and count what the provider reported."""
        self.record(outcome.state, batch, keys, outcome.detail)
        if outcome.state == SENT:
            self.report.sent += len(outcome.emails)
        elif outcome.state == FAILED:
            self.report.failed.update(dict.fromkeys(outcome.emails, outcome.detail))
        elif outcome.state == PENDING:
            self.report.in_doubt.extend(outcome.emails)

    def sync(self) -> None:
        """fsync the ledger (the end of a batch)."""
        if self.writer is not None:
            self.writer.sync()


def deliver_all(batches: Sequence[Sequence[Outgoing]], provider: Provider, letter: Letter, recorder: Recorder,
                on_batch: Callable[[BatchProgress], None]) -> None:
    """Hand each batch to the provider in turn; stop early only when the provider says so."""
    report = recorder.report
    for number, batch in enumerate(batches, start=1):
        emails = {key(o.recipient.email): o.recipient.email for o in batch}
        recorder.record("pending", number, list(emails), durable=True)  # on disk before the hand-off
        counts: Counter[str] = Counter()
        done: set[str] = set()
        unsent: list[str] = []

        def report_one(outcome: Outcome, number: int = number, counts: Counter[str] = counts,
                       done: set[str] = done) -> None:
            keys = [key(e) for e in outcome.emails]
            recorder.outcome(number, outcome, keys)
            counts[outcome.state] += len(keys)
            done.update(keys)

        if number < len(batches) and hasattr(provider, "prepare"):  # the next batch, while this one is out
            provider.prepare(letter, batches[number], len(batches) - number)
        try:
            provider.deliver(letter, batch, report_one)
        except ProviderError as exc:
            report.stopped = str(exc) + (f" (hint: {exc.hint})" if exc.hint else "")
            # Never handed over: back to "not sent", so a rerun sends them without any flag.
            unsent = [k for k in emails if k not in done]
            recorder.record("unsent", number, unsent, str(exc))
        except KeyboardInterrupt:
            report.stopped = "interrupted"
            report.in_doubt.extend(v for k, v in emails.items() if k not in done)  # may be in flight
        else:
            # A recipient the provider did not report on stays pending: in doubt, never resent silently.
            report.in_doubt.extend(v for k, v in emails.items() if k not in done)
        finally:
            recorder.sync()
        on_batch(BatchProgress(number, len(batches), len(batch), counts[SENT], counts[FAILED], counts[PENDING]))
        if report.stopped:
            report.not_attempted = len(unsent) + sum(len(b) for b in batches[number:])
            return
