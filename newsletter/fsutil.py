"""Writing files so that a crash leaves either the old file or the new one, never a mix."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(
    path: Path, *, encoding: str | None = None, mode: int | None = None, temp: Path | None = None
) -> Iterator[IO[Any]]:
    """Yield a file to write; on success it is fsynced and os.replace'd over path.

    Text when `encoding` is given (newlines kept as written), else bytes. The file keeps the
    permissions of the one it replaces, else `mode` (default 0o644). `temp` names the temp file
    (callers holding a lock may use a fixed name); otherwise a unique one beside path is made.
    On any failure the temp file is removed and path is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    perms = path.stat().st_mode & 0o777 if path.exists() else (mode if mode is not None else 0o644)
    if temp is None:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
    else:
        tmp = temp
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, perms)
    try:
        kwargs: dict[str, Any] = {"encoding": encoding, "newline": ""} if encoding else {}
        with open(fd, "w" if encoding else "wb", **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, perms)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path atomically: temp file in the same folder, fsync, os.replace."""
    with atomic_open(path) as fh:
        fh.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically (newlines kept exactly as given)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in folder durable (a no-op where folders cannot be fsynced)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
