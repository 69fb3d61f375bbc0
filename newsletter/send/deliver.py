"""The batch loop of a send: in doubt before the hand-off, every outcome as it comes.

Each hand-off (one message for SMTP and the outbox, one request for SendGrid) is recorded
in doubt ("pending", fsynced) just before the provider makes it, so a SIGKILL leaves in doubt only what
was in flight. The provider then reports each recipient; those reports are appended at once
(the next pending's fsync, or the batch's end, makes them durable), so a SIGKILL loses none of
them and a power cut can at worst turn a *sent* back into *in doubt*, never the reverse.
Batches remain the unit of progress and of SendGrid's requests. When the provider stops the
whole send (a refused key), the recipients it never took are recorded *unsent*, not left in doubt.

A provider with `concurrency` N above 1 gets a window (_Window): up to N hand-offs in flight at
once, those entering it recorded in doubt together (one fsync) before any of them starts, each
outcome recorded as it comes, in any order. The calling thread stays the ledger's only writer;
N worker threads, one per slot, queue what the provider reports. A ProviderError in any slot stops
new hand-offs: those in flight finish and are recorded, those that never started become *unsent*.
Ctrl-C (or SIGKILL) leaves at most the window's hand-offs in doubt.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from newsletter.errors import ProviderError, RecipientError
from newsletter.models import SendReport
from newsletter.providers.base import Letter, Outcome, Outgoing, Provider, Report, State, on_disk
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
    if getattr(provider, "concurrency", 1) > 1:
        _Window(provider, letter, recorder, on_batch).run(batches)
        return
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
    keys = _keys(unit)
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


class _Synced:
    """A group's in-doubt record reaching the disk: providers wait for it at their point of no return."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._error: BaseException | None = None

    def wait(self) -> None:
        """Return once the record is on disk; raise ProviderError when it never will be."""
        self._done.wait()
        if self._error is not None:
            raise ProviderError(f"the ledger could not be written, so nothing more is handed over: {self._error}")

    def settle(self, error: BaseException | None = None) -> None:
        self._error = error
        self._done.set()


@dataclass(eq=False)
class _Unit:
    """One hand-off of the window: its batch, its recipients, and who has been reported on."""

    number: int
    outs: Sequence[Outgoing]
    keys: dict[str, str]  # address as given -> ledger key, computed once
    done: set[str] = field(default_factory=set)
    started: bool = False
    synced: _Synced | None = None  # its group's in-doubt record on disk (None: before it was handed over)


@dataclass(eq=False)
class _Finished:
    """A slot is done with a unit: how it ended (None: normally), or that it never started."""

    error: BaseException | None
    started: bool = True


@dataclass(eq=False)
class _Batch:
    """A batch's progress while its units are in the window."""

    number: int
    size: int
    units: int
    counts: Counter[State] = field(default_factory=Counter)
    finished: int = 0
    entered: bool = False
    shown: bool = False


Event = tuple[_Unit, Outcome | _Finished]


