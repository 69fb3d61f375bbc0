"""A folder of generated files that the tool updates in place without touching anything else.

The folder keeps a manifest (.newsletter-site.json) of the files the tool wrote. An update:
refuses to overwrite a file it did not write; stages every changed file as a temp file first (so a
full disk or a permission error changes nothing); then renames them into place, removes the files
it wrote before that are no longer wanted, and prunes the folders that leaves empty. The manifest
lists the union of old and new files while that happens, so a crash never orphans a file.
Unchanged files are not rewritten: their bytes and times stay as they were. The lock is a file
beside the folder (.site.lock for site/), never in it: the folder is what gets published. Temp files
a killed update left are removed by the next one, so a rerun converges on exactly the new output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from newsletter import files
from newsletter.errors import FileWriteError, NewsletterError
from newsletter.files import (
    atomic_write_bytes,
    discard,
    make_folders,
    remove_folders,
    replace_staged,
    stage_files,
    sweep_temps,
)

MANIFEST = ".newsletter-site.json"
OLD_LOCK = ".newsletter-site.lock"  # where earlier versions kept the lock: inside the folder
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
    made = make_folders(folder)
    try:
        with _locked(folder):
            return _update(folder, files)
    except BaseException as exc:
        remove_folders(made)
        if isinstance(exc, OSError) and not isinstance(exc, FileWriteError):
            raise FileWriteError(exc.filename or folder, exc) from None
        raise


def _update(folder: Path, files: dict[str, bytes]) -> FolderUpdate:
    _sweep(folder)
    old = _manifest(folder)
    _refuse_foreign(folder, files, old)
    report = FolderUpdate(folder)
    changed = {rel: data for rel, data in files.items() if _read(folder / rel) != data}
    report.written = sorted(changed)
    report.unchanged = sorted(set(files) - set(changed))
    stale = sorted(old - set(files))
    if not changed and not stale and (folder / MANIFEST).is_file():
        return report
    staged = stage_files(folder, changed)
    try:
        _write_manifest(folder, old | set(files))
    except BaseException:
        discard(staged, [])
        raise
    replace_staged(staged)
    report.removed = _remove(folder, stale)
    _write_manifest(folder, set(files))
    return report


def _locked(folder: Path) -> contextlib.AbstractContextManager[None]:
    lock = lock_path(folder)
    busy = NewsletterError(f"{folder}: another build is writing this folder (lock {lock} held)",
                           hint="wait for it to finish, then run this again")
    return files.locked(lock, timeout=LOCK_TIMEOUT, busy=busy)


def lock_path(folder: Path) -> Path:
    """The lock for updates of folder: .site.lock beside site/, outside what gets published.

    Where the folder's parent cannot be written (a web root the user owns in a folder they do
    not), the lock goes in a per-user folder in the system's temp folder instead.
    """
    resolved = folder.resolve()
    if os.access(resolved.parent, os.W_OK):
        return resolved.parent / f".{resolved.name}.lock"
    private = Path(tempfile.gettempdir()) / f"newsletter-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    return private / f"{hashlib.sha256(str(resolved).encode()).hexdigest()[:20]}.lock"


def _sweep(folder: Path) -> None:
    """Remove what a killed update left: its temp files, folders left empty, the old in-folder lock."""
    with contextlib.suppress(FileNotFoundError):
        (folder / OLD_LOCK).unlink()
    for parent, _dirs, _files in os.walk(folder, topdown=False):
        here = Path(parent)
        if sweep_temps(here) and here != folder and not any(here.iterdir()):
            with contextlib.suppress(OSError):
                here.rmdir()


def _safe(rel: str) -> bool:
    path = PurePosixPath(rel)
    return (
        bool(rel) and not path.is_absolute() and "\\" not in rel
        and all(part not in ("", ".", "..") for part in rel.split("/"))
        and rel not in (MANIFEST, OLD_LOCK)
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


def written_files(folder: Path) -> set[str]:
    """The files the last update wrote into folder (from its manifest); empty when it has none."""
    return _manifest(folder)
