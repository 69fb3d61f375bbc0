"""The inbox journal: durable appends from many threads, a torn tail cut, cursors, errors with file:line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from newsletter.errors import SubscriberError
from newsletter.subscribers.inbox import JOURNAL, EventType, Inbox, event_counts, new_event, opened


def test_record_appends_one_line_and_read_follows_the_cursor(tmp_path: Path) -> None:
    with opened(tmp_path / "inbox") as inbox:
        first = inbox.record(EventType.CONFIRMED, "web", email="zoë@bücher.de", name="Zoë", tags=["film"])
        second = inbox.record(EventType.UNSUBSCRIBED, "web", reader="abc")
        events, cursor = inbox.read()
        assert [e.id for e in events] == [first.id, second.id]
        assert events[0].email == "zoë@bücher.de" and events[0].tags == ("film",)
        assert cursor == inbox.size() == (tmp_path / "inbox" / JOURNAL).stat().st_size
        assert inbox.read(cursor) == ([], cursor)
        one, after_one = inbox.read(0, limit=1)
        assert [e.id for e in one] == [first.id]
        assert [e.id for e in inbox.read(after_one)[0]] == [second.id]
        assert inbox.ids() == {first.id, second.id}
    assert event_counts(events) == {EventType.CONFIRMED: 1, EventType.UNSUBSCRIBED: 1}


def test_records_leave_empty_fields_out_and_keep_non_ascii(tmp_path: Path) -> None:
    with opened(tmp_path) as inbox:
        inbox.record(EventType.UNSUBSCRIBED, "web", reader="r1")
    line = json.loads((tmp_path / JOURNAL).read_text(encoding="utf-8"))
    assert set(line) == {"id", "at", "type", "source", "reader"}


def test_the_journal_is_private_to_its_owner(tmp_path: Path) -> None:
    with opened(tmp_path / "inbox") as inbox:
        inbox.record(EventType.CONFIRMED, "web", email="a@example.com")
    assert (tmp_path / "inbox" / JOURNAL).stat().st_mode & 0o077 == 0


def test_a_torn_last_line_is_not_an_event_and_the_next_writer_cuts_it(tmp_path: Path) -> None:
    with opened(tmp_path) as inbox:
        kept = inbox.record(EventType.CONFIRMED, "web", email="a@example.com")
    path = tmp_path / JOURNAL
    whole = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(b'{"id":"torn","at":"2026-01-01T00:00:00Z","type":"conf')  # a crash mid-write
    reader = Inbox(tmp_path)
    assert [e.id for e in reader.read()[0]] == [kept.id]
    assert reader.size() == whole
    with opened(tmp_path) as inbox:
        added = inbox.record(EventType.BOUNCED, "sendgrid", email="b@example.com")
    assert [e.id for e in Inbox(tmp_path).read()[0]] == [kept.id, added.id]
    assert b"torn" not in path.read_bytes()


def test_a_bad_line_is_an_error_with_file_and_line(tmp_path: Path) -> None:
    with opened(tmp_path) as inbox:
        inbox.record(EventType.CONFIRMED, "web", email="a@example.com")
    path = tmp_path / JOURNAL
    for bad in (b"not json", b"[1, 2]", b'{"id": "x", "at": "t", "type": "exploded"}',
                b'{"id": "x", "at": "t", "type": "confirmed", "tags": "film"}', b'{"id": "x"}', b"\xff\xfe"):
        original = path.read_bytes()
        path.write_bytes(original + bad + b"\n")
        with pytest.raises(SubscriberError, match=rf"{JOURNAL}:2: not an inbox event"):
            Inbox(tmp_path).read()
        path.write_bytes(original)


def test_a_cursor_past_the_end_is_an_error(tmp_path: Path) -> None:
    with opened(tmp_path) as inbox:
        inbox.record(EventType.CONFIRMED, "web", email="a@example.com")
    with pytest.raises(SubscriberError, match="past the end"):
        Inbox(tmp_path).read(10**6)


def test_a_missing_inbox_reads_as_empty_and_is_not_created(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox")
    assert inbox.read() == ([], 0) and inbox.size() == 0 and inbox.ids() == set()
    assert not (tmp_path / "inbox").exists()


def test_an_event_too_large_or_with_a_newline_is_refused(tmp_path: Path) -> None:
    with opened(tmp_path) as inbox, pytest.raises(SubscriberError, match="too large"):
        inbox.record(EventType.CONFIRMED, "web", email="a@example.com", name="x" * 70_000)
    assert not (tmp_path / JOURNAL).exists() or (tmp_path / JOURNAL).read_bytes() == b""
    with opened(tmp_path) as inbox:
        inbox.record(EventType.CONFIRMED, "web", email="a@example.com", name="two\nlines")
    assert len((tmp_path / JOURNAL).read_bytes().splitlines()) == 1  # JSON escapes it


def test_append_writes_a_batch_at_once(tmp_path: Path) -> None:
    events = [new_event(EventType.BOUNCED, "sendgrid", email=f"p{n}@example.com") for n in range(50)]
    with opened(tmp_path) as inbox:
        inbox.append(events)
        inbox.append([])
    assert [e.id for e in Inbox(tmp_path).read()[0]] == [e.id for e in events]


def test_many_threads_lose_nothing_and_every_line_is_whole(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    ids: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(50):
            event = inbox.record(EventType.UNSUBSCRIBED, "web", reader=f"reader-{n}-{i}")
            with lock:
                ids.append(event.id)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    inbox.close()
    on_disk = [e.id for e in Inbox(tmp_path).read()[0]]
    assert len(on_disk) == 800 and sorted(on_disk) == sorted(ids)


def test_many_processes_lose_nothing(tmp_path: Path) -> None:
    """Two services (or a service and a pull) appending to one journal: O_APPEND keeps lines whole."""
    script = ("import sys; from pathlib import Path; from newsletter.subscribers.inbox import Inbox, EventType\n"
              "inbox = Inbox(Path(sys.argv[1]))\n"
              "for i in range(200): inbox.record(EventType.BOUNCED, 'p', email=f'{sys.argv[2]}{i}@example.com')\n")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), f"p{n}-"], env=env) for n in range(3)]
    assert all(p.wait(60) == 0 for p in procs)
    events = Inbox(tmp_path).read()[0]
    assert len(events) == 600 and len({e.email for e in events}) == 600


def test_an_acknowledged_event_survives_the_process(tmp_path: Path) -> None:
    """record() returns only after fsync: a child killed right after recording leaves the event."""
    script = ("import os, sys; from pathlib import Path; from newsletter.subscribers.inbox import Inbox, EventType\n"
              "e = Inbox(Path(sys.argv[1])).record(EventType.CONFIRMED, 'p', email='a@example.com')\n"
              "print(e.id, flush=True); os.kill(os.getpid(), 9)\n")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=60)
    assert done.returncode == -9
    assert [e.id for e in Inbox(tmp_path).read()[0]] == [done.stdout.strip()]


def test_size_is_the_end_of_the_last_whole_line_in_a_long_journal(tmp_path: Path) -> None:
    """size() reads only the tail: it must not parse a line it starts in the middle of."""
    with opened(tmp_path) as inbox:
        inbox.append([new_event(EventType.BOUNCED, "sendgrid", email=f"p{n}@example.com") for n in range(1500)])
    path = tmp_path / JOURNAL
    whole = path.stat().st_size
    assert whole > 3 * 64 * 1024
    assert Inbox(tmp_path).size() == whole == Inbox(tmp_path).read()[1]
    with open(path, "ab") as fh:
        fh.write(b'{"id":"half')
    assert Inbox(tmp_path).size() == whole
