"""Issue 9, items 16-18: files. No traceback for a file where a folder goes, a name too long, a full
disk or a read-only folder; a failed command leaves nothing new; a killed archive, build or init
converges on the next run; the site's lock is not in the site; init writes a .gitignore.

The full disk and the read-only folder are real (a small tmpfs) when the tests run as root, as CI
does; elsewhere os.fsync is made to fail with ENOSPC / EROFS instead.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter import files as fsutil
from newsletter.cli import app
from tests.helpers import one_error_line

SLUG = "the-fear-of-entering-the-room"


def files_under(folder: Path) -> set[str]:
    """Every file and folder under folder, relative (dotfiles too)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")} if folder.exists() else set()


def temps_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def _mount(folder: Path, size: str, read_only: bool = False) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    opts = f"size={size}" + (",ro" if read_only else "")
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


ROOT = Path(__file__).resolve().parent.parent


def _letter(folder: Path) -> None:
    (folder / "issues").mkdir()
    (folder / "newsletter.toml").write_bytes((ROOT / "newsletter.toml").read_bytes())


@pytest.fixture
def broken_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A folder on a disk that is full ("full", "full+letter": with a newsletter on it) or read-only."""
    kind = request.param
    folder = tmp_path / "disk"
    if _mount(folder, "64k", read_only=kind == "ro"):
        try:
            if kind.startswith("full"):
                if kind == "full+letter":
                    _letter(folder)
                with pytest.raises(OSError, match="No space"), open(folder / "filler", "wb") as fh:
                    while True:
                        fh.write(b"x" * 4096)
                        fh.flush()
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    if kind == "full+letter":
        _letter(folder)
    code = errno.ENOSPC if kind.startswith("full") else errno.EROFS

    def fail(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fsutil.os, "fsync", fail)
    yield folder


@pytest.mark.parametrize("broken_disk", ["full", "ro"], indirect=True)
def test_build_to_a_full_or_read_only_disk_is_one_line_and_leaves_nothing(
    newsletter_dir: Path, runner: CliRunner, broken_disk: Path
) -> None:
    before = files_under(broken_disk)
    line = one_error_line(runner.invoke(app, ["build", SLUG, "--out", str(broken_disk / "build")]))
    assert "cannot write" in line and str(broken_disk) in line
    assert files_under(broken_disk) == before


@pytest.mark.parametrize("broken_disk", ["full", "ro"], indirect=True)
def test_archive_to_a_full_or_read_only_disk_is_one_line_and_leaves_nothing(
    newsletter_dir: Path, runner: CliRunner, broken_disk: Path
) -> None:
    before = files_under(broken_disk)
    line = one_error_line(runner.invoke(app, ["archive", "--out", str(broken_disk / "site")]))
    assert "cannot write" in line
    assert files_under(broken_disk) - {".site.lock"} == before  # the lock (beside the site) may stay


@pytest.mark.parametrize("broken_disk", ["full", "ro"], indirect=True)
def test_init_on_a_full_or_read_only_disk_is_one_line_and_leaves_nothing(
    runner: CliRunner, broken_disk: Path
) -> None:
    before = files_under(broken_disk)
    line = one_error_line(runner.invoke(app, ["init", str(broken_disk / "letter"), "--name", "Tide"]))
    assert "cannot write" in line
    assert files_under(broken_disk) == before


@pytest.mark.parametrize("broken_disk", ["full+letter"], indirect=True)
def test_new_on_a_full_disk_is_one_line_and_leaves_nothing(
    runner: CliRunner, broken_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(broken_disk)
    before = files_under(broken_disk)
    line = one_error_line(runner.invoke(app, ["new", "On Colour"]))
    assert "cannot write" in line and "on-colour.md" in line
    assert files_under(broken_disk) == before


def test_build_out_a_file_is_one_line(newsletter_dir: Path, runner: CliRunner) -> None:
    (newsletter_dir / "out.txt").write_text("mine\n")
    line = one_error_line(runner.invoke(app, ["build", SLUG, "--out", "out.txt"]))
    assert "out.txt: cannot write: it is a file, and a folder is needed here" in line
    assert (newsletter_dir / "out.txt").read_text() == "mine\n"


def test_init_a_file_is_one_line(tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine\n")
    line = one_error_line(runner.invoke(app, ["init", "notes.txt"]))
    assert "notes.txt: cannot write: it is a file" in line
    assert files_under(tmp_path) == {"notes.txt"}


def test_a_name_too_long_is_one_line_and_leaves_nothing(newsletter_dir: Path, runner: CliRunner) -> None:
    before = files_under(newsletter_dir)
    long = "x" * 300
    assert "File name too long" in one_error_line(runner.invoke(app, ["build", SLUG, "--out", f"a/{long}/b"]))
    assert "File name too long" in one_error_line(runner.invoke(app, ["archive", "--out", f"a/{long}"]))
    assert "File name too long" in one_error_line(runner.invoke(app, ["init", f"a/{long}"]))
    assert files_under(newsletter_dir) == before


def test_a_300_character_slug_is_refused_with_file_and_line(newsletter_dir: Path, runner: CliRunner) -> None:
    path = newsletter_dir / "issues" / "2026-12-01-long.md"
    path.write_text(f"---\ntitle: Long\nslug: {'a' * 300}\n---\nx\n")
    line = one_error_line(runner.invoke(app, ["build", "issues/2026-12-01-long.md"]))
    assert "2026-12-01-long.md:3: slug 'aaaaaaaaaaaaaaaaaaaa'... is 300 characters: at most 100" in line
    assert not (newsletter_dir / "build").exists()


# -- a killed command converges ---------------------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_files_a_killed_archive_left_are_gone_after_the_next_run(newsletter_dir: Path, runner: CliRunner,
                                                                     tmp_path: Path) -> None:
    assert runner.invoke(app, ["archive"]).exit_code == 0
    site, pid = newsletter_dir / "site", dead_pid()
    (site / f".index.html.{pid}-abcd1234.tmp").write_text("half")
    (site / f".newsletter-site.json.{pid}-x1.tmp").write_text("half")
    (site / "gone-issue").mkdir()
    (site / "gone-issue" / f".index.html.{pid}-zz.tmp").write_text("half")
    (site / ".newsletter-site.lock").write_text("")  # where the lock used to be
    live = site / f".feed.xml.{os.getpid()}-running.tmp"  # a write still in progress is left alone
    live.write_text("busy")
    assert runner.invoke(app, ["archive"]).exit_code == 0
    assert temps_under(site) == [live]
    live.unlink()
    assert runner.invoke(app, ["archive", "--out", str(tmp_path / "fresh")]).exit_code == 0
    assert files_under(site) == files_under(tmp_path / "fresh")


def _kill_after(args: list[str], cwd: Path, delay: float) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "newsletter", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("command", [["archive"], ["build", SLUG]])
def test_a_killed_archive_or_build_converges(newsletter_dir: Path, runner: CliRunner, tmp_path: Path,
                                             command: list[str]) -> None:
    """kill -9 at many moments; the next run gives exactly a fresh run's files and no temp file."""
    folder = newsletter_dir / ("site" if command == ["archive"] else "build")
    assert runner.invoke(app, [*command, "--out", str(tmp_path / "fresh")]).exit_code == 0
    for delay in (0.2, 0.4, 0.6, 0.8, 1.0, 1.3):
        _kill_after([*command, "--out", str(folder)], newsletter_dir, delay)
        result = runner.invoke(app, [*command, "--out", str(folder)])
        assert result.exit_code == 0, result.output
        assert not temps_under(folder)
        assert files_under(folder) == files_under(tmp_path / "fresh")
        for rel in files_under(folder):
            if (folder / rel).is_file() and not rel.endswith(".eml"):  # a message has its own Message-ID
                assert (folder / rel).read_bytes() == (tmp_path / "fresh" / rel).read_bytes(), rel
            elif rel.endswith(".eml"):
                assert (folder / rel).read_bytes().rstrip().endswith(b"==--")


