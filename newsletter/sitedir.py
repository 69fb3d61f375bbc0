"""A folder of generated files that the tool updates in place without touching anything else.

The folder keeps a manifest (.newsletter-site.json) of the files the tool wrote. An update:
refuses to overwrite a file it did not write; stages every changed file as a temp file first (so a
full disk or a permission error changes nothing); then renames them into place, removes the files
it wrote before that are no longer wanted, and prunes the folders that leaves empty. The manifest
lists the union of old and new files while that happens, so a crash never orphans a file.
Unchanged files are not rewritten: their bytes and times stay as they were.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from newsletter.errors import NewsletterError
from newsletter.fsutil import atomic_write_bytes

MANIFEST = ".newsletter-site.json"
LOCK = ".newsletter-site.lock"
LOCK_TIMEOUT = 30.0  # seconds to wait for another build of the same folder


@dataclass
class FolderUpdate:
    """What an update did, as paths relative to the folder."""

    folder: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def update_folder(folder: Path, files: dict[str, bytes]) -> FolderUpdate:
    """Make `folder` hold `files` (relative path -> bytes); remove what it wrote before and not now."""
    for rel in files:
        if not _safe(rel):
            raise ValueError(f"not a safe relative path: {rel!r}")  # a bug in the caller
    _refuse_foreign(folder, files, _manifest(folder))  # before creating anything
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder):
            return _update(folder, files)
    except OSError as exc:
        raise NewsletterError(f"{exc.filename or folder}: cannot write: {exc.strerror}") from None


def _update(folder: Path, files: dict[str, bytes]) -> FolderUpdate:
    old = _manifest(folder)
    _refuse_foreign(folder, files, old)
    report = FolderUpdate(folder)
    changed = {rel: data for rel, data in files.items() if _read(folder / rel) != data}
    report.written = sorted(changed)
    report.unchanged = sorted(set(files) - set(changed))
    stale = sorted(old - set(files))
    if not changed and not stale and (folder / MANIFEST).is_file():
        return report
    staged = _stage(folder, changed)
    _write_manifest(folder, old | set(files))
    for tmp, target in staged:
        os.replace(tmp, target)
    report.removed = _remove(folder, stale)
    _write_manifest(folder, set(files))
    return report


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    try:
        with FileLock(folder / LOCK, timeout=LOCK_TIMEOUT):
            yield
    except Timeout:
        raise NewsletterError(
            f"{folder}: another build is writing this folder (lock {LOCK} held)",
            hint="wait for it to finish; if none is running, delete the lock file",
        ) from None


def _safe(rel: str) -> bool:
    path = PurePosixPath(rel)
    return (
        bool(rel) and not path.is_absolute() and "\\" not in rel
        and all(part not in ("", ".", "..") for part in rel.split("/"))
        and rel not in (MANIFEST, LOCK)
    )


def _manifest(folder: Path) -> set[str]:
    """The files written last time; entries that are not safe relative paths are ignored."""
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return set()
    except (OSError, ValueError) as exc:
        raise NewsletterError(
            f"{path}: cannot read the list of files this tool wrote: {exc}",
            hint="delete it and build again (files already in the folder will then be refused)",
        ) from None
    listed = data.get("files", []) if isinstance(data, dict) else []
    return {rel for rel in listed if isinstance(rel, str) and _safe(rel)}


def _write_manifest(folder: Path, files: set[str]) -> None:
    data = {"generator": "newsletter archive", "note": "files this tool wrote and may replace or remove",
            "files": sorted(files)}
    atomic_write_bytes(folder / MANIFEST, (json.dumps(data, indent=1) + "\n").encode())


def _refuse_foreign(folder: Path, files: dict[str, bytes], ours: set[str]) -> None:
    """Refuse to overwrite a file (or a folder in the way) that this tool did not write."""
    clashes = []
    for rel in sorted(files):
        target = folder / rel
        if rel not in ours and (target.exists() or target.is_symlink()):
            clashes.append(target)
        else:
            clashes += [p for p in target.parents if p.is_relative_to(folder) and p != folder
                        and (p.is_file() or p.is_symlink())]
    if clashes:
        more = f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""
        raise NewsletterError(
            f"{clashes[0]}: already exists and was not written by this tool; not overwriting it{more}",
            hint="move it out of the way, or choose another folder with --out",
        )


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _stage(folder: Path, changed: dict[str, bytes]) -> list[tuple[Path, Path]]:
    """Write every changed file to a temp file beside its target; on any failure, undo it all."""
    staged: list[tuple[Path, Path]] = []
    made: list[Path] = []
    try:
        for rel, data in sorted(changed.items()):
            target = folder / rel
            for parent in reversed(target.parents):
                if parent.is_relative_to(folder) and not parent.exists():
                    parent.mkdir()
                    made.append(parent)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            staged.append((Path(name), target))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(name, target.stat().st_mode & 0o777 if target.exists() else 0o644)
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        for made_dir in reversed(made):
            with contextlib.suppress(OSError):
                made_dir.rmdir()
        raise
    return staged


def _remove(folder: Path, stale: list[str]) -> list[str]:
    """Delete the stale files (never outside the folder) and the folders that leaves empty."""
    removed = []
    root = folder.resolve()
    for rel in stale:
        target = folder / rel
        if not target.parent.resolve().is_relative_to(root) or target.is_dir():
            continue
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
            removed.append(rel)
        for parent in target.parents:
            if parent == folder or not parent.is_relative_to(folder):
                break
            try:
                parent.rmdir()  # only succeeds when empty: someone else's files keep it
            except OSError:
                break
    return removed
