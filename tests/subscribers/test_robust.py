"""Nothing lost: real processes racing, a process killed mid-write, and round-trip properties."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from filelock import FileLock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import newsletter.subscribers.writer as subscriber_write
from newsletter.errors import SubscriberError
from newsletter.models import SUBSCRIBER_STATUSES, Subscriber
from newsletter.subscribers.schema import COLUMNS, STATUS_RANK
from newsletter.subscribers.store import (
    SubscriberList,
    add_subscriber,
    apply_statuses,
    load_subscribers,
    save_subscribers,
    unsubscribe,
)

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "newsletter", "subscribers", *args], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def big_list(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in range(rows):
            writer.writerow([f"reader.{i}@example.com", f"Reader {i}", "active", "books;film" if i % 3 else "",
                             "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "cli"])


def test_sixteen_processes_adding_at_once_all_land(tmp_path: Path) -> None:
    lst = tmp_path / "subscribers.csv"
    big_list(lst, 20_000)  # big enough that each write takes a while, so they really overlap
    adds = [cli("add", f"new.{i}@example.com", "--tag", "race", "--subscribers", str(lst), cwd=tmp_path)
            for i in range(12)]
    unsubscribes = [cli("unsubscribe", f"reader.{i}@example.com", "--subscribers", str(lst), cwd=tmp_path)
                    for i in range(4)]
    for process in adds + unsubscribes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    rows = {r.email: r for r in load_subscribers(lst).rows}
    assert len(rows) == 20_012
    assert all(rows[f"new.{i}@example.com"].tags == ("race",) for i in range(12))
    assert [rows[f"reader.{i}@example.com"].status for i in range(5)] == ["unsubscribed"] * 4 + ["active"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".subscribers.csv.lock", "subscribers.csv"]


def test_kill_9_mid_write_leaves_the_old_file_or_the_new_one(tmp_path: Path) -> None:
    lst = tmp_path / "subscribers.csv"
    big_list(lst, 300_000)
    original = lst.read_bytes()
    temp = tmp_path / ".subscribers.csv.tmp"
    process = cli("unsubscribe", "reader.299999@example.com", "--subscribers", str(lst), cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (temp.exists() and temp.stat().st_size > 0):  # the rewrite has begun
        assert process.poll() is None and time.monotonic() < deadline, "the write was never caught in progress"
        time.sleep(0.0005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert lst.read_bytes() == original  # the half-written temp file never replaced it
    # The lock died with the process and the stale temp file is simply overwritten by the next write.
    finished = cli("unsubscribe", "reader.299999@example.com", "--subscribers", str(lst), cwd=tmp_path)
    assert finished.wait(timeout=60) == 0
    assert not temp.exists()
    lines, before = lst.read_bytes().split(b"\n"), original.split(b"\n")
    assert len(lines) == len(before) and lines[:-2] == before[:-2]
    assert lines[-2].startswith(b"reader.299999@example.com,Reader 299999,unsubscribed,")


def test_kills_at_random_moments_never_leave_a_mix(tmp_path: Path) -> None:
    lst = tmp_path / "subscribers.csv"
    big_list(lst, 100_000)
    for attempt, delay in enumerate((0.05, 0.15, 0.25, 0.35, 0.45, 0.6)):
        before = lst.read_bytes()
        process = cli("unsubscribe", f"reader.{attempt * 10_000}@example.com", "--subscribers", str(lst),
                      cwd=tmp_path)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        after = lst.read_bytes()
        if after != before:  # the command finished first: exactly its one row changed
            changed = [(a, b) for a, b in zip(before.split(b"\n"), after.split(b"\n"), strict=True) if a != b]
            assert len(changed) == 1 and b",unsubscribed," in changed[0][1]
        assert len(load_subscribers(lst).rows) == 100_000


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
_NAME = st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=12)  # issue 9: no control characters
_LINE = st.text(st.characters(exclude_categories=("Cs", "Zl", "Zp", "Cc"), exclude_characters=";\x85"), max_size=8)
_EMAIL = st.from_regex(r"[a-z0-9][a-z0-9_+-]{0,8}@[a-z0-9]{1,8}\.[a-z]{2,4}", fullmatch=True)
_TAGS = st.lists(_LINE.map(str.strip).filter(bool), max_size=3, unique=True).map(tuple)
_EXTRA_NAMES = st.lists(
    _LINE.map(str.strip).filter(lambda n: n and n.lower() not in COLUMNS), max_size=3, unique_by=str.lower)


@st.composite
def subscriber_lists(draw: st.DrawFn) -> SubscriberList:
    extras = draw(_EXTRA_NAMES)
    emails = draw(st.lists(_EMAIL, min_size=0, max_size=12, unique_by=str.lower))
    rows = [Subscriber(email, draw(_NAME), draw(st.sampled_from(SUBSCRIBER_STATUSES)), draw(_TAGS), draw(_TEXT),
                       draw(_TEXT), draw(_TEXT), {name: draw(_TEXT) for name in extras})
            for email in emails]
    order = draw(st.permutations([*COLUMNS, *extras]))  # the writer's own columns anywhere
    return SubscriberList(rows, list(order))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subscriber_lists())
def test_load_save_load_is_the_identity_unknown_columns_included(original: SubscriberList) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "subscribers.csv"
        save_subscribers(path, original)
        first = path.read_bytes()
        loaded = load_subscribers(path)
        assert loaded.fieldnames == original.fieldnames
        assert loaded.rows == original.rows
        save_subscribers(path, loaded)
        assert path.read_bytes() == first


@settings(max_examples=60, deadline=None)
@given(subscriber_lists().filter(lambda s: s.rows), st.data())
def test_a_change_to_one_row_leaves_every_other_row_as_it_was(original: SubscriberList, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "subscribers.csv"
        save_subscribers(path, original)
        before = load_subscribers(path).rows
        target = data.draw(st.sampled_from(before))
        unsubscribe(path, [target.email])
        after = load_subscribers(path).rows
        assert [r for r in after if r.email != target.email] == [r for r in before if r.email != target.email]
        changed = next(r for r in after if r.email == target.email)
        expected = "complained" if target.status == "complained" else "unsubscribed"
        assert changed.status == expected and (changed.name, changed.extra) == (target.name, target.extra)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SUBSCRIBER_STATUSES),
       st.lists(st.sampled_from(("unsubscribed", "bounced", "complained")), max_size=5))
def test_reported_statuses_only_ever_tighten(start: str, reports: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "subscribers.csv"
        save_subscribers(path, SubscriberList([Subscriber("a@example.com", status=start)], list(COLUMNS)))
        seen = [start]
        for status in reports:
            apply_statuses(path, {"A@example.com": status}, source="test")
            seen.append(status)
            assert load_subscribers(path).rows[0].status == max(seen, key=STATUS_RANK.__getitem__)


def test_a_held_lock_makes_a_change_wait_then_fail_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lst = tmp_path / "subscribers.csv"
    big_list(lst, 3)
    before = lst.read_bytes()
    monkeypatch.setattr(subscriber_write, "LOCK_TIMEOUT", 0.3)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from filelock import FileLock\n"
                               "with FileLock(sys.argv[1]):\n print('held', flush=True); time.sleep(30)",
                               str(tmp_path / ".subscribers.csv.lock")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        started = time.monotonic()
        with pytest.raises(SubscriberError, match="another command is still changing this list"):
            add_subscriber(lst, "new@example.com")
        assert time.monotonic() - started >= 0.3 and lst.read_bytes() == before
    finally:
        holder.kill()
        holder.wait()
    assert FileLock(str(tmp_path / ".subscribers.csv.lock"), timeout=5).acquire()  # released with its process
