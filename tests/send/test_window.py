"""The window of hand-offs in flight (send.deliver with a provider whose concurrency is above 1).

A scripted provider, driven from its worker threads, shows each promise on the ledger on disk:
the group entering the window is in doubt, with one fsync, before any of it starts; outcomes are
recorded as they come, in any order; a ProviderError in one slot lets those in flight finish and
returns the never-started to unsent; Ctrl-C leaves at most the window in doubt.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from newsletter.errors import ProviderError, RecipientError
from newsletter.models import SendReport
from newsletter.providers import Letter, Outcome, Outgoing, Report, State
from newsletter.providers.base import on_disk
from newsletter.send.deliver import BatchProgress
from newsletter.send.ledger import LedgerWriter, read_ledger
from tests.helpers import ledger_states, loop_send, people

Script = Callable[[str, Report], None]


def sends(email: str, report: Report) -> None:
    report(Outcome((email,), State.SENT, f"id-{email}"))


def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class CountingWriter(LedgerWriter):
    """A LedgerWriter that counts its fsyncs."""

    syncs = 0

    def sync(self) -> None:
        self.syncs += 1
        super().sync()


class WindowProvider:
    """Follows `script` per address from up to `concurrency` threads; checks what a slot may rely on."""

    name = "scripted"

    def __init__(self, ledger: Path, script: Script = sends, *, concurrency: int = 4, batch_size: int = 1,
                 handoff_size: int | None = None) -> None:
        self.ledger, self.script = ledger, script
        self.concurrency, self.batch_size, self.handoff_size = concurrency, batch_size, handoff_size
        self.lock = threading.Lock()
        self.busy: set[int] = set()
        self.started: list[str] = []
        self.slot_clash = False
        self.in_doubt_at_start: list[set[str]] = []  # what the ledger on disk said was in doubt, at each start
        self.writer: CountingWriter | None = None
        self.syncs_at_start: list[int] = []
        self.syncs_at_entry: list[int] = []  # before durable(): the fsync may still be running

    def prepare(self, letter: Letter, batch: Sequence[Outgoing], remaining: int) -> None:
        pass

    def deliver(self, letter: Letter, batch: Sequence[Outgoing], report: Report, *, slot: int = 0,
                durable: Callable[[], None] = on_disk) -> None:
        self.syncs_at_entry.append(self.writer.syncs if self.writer else 0)
        durable()  # the point of no return: what is observed below is what a real provider would rely on
        emails = [o.recipient.email for o in batch]
        with self.lock:
            self.slot_clash |= slot in self.busy or not 0 <= slot < self.concurrency
            self.busy.add(slot)
            self.started.extend(emails)
            self.in_doubt_at_start.append(set(read_ledger(self.ledger).in_doubt()))
            self.syncs_at_start.append(self.writer.syncs if self.writer else 0)
        try:
            for email in emails:
                self.script(email, report)
        finally:
            with self.lock:
                self.busy.discard(slot)

    def create_batch(self) -> str:
        raise ProviderError("cannot schedule")

    def close(self) -> None:
        pass


def run(tmp_path: Path, provider: WindowProvider, emails: list[str],
        report: SendReport | None = None) -> tuple[SendReport, list[BatchProgress]]:
    provider.writer = CountingWriter(tmp_path / "x.jsonl")
    return loop_send(provider.writer, provider, emails, report)


def states(tmp_path: Path) -> dict[str, State]:
    return ledger_states(tmp_path / "x.jsonl")


@pytest.mark.parametrize("concurrency", [4, 16])
def test_the_group_entering_the_window_is_on_disk_in_doubt_with_one_fsync_before_any_of_it_starts(
        tmp_path: Path, concurrency: int) -> None:
    gate = threading.Event()

    def held_until_the_window_is_full(email: str, report: Report) -> None:
        gate.wait(10)
        sends(email, report)

    provider = WindowProvider(tmp_path / "x.jsonl", held_until_the_window_is_full, concurrency=concurrency)
    threading.Thread(target=lambda: (until(lambda: len(provider.started) >= concurrency), gate.set())).start()
    report, progress = run(tmp_path, provider, people(40))
    assert report.sent == 40 and not report.stopped and not report.in_doubt
    assert states(tmp_path) == dict.fromkeys(people(40), State.SENT)
    first = set(people(40)[:concurrency])
    assert all(doubt >= first for doubt in provider.in_doubt_at_start[:concurrency])  # the whole group
    assert provider.syncs_at_start[:concurrency] == [1] * concurrency  # one fsync for it, before any began
    assert all(email in doubt for email, doubt in zip(provider.started, provider.in_doubt_at_start, strict=True))
    assert not provider.slot_clash and sorted(p.number for p in progress) == list(range(1, 41))


def test_outcomes_are_recorded_as_they_come_in_any_order(tmp_path: Path) -> None:
    second_done = threading.Event()

    def first_waits_for_the_second(email: str, report: Report) -> None:
        if email == "p1@example.com":
            second_done.wait(10)
        sends(email, report)
        if email == "p2@example.com":
            second_done.set()

    provider = WindowProvider(tmp_path / "x.jsonl", first_waits_for_the_second, concurrency=2)
    report, progress = run(tmp_path, provider, people(5))
    assert report.sent == 5 and states(tmp_path) == dict.fromkeys(people(5), State.SENT)
    lines = (tmp_path / "x.jsonl").read_text().splitlines()
    sent_order = [line for line in lines if '"event":"sent"' in line]
    place = {e: next(i for i, line in enumerate(sent_order) if e in line) for e in ("p1@example.com", "p2@example.com")}
    assert place["p2@example.com"] < place["p1@example.com"]  # (p3 may come in between: its slot is free)
    assert sorted(p.number for p in progress) == [1, 2, 3, 4, 5]  # each batch shown once, when it is done


def test_a_provider_error_in_one_slot_lets_those_in_flight_finish_and_the_rest_go_back_to_unsent(
        tmp_path: Path) -> None:
    report = SendReport("an-issue", "scripted")
    three_started = threading.Barrier(3, timeout=10)

    def key_refused_for_p2(email: str, r: Report) -> None:
        if email in ("p1@example.com", "p2@example.com", "p3@example.com"):
            three_started.wait()
        if email == "p2@example.com":
            raise ProviderError("the key was refused", hint="check the key")
        if email in ("p1@example.com", "p3@example.com"):
            until(lambda: bool(report.stopped))  # still in flight when the send stops
        sends(email, r)

    provider = WindowProvider(tmp_path / "x.jsonl", key_refused_for_p2, concurrency=3)
    run(tmp_path, provider, people(9), report)
    assert report.stopped == "the key was refused (hint: check the key)"
    assert report.sent == 2 and not report.in_doubt and report.not_attempted == 7
    ledger = states(tmp_path)
    assert {e for e, s in ledger.items() if s == State.SENT} == {"p1@example.com", "p3@example.com"}
    assert ledger["p2@example.com"] == State.UNSENT  # in doubt while it was out, back to not sent
    assert sorted(provider.started) == ["p1@example.com", "p2@example.com", "p3@example.com"]  # nothing new
    assert not read_ledger(tmp_path / "x.jsonl").in_doubt()


def test_a_provider_error_leaves_units_that_entered_but_never_started_unsent(tmp_path: Path) -> None:
    # Four slots, every hand-off refused: whatever entered the window and had not started is unsent too.
    def refused(email: str, report: Report) -> None:
        raise ProviderError("the key was refused")

    provider = WindowProvider(tmp_path / "x.jsonl", refused, concurrency=4)
    report, _ = run(tmp_path, provider, people(12))
    ledger = read_ledger(tmp_path / "x.jsonl")
    assert report.stopped and report.sent == 0 and report.not_attempted == 12 and not ledger.in_doubt()
    assert set(ledger.emails(State.UNSENT)) <= set(people(12)) and len(provider.started) <= 4


def test_ctrl_c_leaves_at_most_the_window_in_doubt(tmp_path: Path) -> None:
    release = threading.Event()
    ledger = tmp_path / "x.jsonl"

    def two_hang_then_ctrl_c(email: str, report: Report) -> None:
        if email in ("p1@example.com", "p2@example.com"):
            sends(email, report)
        elif email == "p4@example.com":
            until(lambda: len(read_ledger(ledger).emails(State.SENT)) == 2 and len(provider.started) == 6)
            os.kill(os.getpid(), signal.SIGINT)  # the writer presses Ctrl-C
            release.wait(10)
        else:
            release.wait(10)

    provider = WindowProvider(ledger, two_hang_then_ctrl_c, concurrency=4)
    try:
        report, progress = run(tmp_path, provider, people(8))
    finally:
        release.set()
    window = people(6)[2:]  # p1 and p2 came back, p5 and p6 took their slots
    assert report.stopped == "interrupted" and report.sent == 2 and report.not_attempted == 2
    assert sorted(report.in_doubt) == window
    state = read_ledger(ledger)
    assert sorted(state.in_doubt()) == window  # they may have gone: never resent silently
    assert len(state.entries) == 6  # p7 and p8 never entered the window, nor the ledger
    assert sorted(p.number for p in progress) == [1, 2, 3, 4, 5, 6]


def test_ctrl_c_inside_a_slot_stops_the_send_the_same_way(tmp_path: Path) -> None:
    def interrupted_at_p1(email: str, report: Report) -> None:
        if email == "p1@example.com":
            raise KeyboardInterrupt
        sends(email, report)

    provider = WindowProvider(tmp_path / "x.jsonl", interrupted_at_p1, concurrency=2)
    report, _ = run(tmp_path, provider, people(6))
    assert report.stopped == "interrupted" and "p1@example.com" in report.in_doubt
    state = read_ledger(tmp_path / "x.jsonl")
    assert "p1@example.com" in state.in_doubt() and len(state.in_doubt()) <= 2
    assert report.sent + len(report.in_doubt) + report.not_attempted == 6


def test_a_recipient_error_fails_only_that_units_unreported_recipients(tmp_path: Path) -> None:
    def broken_at_p2(email: str, report: Report) -> None:
        if email == "p2@example.com":
            raise RecipientError("bad")
        sends(email, report)

    provider = WindowProvider(tmp_path / "x.jsonl", broken_at_p2, concurrency=2, batch_size=3)
    report, progress = run(tmp_path, provider, people(9))
    assert set(report.failed) == {"p2@example.com", "p3@example.com"} and report.sent == 7
    assert not report.stopped and not report.in_doubt
    assert states(tmp_path)["p3@example.com"] == State.FAILED
    assert sorted((p.number, p.sent, p.failed) for p in progress) == [(1, 1, 2), (2, 3, 0), (3, 3, 0)]


def test_one_recipient_per_hand_off_across_the_window(tmp_path: Path) -> None:
    def silent_about_p5(email: str, report: Report) -> None:
        if email != "p5@example.com":
            sends(email, report)

    provider = WindowProvider(tmp_path / "x.jsonl", silent_about_p5, concurrency=3, batch_size=4, handoff_size=1)
    report, progress = run(tmp_path, provider, people(10))
    assert report.sent == 9 and report.in_doubt == ["p5@example.com"] and not provider.slot_clash
    assert read_ledger(tmp_path / "x.jsonl").in_doubt() == ["p5@example.com"]
    assert sorted((p.number, p.size, p.sent) for p in progress) == [(1, 4, 4), (2, 4, 3), (3, 2, 2)]


def test_nothing_passes_the_point_of_no_return_once_the_ledger_cannot_be_synced(tmp_path: Path) -> None:
    # The group starts while its in-doubt record is being synced; when that fsync fails, every
    # slot's durable() raises instead of letting its hand-off through, and the send stops.
    provider = WindowProvider(tmp_path / "x.jsonl", concurrency=3)
    writer = CountingWriter(tmp_path / "x.jsonl")

    def failing_sync() -> None:
        until(lambda: len(provider.syncs_at_entry) == 3)  # the group's slots have reached durable()
        raise OSError(5, "Input/output error")  # the disk is gone

    writer.sync = failing_sync  # type: ignore[method-assign]
    report = SendReport("an-issue", provider.name)
    with pytest.raises(OSError, match="Input/output error"):
        loop_send(writer, provider, people(9), report)
    assert len(provider.syncs_at_entry) == 3  # the group had started, each slot waiting in durable()
    assert provider.started == [] and report.sent == 0  # and none went past it


def test_a_group_starts_while_its_record_is_synced_and_waits_for_it_before_the_point_of_no_return(
        tmp_path: Path) -> None:
    class SlowDisk(CountingWriter):
        def sync(self) -> None:
            until(lambda: len(provider.syncs_at_entry) == 2)  # both slots have the group before its fsync ends
            super().sync()

    provider = WindowProvider(tmp_path / "x.jsonl", concurrency=2)
    provider.writer = SlowDisk(tmp_path / "x.jsonl")
    report, _ = loop_send(provider.writer, provider, people(2))
    assert report.sent == 2
    assert provider.syncs_at_entry == [0, 0]  # entered while the group's fsync was still running
    assert provider.syncs_at_start == [1, 1]  # and went on only once it was done