def test_a_killed_init_is_finished_by_running_it_again(tmp_path: Path, runner: CliRunner,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "letter" / "issues").mkdir(parents=True)  # what an init killed half way left
    (tmp_path / "letter" / "subscribers.csv").write_text("email,name,status,tags,created_at,updated_at,source\n"
                                                         "ada@example.com,,active,,,,\n")
    result = runner.invoke(app, ["init", "letter", "--name", "Tide"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == ["Created letter/.gitignore", "Created letter/newsletter.toml"]
    assert "ada@example.com" in (tmp_path / "letter" / "subscribers.csv").read_text()  # kept, not overwritten
    assert "already exists" in one_error_line(runner.invoke(app, ["init", "letter"]))


@pytest.mark.parametrize("delay", [0.25, 0.45, 0.65])
def test_init_killed_at_any_moment_can_be_finished(tmp_path: Path, delay: float) -> None:
    _kill_after(["init", "letter", "--name", "Tide"], tmp_path, delay)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    rerun = subprocess.run([sys.executable, "-m", "newsletter", "init", "letter", "--name", "Tide"],
                           cwd=tmp_path, capture_output=True, text=True, env=env)
    letter = tmp_path / "letter"
    if rerun.returncode != 0:  # the killed one had finished
        assert "newsletter.toml: already exists" in rerun.stderr
    assert files_under(letter) == {".gitignore", "issues", "newsletter.toml", "subscribers.csv"}
    assert 'name = "Tide"' in (letter / "newsletter.toml").read_text()


def test_temp_files_a_killed_new_or_init_left_are_swept(tmp_path: Path, runner: CliRunner,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pid = dead_pid()
    (tmp_path / "letter").mkdir()
    (tmp_path / "letter" / f".newsletter.toml.{pid}-ab.tmp").write_text("half")
    assert runner.invoke(app, ["init", "letter"]).exit_code == 0
    (tmp_path / "letter" / "issues" / f".2026-01-01-x.md.{pid}-cd.tmp").write_text("half")
    monkeypatch.chdir(tmp_path / "letter")
    assert runner.invoke(app, ["new", "On Colour"]).exit_code == 0
    assert not temps_under(tmp_path)


# -- the lock, .gitignore ---------------------------------------------------------------------------


def test_the_site_lock_is_beside_the_site_not_in_it(newsletter_dir: Path, runner: CliRunner) -> None:
    assert runner.invoke(app, ["archive"]).exit_code == 0
    site = newsletter_dir / "site"
    assert not [p for p in site.rglob("*") if "lock" in p.name]
    assert (newsletter_dir / ".site.lock").exists()


def test_init_writes_a_gitignore_for_addresses_and_output(tmp_path: Path, runner: CliRunner,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "letter"]).exit_code == 0
    ignored = (tmp_path / "letter" / ".gitignore").read_text().splitlines()
    for entry in ("outbox/", "sends/", "build/", "site/", ".*.lock"):
        assert entry in ignored
    if subprocess.run(["git", "--version"], capture_output=True).returncode == 0:
        letter = tmp_path / "letter"
        subprocess.run(["git", "init", "-q"], cwd=letter, check=True)
        for name in ("outbox/x/1.eml", "sends/x.jsonl", "build/x/email.html", "site/index.html"):
            (letter / name).parent.mkdir(parents=True, exist_ok=True)
            (letter / name).write_text("x")
        (letter / ".site.lock").write_text("")
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=letter,
                                capture_output=True, text=True, check=True).stdout
        assert sorted(line[3:] for line in status.splitlines()) == [".gitignore", "newsletter.toml"]

