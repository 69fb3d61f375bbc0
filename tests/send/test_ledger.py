"""The send ledger: replay, torn last lines after a crash, bad lines, the lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsletter.errors import SendError
from newsletter.send.ledger import LedgerWriter, locked, read_ledger


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
