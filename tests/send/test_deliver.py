"""The batch loop (send.deliver) with a scripted provider: what the ledger and the report say when
the provider stops, is interrupted, stays silent about someone or lets one recipient's error out.

A bug here sends twice or loses someone, so each case checks the ledger on disk, not only the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from newsletter.errors import ProviderError, RecipientError
from newsletter.models import SendReport
from newsletter.providers import Letter, Outcome, Outgoing, Report, State
from newsletter.send.deliver import BatchProgress, Recorder, deliver_all
from newsletter.send.ledger import LedgerWriter, read_ledger
from tests.helpers import SCRIPTED_LETTER, batches_of, ledger_states, loop_send, people

Script = Callable[[str, Report], None]  # what the provider does for one address


def sends(email: str, report: Report) -> None:
    report(Outcome((email,), State.SENT, f"id-{email}"))


class ScriptedProvider:
    """Follows `script` for each address; records every call and what the ledger said at the hand-off."""

    name = "scripted"

    def __init__(self, ledger: Path | None, script: Script = sends, *, batch_size: int = 3,
                 handoff_size: int | None = None) -> None:
        self.ledger, self.script = ledger, script
        self.batch_size, self.handoff_size = batch_size, handoff_size
        self.handoffs: list[list[str]] = []
        self.prepared: list[tuple[list[str], int]] = []
        self.in_doubt_at_handoff: list[bool] = []

    def prepare(self, letter: Letter, batch: Sequence[Outgoing], remaining: int) -> None:
        self.prepared.append(([o.recipient.email for o in batch], remaining))

    def deliver(self, letter: Letter, batch: Sequence[Outgoing], report: Report) -> None:
        emails = [o.recipient.email for o in batch]
        self.handoffs.append(emails)
        if self.ledger is not None:  # recorded in doubt, on disk, before the provider sees them
            state = read_ledger(self.ledger)
            self.in_doubt_at_handoff.append(all(state.state_of(e) == State.IN_DOUBT for e in emails))
        for email in emails:
            self.script(email, report)

    def create_batch(self) -> str:
        raise ProviderError("cannot schedule")

    def close(self) -> None:
        pass


def run(tmp_path: Path, provider: ScriptedProvider, emails: list[str]) -> tuple[SendReport, list[BatchProgress]]:
    return loop_send(LedgerWriter(tmp_path / "x.jsonl"), provider, emails)


def states(tmp_path: Path) -> dict[str, State]:
    return ledger_states(tmp_path / "x.jsonl")


@pytest.mark.parametrize("handoff_size", [None, 1])
def test_everyone_is_in_doubt_on_disk_before_the_hand_off_then_sent(tmp_path: Path, handoff_size: int | None) -> None:
    provider = ScriptedProvider(tmp_path / "x.jsonl", handoff_size=handoff_size)
    report, progress = run(tmp_path, provider, people(7))
    assert report.sent == 7 and not report.stopped and report.not_attempted == 0
    assert states(tmp_path) == dict.fromkeys(people(7), State.SENT)
    assert all(provider.in_doubt_at_handoff)
    assert len(provider.handoffs) == (3 if handoff_size is None else 7)
    assert [(p.number, p.total, p.size, p.sent) for p in progress] == [(1, 3, 3, 3), (2, 3, 3, 3), (3, 3, 1, 1)]
    # The next batch is prepared while this one is out; never after the last.
    assert provider.prepared == [(people(7)[3:6], 2), (people(7)[6:], 1)]


@pytest.mark.parametrize("handoff_size", [None, 1])
def test_a_provider_that_stops_mid_batch_keeps_what_it_reported_and_returns_the_rest_to_unsent(
        tmp_path: Path, handoff_size: int | None) -> None:
    def stops_at_p5(email: str, report: Report) -> None:
        if email == "p5@example.com":
            raise ProviderError("the key was refused", hint="check the key")
        sends(email, report)

    provider = ScriptedProvider(tmp_path / "x.jsonl", stops_at_p5, handoff_size=handoff_size)
    report, progress = run(tmp_path, provider, people(8))
    assert report.stopped == "the key was refused (hint: check the key)"
    assert report.sent == 4 and report.not_attempted == 4 and not report.in_doubt  # p5..p8 never went
    ledger = states(tmp_path)
    assert {e for e, s in ledger.items() if s == State.SENT} == set(people(4))
    # What was recorded in doubt for the failed hand-off is back to unsent; later batches were never recorded.
    unsent = {e for e, s in ledger.items() if s == State.UNSENT}
    assert unsent == ({"p5@example.com"} if handoff_size == 1 else {"p5@example.com", "p6@example.com"})
    assert "p7@example.com" not in ledger and not read_ledger(tmp_path / "x.jsonl").in_doubt()
    assert len(progress) == 2  # the batch that stopped is still shown


def test_ctrl_c_mid_batch_leaves_only_the_hand_off_in_flight_in_doubt(tmp_path: Path) -> None:
    def interrupted_at_p4(email: str, report: Report) -> None:
        if email == "p4@example.com":
            raise KeyboardInterrupt
        sends(email, report)

    provider = ScriptedProvider(tmp_path / "x.jsonl", interrupted_at_p4, handoff_size=1)
    report, _ = run(tmp_path, provider, people(8))
    assert report.stopped == "interrupted"
    assert report.in_doubt == ["p4@example.com"] and report.sent == 3 and report.not_attempted == 4
    ledger = read_ledger(tmp_path / "x.jsonl")
    assert ledger.in_doubt() == ["p4@example.com"]  # it may have gone: never resent without --resend-pending
    assert {e for e, x in ledger.entries.items() if x.state == State.SENT} == set(people(3))
    assert len(ledger.entries) == 4  # p5..p8 were never handed over, nor recorded


def test_ctrl_c_during_a_whole_batch_request_leaves_its_unreported_recipients_in_doubt(tmp_path: Path) -> None:
    def interrupted_at_p5(email: str, report: Report) -> None:
        if email == "p5@example.com":
            raise KeyboardInterrupt
        sends(email, report)

    report, _ = run(tmp_path, ScriptedProvider(tmp_path / "x.jsonl", interrupted_at_p5), people(9))
    assert report.stopped == "interrupted" and sorted(report.in_doubt) == ["p5@example.com", "p6@example.com"]
    assert report.not_attempted == 3
    assert sorted(read_ledger(tmp_path / "x.jsonl").in_doubt()) == ["p5@example.com", "p6@example.com"]


def test_recipients_the_provider_never_reports_on_stay_in_doubt_and_the_send_goes_on(tmp_path: Path) -> None:
    def silent_about_p2(email: str, report: Report) -> None:
        if email != "p2@example.com":
            sends(email, report)

    report, progress = run(tmp_path, ScriptedProvider(tmp_path / "x.jsonl", silent_about_p2), people(5))
    assert report.in_doubt == ["p2@example.com"] and report.sent == 4 and not report.stopped
    assert read_ledger(tmp_path / "x.jsonl").in_doubt() == ["p2@example.com"]
    assert [p.in_doubt for p in progress] == [0, 0]  # nobody reported it in doubt: it simply stayed so


def test_a_recipient_error_that_escapes_the_provider_fails_only_that_recipient(tmp_path: Path) -> None:
    def broken_for_p2(email: str, report: Report) -> None:
        if email == "p2@example.com":
            raise RecipientError("p2@example.com: cannot build the message")
        sends(email, report)

    provider = ScriptedProvider(tmp_path / "x.jsonl", broken_for_p2, handoff_size=1)
    report, progress = run(tmp_path, provider, people(4))
    assert report.failed == {"p2@example.com": "p2@example.com: cannot build the message"}
    assert report.sent == 3 and not report.stopped and not report.in_doubt
    assert states(tmp_path) == {"p1@example.com": State.SENT, "p2@example.com": State.FAILED,
                                "p3@example.com": State.SENT, "p4@example.com": State.SENT}
    assert [(p.sent, p.failed) for p in progress] == [(2, 1), (1, 0)]


def test_a_recipient_error_in_a_whole_batch_fails_only_those_not_yet_reported(tmp_path: Path) -> None:
    def broken_at_p2(email: str, report: Report) -> None:
        if email == "p2@example.com":
            raise RecipientError("bad")
        sends(email, report)

    report, _ = run(tmp_path, ScriptedProvider(tmp_path / "x.jsonl", broken_at_p2), people(6))
    assert set(report.failed) == {"p2@example.com", "p3@example.com"} and report.sent == 4


def test_outcomes_in_another_spelling_land_on_the_same_ledger_key(tmp_path: Path) -> None:
    def shouts(email: str, report: Report) -> None:
        report(Outcome((email.upper(),), State.SENT, "id"))

    report, _ = run(tmp_path, ScriptedProvider(tmp_path / "x.jsonl", shouts), ["ada@example.com"])
    assert report.sent == 1 and states(tmp_path) == {"ada@example.com": State.SENT}


def test_a_test_send_records_nothing(tmp_path: Path) -> None:
    provider = ScriptedProvider(None)
    report = SendReport("an-issue", provider.name, test=True)
    deliver_all(batches_of(people(4), 3), cast(Any, provider), SCRIPTED_LETTER, Recorder(report), lambda p: None)
    assert report.sent == 4 and not list(tmp_path.iterdir())