class _Window:
    """Up to `provider.concurrency` hand-offs in flight, one worker thread per slot."""

    def __init__(self, provider: Provider, letter: Letter, recorder: Recorder,
                 on_batch: Callable[[BatchProgress], None]) -> None:
        self.provider, self.letter, self.recorder, self.on_batch = provider, letter, recorder, on_batch
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.lock = threading.Lock()  # `stopping` and each unit's `started` change together
        self.stopping = False
        self.free = list(range(provider.concurrency))[::-1]
        self.inboxes: list[queue.SimpleQueue[_Unit | None]] = [queue.SimpleQueue() for _ in self.free]
        self.in_flight: dict[int, _Unit] = {}  # id(unit) -> unit, with its slot in `slot_of`
        self.slot_of: dict[int, int] = {}
        self.progress: dict[int, _Batch] = {}
        self.total = 0

    def run(self, batches: Sequence[Sequence[Outgoing]]) -> None:
        """Send every batch through the window; stop early only on a ProviderError or Ctrl-C."""
        for slot in range(len(self.inboxes)):
            threading.Thread(target=self._work, args=(slot,), name=f"newsletter-slot-{slot}", daemon=True).start()
        self.total = len(batches)
        units = self._units(batches)
        left = sum(len(b) for b in batches)  # recipients not yet in the window
        try:
            while True:
                left -= self._enter(units)
                if not self.in_flight:
                    break
                self._handle(self._next_event())
                while True:  # whatever else has come in, before the next group enters
                    try:
                        self._handle(self.events.get_nowait())
                    except queue.Empty:
                        break
        except KeyboardInterrupt:
            self._abandon("interrupted")
        except BaseException:
            self._abandon("")
            raise
        finally:
            for inbox in self.inboxes:
                inbox.put(None)
            self.recorder.sync()
            self._show_the_rest()
        if self.recorder.report.stopped:
            self.recorder.report.not_attempted += left

    def _units(self, batches: Sequence[Sequence[Outgoing]]) -> Iterator[_Unit]:
        size, ahead, prepared = self.provider.handoff_size, len(self.inboxes), 0
        for number, batch in enumerate(batches, start=1):
            step = size or len(batch) or 1
            self.progress[number] = _Batch(number, len(batch), -(-len(batch) // step), entered=True)
            if not batch:
                self._batch_done(self.progress[number])
            # The next batches, while these are out: as many ahead as there are slots.
            for following in range(max(prepared, number), min(len(batches), number + ahead)):
                self.provider.prepare(self.letter, batches[following], len(batches) - following)
                prepared = following + 1
            for start in range(0, len(batch), step):
                outs = batch[start:start + step]
                yield _Unit(number, outs, _keys(outs))

    def _enter(self, units: Iterator[_Unit]) -> int:
        """Fill the free slots: record the group in doubt with one fsync, then start it; return its size.

        The group starts as soon as its record is written, and the fsync runs meanwhile: each
        provider waits for it (`durable`) before its point of no return, so what comes before
        (an SMTP envelope, taking a SendGrid body) overlaps it, and the group is on disk before
        anything of it can be delivered. The outcomes recorded before it reach the disk with it.
        """
        group: list[_Unit] = []
        while self.free and len(group) < len(self.free) and not self.stopping:
            unit = next(units, None)
            if unit is None:
                break
            group.append(unit)
        if not group:
            return 0
        synced = _Synced()
        for unit in group:
            self.recorder.record(State.IN_DOUBT, unit.number, list(unit.keys.values()))
            unit.synced = synced
        for unit in group:
            slot = self.free.pop()
            self.in_flight[id(unit)], self.slot_of[id(unit)] = unit, slot
            self.inboxes[slot].put(unit)
        try:
            self.recorder.sync()
        except BaseException as exc:
            synced.settle(exc)
            raise
        synced.settle()
        return sum(len(u.outs) for u in group)

    def _work(self, slot: int) -> None:
        """A worker: deliver each unit put in this slot's inbox, queueing every report for the ledger."""
        inbox = self.inboxes[slot]
        while (unit := inbox.get()) is not None:
            with self.lock:
                unit.started = not self.stopping
            if not unit.started:
                self.events.put((unit, _Finished(None, started=False)))
                continue
            error: BaseException | None = None
            try:
                durable = unit.synced.wait if unit.synced is not None else on_disk
                self.provider.deliver(self.letter, unit.outs, self._reporter(unit), slot=slot, durable=durable)
            except BaseException as exc:  # noqa: BLE001 - the main thread decides (a bug is re-raised there)
                error = exc
            self.events.put((unit, _Finished(error)))

    def _reporter(self, unit: _Unit) -> Report:
        """report() for a slot: queue the outcome for the main thread, the ledger's only writer."""
        return lambda outcome: self.events.put((unit, outcome))

    def _next_event(self) -> Event:
        while True:
            try:  # a timeout, so that Ctrl-C is seen even while every slot waits on the network
                return self.events.get(timeout=0.25)
            except queue.Empty:
                continue

    def _handle(self, event: Event) -> None:
        unit, what = event
        if isinstance(what, Outcome):
            self._outcome(unit, what)
            return
        del self.in_flight[id(unit)]
        self.free.append(self.slot_of.pop(id(unit)))
        self._finished(unit, what)
        batch = self.progress[unit.number]
        batch.finished += 1
        if batch.finished == batch.units:
            self._batch_done(batch)

    def _outcome(self, unit: _Unit, outcome: Outcome) -> None:
        ks = [unit.keys.get(e) or email_key(e.strip()) for e in outcome.emails]
        self.recorder.outcome(unit.number, outcome, ks)
        self.progress[unit.number].counts[outcome.state] += len(ks)
        unit.done.update(ks)

    def _finished(self, unit: _Unit, end: _Finished) -> None:
        """What a unit's end means for those of its recipients nobody reported on (see _hand_over)."""
        report = self.recorder.report
        error = end.error
        if not end.started or isinstance(error, ProviderError):
            if isinstance(error, ProviderError) and not report.stopped:
                report.stopped = str(error) + (f" (hint: {error.hint})" if error.hint else "")
                self._stop()
            unsent = [k for k in unit.keys.values() if k not in unit.done]  # never handed over
            self.recorder.record(State.UNSENT, unit.number, unsent, str(error or report.stopped))
            report.not_attempted += len(unsent)
        elif isinstance(error, RecipientError):
            for email, k in unit.keys.items():
                if k not in unit.done:
                    self._outcome(unit, Outcome((email,), State.FAILED, str(error)))
        elif error is not None:  # Ctrl-C in a slot, or a bug: run() records the rest and stops
            report.in_doubt.extend(e for e, k in unit.keys.items() if k not in unit.done)
            raise error
        else:
            report.in_doubt.extend(e for e, k in unit.keys.items() if k not in unit.done)

    def _stop(self) -> None:
        with self.lock:
            self.stopping = True

    def _abandon(self, why: str) -> None:
        """Stop at once (Ctrl-C or a bug): what never started is unsent, what is in flight stays in doubt."""
        report = self.recorder.report
        if why and not report.stopped:
            report.stopped = why
        self._stop()
        while True:  # what already came in is worth recording
            try:
                unit, what = self.events.get_nowait()
            except queue.Empty:
                break
            if isinstance(what, Outcome) and id(unit) in self.in_flight:
                self._outcome(unit, what)
        for unit in self.in_flight.values():
            unreported = [(e, k) for e, k in unit.keys.items() if k not in unit.done]
            if unit.started:
                report.in_doubt.extend(e for e, _ in unreported)  # may be in flight
            else:  # it never will start now (`stopping` is set under the lock)
                self.recorder.record(State.UNSENT, unit.number, [k for _, k in unreported], "not started")
                report.not_attempted += len(unreported)
        self.in_flight.clear()

    def _batch_done(self, batch: _Batch) -> None:
        batch.shown = True
        self.on_batch(BatchProgress(batch.number, self.total, batch.size,
                                    batch.counts[State.SENT], batch.counts[State.FAILED],
                                    batch.counts[State.IN_DOUBT]))

    def _show_the_rest(self) -> None:
        """The batches a stop cut short are still shown."""
        for batch in sorted(self.progress.values(), key=lambda b: b.number):
            if not batch.shown and batch.entered:
                self._batch_done(batch)


def _keys(outs: Sequence[Outgoing]) -> dict[str, str]:
    """Address -> the same-address key the ledger records (the planner's, else worked out here)."""
    return {o.recipient.email: o.key or email_key(o.recipient.email.strip()) for o in outs}
