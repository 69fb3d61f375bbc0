"""Writing the archive to a folder, and the `newsletter archive` command.

Stable bytes on rebuild, stale pages removed, nothing the tool did not write ever touched, and a
failed build leaving the folder exactly as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import feedparser
import pytest
from typer.testing import CliRunner

from newsletter.archive.site import write_site
from newsletter.cli import app
from newsletter.errors import NewsletterError, RenderError
from newsletter.issues import parse_issue, set_status
from newsletter.output import MANIFEST
from tests.archive.test_site import PNG, SEED, SUB_URL, add_fixture_issues, letter_settings
from tests.helpers import one_error_line


@pytest.fixture
def letter(newsletter_dir: Path) -> Path:
    add_fixture_issues(newsletter_dir)
    return newsletter_dir


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under folder (dotfiles too) -> (bytes, mtime in ns)."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_rebuild_with_no_change_writes_nothing_and_keeps_identical_bytes(letter: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    first = write_site(letter_settings(letter), out)
    assert first.written == sorted(first.written) and len(first.written) == 8 and first.issues == 3
    before = snapshot(out)
    second = write_site(letter_settings(letter), out)
    assert second.written == [] and second.removed == [] and len(second.unchanged) == 8
    assert snapshot(out) == before
    out2 = tmp_path / "elsewhere"
    write_site(letter_settings(letter), out2)  # a fresh build elsewhere: the same bytes
    assert {k: v[0] for k, v in snapshot(out2).items()} == {k: v[0] for k, v in before.items()}


def test_stale_pages_are_removed_and_nothing_else(letter: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    write_site(letter_settings(letter), out)
    (out / "CNAME").write_text("haileyscomet.example.com\n")
    (out / "banned-books" / "notes.txt").write_text("mine\n")
    set_status(parse_issue(letter / "issues" / "2026-10-05-the-logic-of-colour.md"), "draft")
    (letter / "issues" / "2026-09-01-banned-books.md").unlink()
    report = write_site(letter_settings(letter), out)
    assert report.removed == ["banned-books/index.html", "images/colour-wheel.png", "the-logic-of-colour/index.html"]
    assert not (out / "the-logic-of-colour").exists() and not (out / "images").exists()
    assert (out / "banned-books" / "notes.txt").read_text() == "mine\n" and (out / "CNAME").is_file()
    assert not (out / "banned-books" / "index.html").exists()
    feed = feedparser.parse((out / "feed.xml").read_bytes())
    assert [e.link.rsplit("/", 2)[1] for e in feed.entries] == [SEED]
    assert "banned-books" not in (out / "index.html").read_text()
    assert "the-logic-of-colour" not in (out / MANIFEST).read_text()


def test_turning_a_draft_back_to_ready_brings_its_page_back(letter: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    write_site(letter_settings(letter), out)
    draft = letter / "issues" / "2026-12-01-secret-draft.md"
    set_status(parse_issue(draft), "ready")
    report = write_site(letter_settings(letter), out)
    assert "secret-draft/index.html" in report.written and (out / "secret-draft" / "index.html").is_file()
    assert "index.html" in report.written and "feed.xml" in report.written


def test_files_the_tool_did_not_write_are_never_overwritten(letter: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("my hand-made home page\n")
    with pytest.raises(NewsletterError, match=r"site/index.html: already exists and was not written by this tool"):
        write_site(letter_settings(letter), out)
    assert [p.name for p in out.iterdir()] == ["index.html"]
    assert (out / "index.html").read_text() == "my hand-made home page\n"


def test_a_tampered_manifest_cannot_make_it_delete_outside_the_folder(letter: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    write_site(letter_settings(letter), out)
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"] += ["../precious.txt", outside.as_posix(), "images/../../precious.txt", 7]
    (out / MANIFEST).write_text(json.dumps(manifest))
    write_site(letter_settings(letter), out)
    assert outside.read_text() == "keep me\n"


def test_a_failed_build_leaves_every_file_as_it_was(letter: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    write_site(letter_settings(letter), out)
    before = snapshot(out)
    (letter / "templates").mkdir(exist_ok=True)
    broken = '{% extends "web_base.html" %}{% block main %}{{ no_such_field }}{% endblock %}'
    (letter / "templates" / "web_issue.html").write_text(broken)
    set_status(parse_issue(letter / "issues" / "2026-12-01-secret-draft.md"), "ready")
    with pytest.raises(RenderError, match="no_such_field"):
        write_site(letter_settings(letter), out)
    assert snapshot(out) == before


def test_a_write_that_fails_half_way_changes_nothing(
    letter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "site"
    write_site(letter_settings(letter), out)
    before = snapshot(out)
    set_status(parse_issue(letter / "issues" / "2026-12-01-secret-draft.md"), "ready")
    real_fsync, calls = os.fsync, []

    def failing_fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 3:  # the third staged file: the disk is full
            raise OSError(28, "No space left on device", str(out / "x"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(NewsletterError, match="No space left on device"):
        write_site(letter_settings(letter), out)
    assert snapshot(out) == before  # no temp files, no new folder, no half-written page
    assert len(calls) == 3 and not (out / "secret-draft").exists()


def test_the_archive_may_not_be_written_over_the_newsletter_itself(letter: Path) -> None:
    for folder in (letter, letter / "issues", letter.parent):
        with pytest.raises(NewsletterError, match="holds or is part of the newsletter's own files"):
            write_site(letter_settings(letter), folder)
    assert not (letter / "index.html").exists()


def test_cli_warns_when_readers_cannot_subscribe(letter: Path, runner: CliRunner) -> None:
    config = letter / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("\nsubscribe_mailto =", "\n# subscribe_mailto =")
                      .replace('\nurl = "https://haileyscomet.example.com/r/"', ""), encoding="utf-8")
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 0, result.output
    assert "warning: " in result.stderr and "no subscribe_url or subscribe_mailto" in result.stderr


def test_cli_writes_site_and_reports_what_changed(letter: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 0, result.output
    assert "  wrote    site/the-logic-of-colour/index.html" in result.stdout
    assert "Archive in site/: 3 issues; 8 written, 0 unchanged, 0 removed" in result.stdout
    assert "Publish site/ at https://haileyscomet.example.com/ (feed: https://haileyscomet.example.com/feed.xml)" \
        in result.stdout
    assert "warning: " not in result.stderr
    assert 'action="https://haileyscomet.example.com/r/subscribe"' in (letter / "site" / "index.html").read_text()
    assert (letter / "site" / "images" / "colour-wheel.png").read_bytes() == PNG
    again = runner.invoke(app, ["archive"])
    assert "8 unchanged, 0 removed" in again.stdout and "wrote" not in again.stdout


def test_cli_out_option_config_key_and_drafts(letter: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["archive", "--out", "public", "--include-drafts"])
    assert result.exit_code == 0, result.output
    assert "3 issues and 1 draft" in result.stdout and "do not publish this folder" in result.stdout
    assert "Publish" not in result.stdout
    assert (letter / "public" / "secret-draft" / "index.html").is_file()
    monkeypatch.setenv("NEWSLETTER_ARCHIVE__OUT", "from-config")
    monkeypatch.setenv("NEWSLETTER_NEWSLETTER__URL", SUB_URL)
    assert runner.invoke(app, ["archive"]).exit_code == 0
    assert SUB_URL in (letter / "from-config" / "index.html").read_text()
    assert not (letter / "from-config" / "secret-draft").exists()


def test_cli_bad_issue_is_one_line_naming_file_and_line_and_changes_nothing(letter: Path, runner: CliRunner) -> None:
    assert runner.invoke(app, ["archive"]).exit_code == 0
    before = snapshot(letter / "site")
    (letter / "issues" / "2026-09-01-banned-books.md").write_text("---\ntitle: Banned\ndate: 2026-13-45\n---\nx\n")
    line = one_error_line(runner.invoke(app, ["archive"]))
    assert "2026-09-01-banned-books.md:3: date '2026-13-45' is not YYYY-MM-DD" in line
    assert snapshot(letter / "site") == before


def test_cli_refusal_to_overwrite_is_one_line_with_a_hint(letter: Path, runner: CliRunner) -> None:
    (letter / "site").mkdir()
    (letter / "site" / "robots.txt").write_text("User-agent: *\nDisallow: /\n")
    result = runner.invoke(app, ["archive"])
    assert "robots.txt: already exists and was not written by this tool" in one_error_line(result)
    assert "hint: move it out of the way, or choose another folder with --out" in result.stderr


@pytest.mark.parametrize(("key", "value", "message"), [
    ("NEWSLETTER_NEWSLETTER__SUBSCRIBE_URL", "http://x.example/join", "subscribe_url: must be an https:// URL"),
    ("NEWSLETTER_NEWSLETTER__SUBSCRIBE_MAILTO", "nobody", "subscribe_mailto: not an address"),
    ("NEWSLETTER_ARCHIVE__FEED_ENTRIES", "-1", "feed_entries: must be 0 (all issues) or more"),
])
def test_cli_bad_archive_config_is_reported(
    letter: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, key: str, value: str, message: str
) -> None:
    monkeypatch.setenv(key, value)
    assert message in one_error_line(runner.invoke(app, ["archive"]))
    assert not (letter / "site").exists()


def test_archive_help_has_an_example(runner: CliRunner) -> None:
    result = runner.invoke(app, ["archive", "--help"])
    assert result.exit_code == 0 and "Example: newsletter archive --out site" in result.stdout
    assert "--include-drafts" in result.stdout and "--out" in result.stdout


def test_cli_summarises_a_long_list_of_written_files(letter: Path, runner: CliRunner) -> None:
    for day in range(1, 23):
        (letter / "issues" / f"2026-07-{day:02d}-note-{day}.md").write_text(
            f"---\ntitle: Note {day}\nstatus: sent\n---\n\nA short note, number {day}.\n"
        )
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("  wrote    ") == 20 and "  ... and 10 more" in result.stdout
    assert "Archive in site/: 25 issues; 30 written" in result.stdout
