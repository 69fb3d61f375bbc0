"""newsletter.files: a write that fails at any step leaves the old file and no temp file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from newsletter import files
from newsletter.errors import FileWriteError

STEPS = ("mkstemp", "write", "fsync", "chmod", "replace")


def _fail_at(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    if step == "mkstemp":
        monkeypatch.setattr(files.tempfile, "mkstemp", boom)
    elif step == "write":
        real_open = open

        class Failing:
            def __init__(self, fh: object) -> None:
                self.fh = fh

            def __enter__(self) -> Failing:
                return self

            def __exit__(self, *exc: object) -> None:
                self.fh.close()  # type: ignore[attr-defined]

            def write(self, data: bytes) -> int:
                raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(files, "open", lambda *a, **k: Failing(real_open(*a, **k)), raising=False)
    else:
        monkeypatch.setattr(files.os, step, boom)


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_any_step_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   step: str) -> None:
    target = tmp_path / "list.csv"
    target.write_bytes(b"old\n")
    _fail_at(monkeypatch, step)
    with pytest.raises(FileWriteError) as caught:
        files.atomic_write_bytes(target, b"new\n")
    monkeypatch.undo()
    assert str(target) in str(caught.value) and caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.csv"]


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_any_step_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    target = tmp_path / "new" / "deeper" / "email.html"
    _fail_at(monkeypatch, step)
    with pytest.raises(FileWriteError):
        files.atomic_write_bytes(target, b"<p>hi</p>")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []  # the folders made for it are gone too


def test_an_exception_inside_the_block_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "ledger.json"
    target.write_bytes(b"old")
    with pytest.raises(KeyError), files.atomic_open(target) as fh:
        fh.write(b"half")
        raise KeyError("a bug in the caller")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["ledger.json"]


def test_success_keeps_the_old_permissions(tmp_path: Path) -> None:
    target = tmp_path / "subscribers.csv"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    files.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["subscribers.csv"]
