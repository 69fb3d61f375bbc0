"""Writing files so that a crash leaves either the old file or the new one, never a mix.

Every OSError on the way (a full disk, a read-only folder, a name too long, a file where a folder
should be) comes out as a FileWriteError naming the path: a user error, one line, no traceback.
Folders made for a write that fails are removed again. Temp files carry the writer's process id,
so a later run can tell one a killed process left behind (sweep_temps) from one still being written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from newsletter.errors import FileWriteError, NewsletterError

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[^.]*\.tmp$")


@contextlib.contextmanager
def atomic_open(
    path: Path, *, encoding: str | None = None, mode: int | None = None, temp: Path | None = None
) -> Iterator[IO[Any]]:
    """Yield a file to write; on success it is fsynced and os.replace'd over path.

    Text when `encoding` is given (newlines kept as written), else bytes. The file keeps the
    permissions of the one it replaces, else `mode` (default 0o644). `temp` names the temp file
    (callers holding a lock may use a fixed name); otherwise a unique one beside path is made.
    On any failure the temp file and any folder made for it are removed and path is left as it
    was; an OSError comes out as FileWriteError (still an OSError) naming path.
    """
    made = make_folders(path.parent)
    tmp: Path | None = None
    try:
        perms = path.stat().st_mode & 0o777 if path.exists() else (mode if mode is not None else 0o644)
        fd, tmp = _open_temp(path, temp, perms)
        kwargs: dict[str, Any] = {"encoding": encoding, "newline": ""} if encoding else {}
        with open(fd, "w" if encoding else "wb", **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, perms)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        remove_folders(made)
        if isinstance(exc, OSError) and not isinstance(exc, FileWriteError):
            raise FileWriteError(path, exc) from None
        raise
    fsync_dir(path.parent)


def _open_temp(path: Path, temp: Path | None, perms: int) -> tuple[int, Path]:
    if temp is not None:
        return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, perms), temp
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    return fd, Path(name)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path atomically: temp file in the same folder, fsync, os.replace."""
    with atomic_open(path) as fh:
        fh.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically (newlines kept exactly as given)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def create_exclusive(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create path with data, whole, or raise FileExistsError if it exists: never overwrite.

    The data goes to a temp file first and is hard-linked into place, so two processes creating
    one path never overwrite each other (os.link fails if path exists, like O_EXCL) and nobody
    ever sees the file half written. Where hard links are not supported, O_EXCL is used.
    """
    made = make_folders(path.parent)
    tmp: Path | None = None
    try:
        fd, tmp = _open_temp(path, None, mode)
        with open(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        try:
            os.link(tmp, path)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
            _create_with_excl(path, data, mode)
    except FileExistsError:
        raise
    except OSError as exc:
        remove_folders(made)
        raise FileWriteError(path, exc) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    fsync_dir(path.parent)


def stage_files(folder: Path, files: Mapping[str, bytes]) -> list[tuple[Path, Path]]:
    """Write each file (relative path -> bytes) to a temp file beside its target in folder.

    Return (temp, target) pairs for the caller to os.replace once all are written. On any failure
    every temp file and folder made so far is removed and FileWriteError names the file.
    """
    staged: list[tuple[Path, Path]] = []
    made: list[Path] = []
    target = folder
    try:
        for rel, data in sorted(files.items()):
            target = folder / rel
            made += make_folders(target.parent)
            fd, tmp = _open_temp(target, None, 0o644)
            staged.append((tmp, target))
            with open(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o644)
    except BaseException as exc:
        discard(staged, made)
        if isinstance(exc, OSError) and not isinstance(exc, FileWriteError):
            raise FileWriteError(target, exc) from None
        raise
    return staged


def replace_staged(staged: list[tuple[Path, Path]]) -> None:
    """Rename staged temp files over their targets; on failure remove the ones not yet renamed."""
    for n, (tmp, target) in enumerate(staged):
        try:
            os.replace(tmp, target)
        except OSError as exc:
            discard(staged[n:], [])
            raise FileWriteError(target, exc) from None
    for folder in dict.fromkeys(target.parent for _, target in staged):
        fsync_dir(folder)


def write_files(folder: Path, files: Mapping[str, bytes]) -> None:
    """Write several files into folder, replacing any there: all are staged before any is replaced.

    A failure (a full disk, a read-only folder) leaves the old files as they were and no temp
    file or new folder behind; temp files a killed earlier run left are removed first.
    """
    for parent, names in _by_folder(folder, files).items():
        sweep_temps(parent, names)
    replace_staged(stage_files(folder, files))


def _by_folder(folder: Path, files: Iterable[str]) -> dict[Path, list[str]]:
    grouped: dict[Path, list[str]] = {}
    for rel in files:
        target = folder / rel
        grouped.setdefault(target.parent, []).append(target.name)
    return grouped


def discard(staged: Iterable[tuple[Path, Path]], made: list[Path]) -> None:
    """Remove staged temp files and then the folders made for them (best effort)."""
    for tmp, _ in staged:
        with contextlib.suppress(OSError):
            tmp.unlink()
    remove_folders(made)


def _create_with_excl(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with open(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def make_folders(folder: Path) -> list[Path]:
    """Create folder and its missing parents; return those this call created (outermost first).

    A file where a folder should be, or a folder that cannot be made, is a FileWriteError.
    """
    made: list[Path] = []
    part = folder
    try:
        missing = []
        while not part.is_dir():
            if part.exists() or part.is_symlink():
                raise FileWriteError(part, OSError(errno.ENOTDIR, "it is a file, and a folder is needed here"))
            missing.append(part)
            part = part.parent
        for part in reversed(missing):
            with contextlib.suppress(FileExistsError):  # made meanwhile by another process: not ours
                part.mkdir()
                made.append(part)
    except OSError as exc:
        remove_folders(made)
        if isinstance(exc, FileWriteError):
            raise
        raise FileWriteError(part, exc) from None
    return made


def remove_folders(made: Iterable[Path]) -> None:
    """Remove folders made for a write that failed, innermost first, if they are empty."""
    for folder in reversed(list(made)):
        with contextlib.suppress(OSError):
            folder.rmdir()


def sweep_temps(folder: Path, names: Iterable[str] | None = None) -> list[Path]:
    """Remove the temp files a killed writer left in folder (beside `names`, or any); return them.

    Only temp files of this module's form (.<name>.<pid>-<random>.tmp) whose process is gone
    are removed: one a running process is still writing is left alone.
    """
    wanted = set(names) if names is not None else None
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _TEMP.match(entry.name)
            if (match and (wanted is None or match.group("name") in wanted)
                    and entry.is_file(follow_symlinks=False) and not _alive(int(match.group("pid")))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process: leave its file alone
    return True


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in folder durable (a no-op where folders cannot be fsynced)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked(lock: Path, *, timeout: float, busy: NewsletterError) -> Iterator[None]:
    """Hold the filelock `lock` for a read-modify-write; raise `busy` if another process keeps it.

    The one lock helper: the subscriber list, a send's ledger and the site folder each name their
    own lock file and the error a person reads when it is taken. timeout=0 refuses at once.
    The lock file stays behind when released (deleting it would race with the next taker).
    """
    from filelock import FileLock, Timeout

    file_lock = FileLock(str(lock), timeout=timeout)
    try:
        file_lock.acquire()
    except Timeout:
        raise busy from None
    except OSError as exc:
        raise FileWriteError(lock, exc) from None
    try:
        yield
    finally:
        file_lock.release()
