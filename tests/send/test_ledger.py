"""The send ledger: replay, torn last lines after a crash, bad lines, the lock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.errors import SendError
from newsletter.providers import State
from newsletter.send.ledger import LedgerWriter, locked, read_ledger
from tests.conftest import ROOT


def write(path: Path, *records: dict[str, object]) -> None:
    writer = LedgerWriter(path)
    for record in records:
        writer.append(record)
    writer.close()


RUN: dict[str, object] = {"event": "run", "run": "r1", "at": "2026-11-23T20:00:00Z", "provider": "sendgrid"}


def test_the_latest_record_is_each_addresses_state(tmp_path: Path) -> None:
    path = tmp_path / "sends" / "x.jsonl"
    write(path, RUN,
          {"event": "pending", "run": "r1", "batch": 1, "to": ["a@x.org", "b@x.org", "c@x.org", "d@x.org"]},
          {"event": "sent", "run": "r1", "batch": 1, "to": ["a@x.org"], "detail": "id-1"},
          {"event": "failed", "run": "r1", "batch": 1, "to": ["b@x.org"], "detail": "550 no such user"},
          {"event": "unsent", "run": "r1", "batch": 1, "to": ["d@x.org"], "detail": "stopped"})
    state = read_ledger(path)
    assert {e: x.state for e, x in state.entries.items()} == {
        "a@x.org": "sent", "b@x.org": "failed", "c@x.org": "pending", "d@x.org": "unsent"}
    assert state.entries["a@x.org"].detail == "id-1" and state.runs["r1"].provider == "sendgrid"
    assert read_ledger(tmp_path / "missing.jsonl").entries == {}


def test_a_torn_last_line_is_ignored_then_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    write(path, RUN, {"event": "pending", "run": "r1", "batch": 1, "to": ["a@x.org"]})
    with open(path, "ab") as fh:
        fh.write(b'{"event":"sent","run":"r1","batch":1,"to":["a@x')  # SIGKILL mid-write
    assert read_ledger(path).entries["a@x.org"].state == "pending"  # in doubt, not an error
    write(path, {"event": "sent", "run": "r1", "batch": 1, "to": ["a@x.org"]})
    assert read_ledger(path).entries["a@x.org"].state == "sent"
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_a_whole_last_record_without_its_newline_counts_and_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    write(path, RUN)
    with open(path, "ab") as fh:
        fh.write(b'{"event":"pending","run":"r1","batch":1,"to":["a@x.org"]}')
    assert read_ledger(path).entries["a@x.org"].state == "pending"
    write(path, {"event": "sent", "run": "r1", "batch": 1, "to": ["b@x.org"]})
    assert {e: x.state for e, x in read_ledger(path).entries.items()} == {"a@x.org": "pending", "b@x.org": "sent"}


def test_a_bad_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(RUN) + "\nnot json\n" + json.dumps(RUN) + "\n")
    with pytest.raises(SendError, match=r"x\.jsonl:2: not a ledger record"):
        read_ledger(path)
    path.write_text(json.dumps({"event": "sent", "run": "r1"}) + "\n" + json.dumps(RUN) + "\n")
    with pytest.raises(SendError, match=r"x\.jsonl:1: a sent record without its 'to' list"):
        read_ledger(path)


def test_cancelling_a_scheduled_batch_returns_its_recipients_to_not_sent(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    write(path, {**RUN, "send_at": 1900000000, "batch_id": "B1"},
          {"event": "sent", "run": "r1", "batch": 1, "to": ["a@x.org"]},
          {"event": "run", "run": "r2", "at": "", "provider": "sendgrid"},
          {"event": "sent", "run": "r2", "batch": 1, "to": ["b@x.org"]})
    assert [r.batch_id for r in read_ledger(path).scheduled()] == ["B1"]
    write(path, {"event": "cancelled", "at": "", "batch_id": "B1"})
    state = read_ledger(path)
    assert state.entries["a@x.org"].state == "unsent" and state.entries["b@x.org"].state == "sent"
    assert state.scheduled() == [] and state.runs["r1"].cancelled


def test_two_sends_of_one_issue_cannot_hold_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "sends" / "x.jsonl"
    with locked(path), pytest.raises(SendError, match="another send of this issue is running"), locked(path):
        pass
    with locked(path):  # released again
        pass


# Deeper: every state transition through the writer's own records, torn tails of every shape, the lock
# held by another process. The ledger decides who is sent to twice or never: it is tested on its own.

def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_writer_builds_every_record_with_the_on_disk_words(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    writer = LedgerWriter(path)
    writer.run("r1", "sendgrid", "an-issue", send_at=1900000000, batch_id="B1")
    writer.recipients(State.IN_DOUBT, "r1", 1, ["a@x.org"])
    writer.recipients(State.SENT, "r1", 1, ["a@x.org"], "id-1")
    writer.recipients(State.FAILED, "r1", 2, ["b@x.org"], "550")
    writer.recipients(State.UNSENT, "r1", 2, ["c@x.org"], "stopped")
    writer.cancelled("B1")
    writer.run("r2", "smtp", "an-issue")
    writer.close()
    records = lines(path)
    assert [r["event"] for r in records] == ["run", "pending", "sent", "failed", "unsent", "cancelled", "run"]
    assert records[0] == {"event": "run", "run": "r1", "at": records[0]["at"], "provider": "sendgrid",
                          "issue": "an-issue", "send_at": 1900000000, "batch_id": "B1"}
    assert records[1] == {"event": "pending", "run": "r1", "batch": 1, "at": records[1]["at"], "to": ["a@x.org"]}
    assert records[2]["detail"] == "id-1" and "detail" not in records[1]
    assert records[5] == {"event": "cancelled", "at": records[5]["at"], "batch_id": "B1"}
    assert "send_at" not in records[6] and "batch_id" not in records[6]
    assert all(str(r["at"]).endswith("Z") for r in records)


@pytest.mark.parametrize(("history", "final"), [
    ([State.IN_DOUBT], State.IN_DOUBT),  # handed over, no answer: in doubt
    ([State.IN_DOUBT, State.SENT], State.SENT),
    ([State.IN_DOUBT, State.FAILED], State.FAILED),
    ([State.IN_DOUBT, State.UNSENT], State.UNSENT),  # the provider stopped before taking it
    ([State.IN_DOUBT, State.FAILED, State.IN_DOUBT, State.SENT], State.SENT),  # --retry-failed
    ([State.IN_DOUBT, State.IN_DOUBT, State.SENT], State.SENT),  # --resend-pending
    ([State.IN_DOUBT, State.UNSENT, State.IN_DOUBT, State.FAILED], State.FAILED),  # a rerun
    ([State.IN_DOUBT, State.SENT, State.IN_DOUBT], State.IN_DOUBT),  # the latest record wins, whatever it is
])
def test_each_transition_leaves_the_latest_state(tmp_path: Path, history: list[State], final: State) -> None:
    path = tmp_path / "x.jsonl"
    writer = LedgerWriter(path)
    writer.run("r1", "smtp", "an-issue")
    for state in history:
        writer.recipients(state, "r1", 1, ["a@x.org"])
    writer.close()
    ledger = read_ledger(path)
    assert ledger.state_of("a@x.org") == final and ledger.counts() == {final: 1}
    assert ledger.in_doubt() == (["a@x.org"] if final == State.IN_DOUBT else [])


def test_cancelling_turns_sent_and_in_doubt_back_to_unsent_and_leaves_failed_and_other_runs(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    writer = LedgerWriter(path)
    writer.run("r1", "sendgrid", "an-issue", send_at=1900000000, batch_id="B1")
    writer.recipients(State.IN_DOUBT, "r1", 1, ["a@x.org", "b@x.org", "c@x.org"])
    writer.recipients(State.SENT, "r1", 1, ["a@x.org"], "id-1")
    writer.recipients(State.FAILED, "r1", 1, ["c@x.org"], "400")
    writer.run("r2", "sendgrid", "an-issue", send_at=1900000600, batch_id="B2")
    writer.recipients(State.SENT, "r2", 1, ["d@x.org"], "id-2")
    writer.cancelled("B1")
    writer.close()
    ledger = read_ledger(path)
    assert {e: x.state for e, x in ledger.entries.items()} == {
        "a@x.org": State.UNSENT, "b@x.org": State.UNSENT, "c@x.org": State.FAILED, "d@x.org": State.SENT}
    assert ledger.entries["b@x.org"].detail == "scheduled send cancelled"
    assert [r.batch_id for r in ledger.scheduled()] == ["B2"] and ledger.runs["r1"].cancelled
    writer = LedgerWriter(path)  # sent again after the cancel: a new run, a new state
    writer.run("r3", "sendgrid", "an-issue")
    writer.recipients(State.SENT, "r3", 1, ["a@x.org"], "id-3")
    writer.close()
    assert read_ledger(path).state_of("a@x.org") == State.SENT


def test_an_address_has_one_state_however_it_is_spelled(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    write(path, RUN, {"event": "sent", "run": "r1", "batch": 1, "to": [" Ada@Bücher.DE"]})
    ledger = read_ledger(path)
    assert ledger.state_of("ada@xn--bcher-kva.de") == ledger.state_of("ADA@bücher.de ") == State.SENT
    assert ledger.state_of("someone@else.org") is None


@pytest.mark.parametrize("torn", [
    b'{"event":"sent","run":"r1","batch":1,"to":["a@x',  # cut mid-record
    b'{"event":"sent","run":"r1","batch":1,"to":["a@x.org"],"detail":"' + b"x" * 200_000,  # longer than a read chunk
    b"\xff\xfe\x00",  # cut mid-character
])
def test_a_torn_tail_of_any_length_is_cut_and_the_records_before_it_are_kept(tmp_path: Path, torn: bytes) -> None:
    path = tmp_path / "x.jsonl"
    write(path, RUN, {"event": "pending", "run": "r1", "batch": 1, "to": ["a@x.org"]})
    whole = path.read_bytes()
    with open(path, "ab") as fh:
        fh.write(torn)
    assert read_ledger(path).state_of("a@x.org") == State.IN_DOUBT
    LedgerWriter(path).close()  # opening for append cuts the torn tail
    assert path.read_bytes() == whole


def test_a_ledger_that_is_only_a_torn_line_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"event":"run","run":"r1","at":"2026-11-23T2')
    assert read_ledger(path).runs == {}
    writer = LedgerWriter(path)
    assert path.read_bytes() == b""
    writer.run("r2", "smtp", "an-issue")
    writer.close()
    assert list(read_ledger(path).runs) == ["r2"]


def test_a_send_is_refused_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "sends" / "x.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from newsletter.send.ledger import locked\n"
         "with locked(Path(sys.argv[1])):\n    print('held', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(SendError, match=r"x\.jsonl: another send of this issue is running") as caught, \
                locked(path):
            pass
        assert caught.value.hint and "newsletter status" in caught.value.hint
    finally:
        holder.communicate("", timeout=30)
    with locked(path):  # the holder is gone: free again
        pass
