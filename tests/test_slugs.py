"""Issue 9, item 2 and item 18: every issue has a slug of its own, and the `issues` listing.

Titles in any script give distinct readable slugs; `new --slug`; every command that finds an issue
refuses a slug two files share, naming both; racing `new`s never overwrite each other.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.errors import IssueError
from newsletter.issues import SLUG_PATTERN, new_issue, parse_issue, slugify
from newsletter.preview.server import PreviewServer
from tests.helpers import one_error_line

SLUG = "the-fear-of-entering-the-room"
SEED = f"issues/2026-11-23-{SLUG}.md"

TITLES = {
    "潮だまりは小さな海です": "chao-damariha-xiao-sana-hai-desu",  # Japanese (kanji read as pinyin)
    "مرحبا بالعالم": "mrhb-bl-lm",  # Arabic
    "Καλημέρα κόσμε": "kalimera-kosme",  # Greek
    "Привет, мир": "privet-mir",  # Cyrillic
    "你好，世界": "ni-hao-shi-jie",  # Chinese
    "안녕하세요 세계": "an-nyeong-ha-se-yo-se-gye",  # Korean
    "שלום עולם": "slvm-vlm",  # Hebrew
    "नमस्ते दुनिया": "nmste-duniya",  # Devanagari
    "Ça va? — Déjà vu!": "ca-va-deja-vu",
    "🌊 Tide 🌊": "ocean-tide-ocean",
}


@pytest.mark.parametrize(("title", "slug"), TITLES.items())
def test_titles_in_any_script_give_a_readable_ascii_slug(title: str, slug: str) -> None:
    assert slugify(title) == slug
    assert SLUG_PATTERN.match(slug)


def test_titles_in_different_scripts_never_share_a_slug() -> None:
    slugs = [slugify(t) for t in [*TITLES, "???", "!!!", "…", "—"]]
    assert len(set(slugs)) == len(slugs)
    assert all(SLUG_PATTERN.match(s) for s in slugs)
    assert slugify("???").startswith("issue-") and slugify("???") == slugify("???")


def test_new_gives_japanese_and_arabic_titles_distinct_slugs(newsletter_dir: Path, runner: CliRunner) -> None:
    for title in ("潮だまりは小さな海です", "مرحبا بالعالم"):
        result = runner.invoke(app, ["new", title])
        assert result.exit_code == 0, result.output
    slugs = {parse_issue(p).slug for p in (newsletter_dir / "issues").glob("*.md")}
    assert {"chao-damariha-xiao-sana-hai-desu", "mrhb-bl-lm"} <= slugs


def test_new_takes_a_slug(newsletter_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["new", "潮だまりは小さな海です", "--slug", "tide-pools"])
    assert result.exit_code == 0, result.output
    path = next((newsletter_dir / "issues").glob("*-tide-pools.md"))
    issue = parse_issue(path)
    assert issue.slug == "tide-pools" and issue.title == "潮だまりは小さな海です"


@pytest.mark.parametrize(("slug", "message"), [
    ("Not A Slug", "slug 'Not A Slug' must be lower-case letters, digits and hyphens"),
    ("a" * 300, "is 300 characters: at most 100"),
    ("../up", "must be lower-case letters"),
])
def test_new_refuses_a_bad_slug(newsletter_dir: Path, runner: CliRunner, slug: str, message: str) -> None:
    before = sorted((newsletter_dir / "issues").iterdir())
    assert message in one_error_line(runner.invoke(app, ["new", "A title", "--slug", slug]))
    assert sorted((newsletter_dir / "issues").iterdir()) == before


def test_new_refuses_a_slug_another_issue_has_naming_both_files(newsletter_dir: Path, runner: CliRunner) -> None:
    line = one_error_line(runner.invoke(app, ["new", "The Fear of Entering the Room"]))
    assert f"2026-11-23-{SLUG}.md" in line.split(f"slug '{SLUG}' is already the slug of ")[1]
    assert len(list((newsletter_dir / "issues").glob("*.md"))) == 1
    # a slug set only in another file's front matter counts too
    (newsletter_dir / "issues" / "2026-12-01-x.md").write_text("---\ntitle: X\nslug: custom\n---\nx\n")
    line = one_error_line(runner.invoke(app, ["new", "Custom", "--slug", "custom"]))
    assert line.endswith("is already the slug of " + str(newsletter_dir / "issues" / "2026-12-01-x.md"))


def shared_slug_letter(folder: Path) -> Path:
    """Add a second issue whose front matter gives it the seed's slug."""
    other = folder / "issues" / "2026-12-07-second.md"
    other.write_text(f"---\ntitle: A second issue\nslug: {SLUG}\nstatus: ready\n---\n\nHello.\n", encoding="utf-8")
    return other


@pytest.mark.parametrize("command", [
    ["check", SLUG], ["build", SLUG], ["send", SLUG, "--yes"], ["status", SLUG],
    ["check", "issues/2026-12-07-second.md"], ["send", "issues/2026-12-07-second.md", "--yes"],
])
def test_commands_refuse_a_slug_two_files_share(newsletter_dir: Path, runner: CliRunner, command: list[str]) -> None:
    shared_slug_letter(newsletter_dir)
    line = one_error_line(runner.invoke(app, command))
    assert f"slug '{SLUG}' is also the slug of" in line
    assert "2026-12-07-second.md" in line and f"2026-11-23-{SLUG}.md" in line
    assert not (newsletter_dir / "sends").exists() and not (newsletter_dir / "outbox").exists()
    assert not (newsletter_dir / "build").exists()


def test_preview_refuses_a_slug_two_files_share(newsletter_dir: Path) -> None:
    shared_slug_letter(newsletter_dir)
    server = PreviewServer(newsletter_dir / "newsletter.toml", port=0)
    with server.start() as srv, socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(f"GET /issue/{SLUG}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b" 500 " in head.split(b"\r\n")[0]
    text = body.decode()
    assert "is also the slug of" in text and "2026-12-07-second.md" in text


def test_new_refuses_when_another_date_has_the_slug(tmp_path: Path) -> None:
    first = new_issue(tmp_path, "On Colour", today=dt.date(2026, 1, 1))
    with pytest.raises(IssueError, match=f"slug 'on-colour' is already the slug of {first}"):
        new_issue(tmp_path, "On Colour", today=dt.date(2026, 2, 1))


def _new(folder: Path, title: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    return subprocess.run([sys.executable, "-m", "newsletter", "new", title], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("same_title", [True, False])
def test_sixteen_racing_news_never_lose_an_issue_reported_created(newsletter_dir: Path, same_title: bool) -> None:
    titles = ["The Same Title" if same_title else f"Racing issue {n}" for n in range(16)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda t: _new(newsletter_dir, t), titles))
    created = [r.stdout.split("Created ", 1)[1].strip() for r in results if r.returncode == 0]
    for path in created:
        assert (newsletter_dir / path).is_file(), path
    assert len(created) == len(set(created)) == (1 if same_title else 16)
    for r in results:
        if r.returncode != 0:
            assert "already exists" in r.stderr and "Traceback" not in r.stderr
    texts = [(newsletter_dir / p).read_text(encoding="utf-8") for p in created]
    assert all(t.startswith("---\ntitle: ") and t.endswith("TK: write here.\n") for t in texts)
    assert not [p for p in (newsletter_dir / "issues").iterdir() if p.name.endswith(".tmp")]


def _ledger(folder: Path, slug: str, records: list[dict[str, object]]) -> None:
    (folder / "sends").mkdir(exist_ok=True)
    (folder / "sends" / f"{slug}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_issues_lists_date_status_and_how_many_got_it(newsletter_dir: Path, runner: CliRunner) -> None:
    runner.invoke(app, ["new", "Привет, мир"])
    at = "2026-11-23T10:00:00Z"
    _ledger(newsletter_dir, SLUG, [
        {"event": "run", "run": "r1", "at": at, "provider": "smtp", "issue": SLUG},
        {"event": "pending", "run": "r1", "batch": 1, "at": at, "to": ["a@example.com", "b@example.com",
                                                                          "c@example.com", "d@example.com"]},
        {"event": "sent", "run": "r1", "batch": 1, "at": at, "to": ["a@example.com", "b@example.com"]},
        {"event": "failed", "run": "r1", "batch": 1, "at": at, "to": ["c@example.com"], "detail": "550"},
    ])
    result = runner.invoke(app, ["issues"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["DATE", "STATUS", "SENT", "SLUG", "TITLE"]
    today = dt.date.today().isoformat()
    rows = {line.split()[3]: line.split(None, 4) for line in lines[1:3]}
    assert rows["privet-mir"][:4] == [today, "draft", "-", "privet-mir"] and rows["privet-mir"][4] == "Привет, мир"
    assert rows[SLUG][:4] == ["2026-11-23", "ready", "2", SLUG]
    assert f"{SLUG}: 1 failed, 1 in doubt" in result.stdout
    assert lines[-1] == "2 issues"


def test_issues_reports_broken_files_and_shared_slugs(newsletter_dir: Path, runner: CliRunner) -> None:
    shared_slug_letter(newsletter_dir)
    (newsletter_dir / "issues" / "2026-12-08-broken.md").write_text("no front matter\n")
    result = runner.invoke(app, ["issues"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "2026-12-07-second.md: slug 'the-fear-of-entering-the-room' is also the slug of" in result.stderr
    assert "2026-12-08-broken.md:1: no front matter" in result.stderr
    assert result.stdout.splitlines()[-1] == "3 issues"


def test_issues_with_no_issues(tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "."]).exit_code == 0
    result = runner.invoke(app, ["issues"])
    assert result.exit_code == 0 and result.stdout.splitlines()[-1] == "0 issues"


# -- help: examples that paste, metavars that read ----------------------------------------------------


def _commands() -> list[tuple[list[str], str]]:
    """(command words, its help text) for every command."""
    import typer

    root = typer.main.get_command(app)
    out = []
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        out += [([name, sub], c.help or "") for sub, c in subs.items()] if subs else [([name], cmd.help or "")]
    return out


@pytest.mark.parametrize(("command", "doc"), _commands(), ids=lambda c: " ".join(c) if isinstance(c, list) else "")
def test_help_examples_are_never_rewrapped(command: list[str], doc: str) -> None:
    examples = [line.strip("\b ") for line in doc.splitlines() if line.strip("\b ").startswith("Example")]
    assert examples, f"'newsletter {' '.join(command)}' has no example"
    narrow = CliRunner(env={"COLUMNS": "40", "TERM": "dumb", "NO_COLOR": "1"})
    result = narrow.invoke(app, [*command, "--help"], terminal_width=40)
    assert result.exit_code == 0
    shown = [line.strip() for line in result.stdout.splitlines()]
    for line in examples:
        assert line in shown, f"'newsletter {' '.join(command)} --help' breaks {line!r} over lines"


@pytest.mark.parametrize("command", [["build"], ["check"], ["new"], ["init"], ["issues"], ["archive"]])
def test_metavars_are_words_not_types(runner: CliRunner, command: list[str]) -> None:
    text = runner.invoke(app, [*command, "--help"]).stdout
    assert "<" not in text.split("Arguments:")[-1].split("Options:")[-1].replace("<slug>", "")
    for word in ("<str>", "<path>", "<file>", "list[str]", "{issue}", "{title}"):
        assert word not in text
    if command[0] in ("build", "check"):
        assert "ISSUE" in text.splitlines()[0]
