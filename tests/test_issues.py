"""issues/*.md -> Issue: front matter, slugs, dates, errors with file:line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.errors import IssueError
from newsletter.issues import find_issue, new_issue, parse_issue, set_status, slugify

SEED = Path(__file__).resolve().parent.parent / "issues" / "2026-11-23-the-fear-of-entering-the-room.md"


def test_seed_front_matter() -> None:
    issue = parse_issue(SEED)
    assert issue.title == "The Fear of Entering the Room"
    assert issue.subtitle == "On Tarkovsky’s Stalker and the courage to face our own desire."
    assert issue.date == dt.date(2026, 11, 23) and issue.slug == "the-fear-of-entering-the-room"
    assert issue.effective_subject == issue.title and issue.effective_preheader == issue.subtitle
    assert issue.author == "Hailey Tai"


def test_seed_is_faithful_to_the_original_text() -> None:
    seed = Path(__file__).parent / "fixtures" / "seed" / "000_865110d913666294.txt"
    body = parse_issue(SEED).body
    lines = seed.read_text(encoding="utf-8").splitlines()
    for line in lines[2:]:
        if line.startswith(("“Hailey’s Comet”", "Author:")) or line == "Background Note":
            continue
        assert line in body, line[:60]
    assert "is where I write" not in body  # the newsletter's description lives in the footer
    assert body.count("> [!pullquote]") == 3 and "## Background Note" in body


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_slug_and_date_default_from_the_file_name(tmp_path: Path) -> None:
    issue = parse_issue(write(tmp_path, "2026-01-02-on-colour.md", "---\ntitle: On Colour\n---\nBody\n"))
    assert issue.slug == "on-colour" and issue.date == dt.date(2026, 1, 2) and issue.status == "draft"
    assert issue.body == "Body\n" and issue.body_line == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no front matter\n", ":1: no front matter"),
        ("---\ntitle: x\n", ":1: front matter is not closed"),
        ("---\ntitle: [unclosed\n---\n", ":3: front matter is not valid YAML"),
        ("---\ntitle: A\nsubjet: typo\n---\n", ":3: unknown front matter key 'subjet'"),
        ("---\ntitle: A\nstatus: published\n---\n", ":3: status must be one of draft, ready, sent"),
        ("---\ntitle: A\ndate: 2026-13-45\n---\n", ":3: date"),
        ("---\nsubtitle: no title\n---\n", "front matter needs a title"),
        ("---\ntitle: A\nslug: Not A Slug\n---\n", ":3: slug 'Not A Slug'"),
    ],
)
def test_bad_front_matter_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "2026-01-02-x.md", text)
    with pytest.raises(IssueError) as info:
        parse_issue(path)
    assert str(info.value).startswith(str(path)) and message in str(info.value)


def test_find_by_slug_path_or_front_matter_slug(tmp_path: Path) -> None:
    write(tmp_path, "2026-01-02-file-name.md", "---\ntitle: A\nslug: custom\n---\n")
    assert find_issue(tmp_path, "custom").title == "A"
    assert find_issue(tmp_path, "file-name").slug == "custom"
    assert find_issue(tmp_path, str(tmp_path / "2026-01-02-file-name.md")).slug == "custom"
    with pytest.raises(IssueError, match="no issue with slug or path 'nope'"):
        find_issue(tmp_path, "nope")


def test_new_issue_and_set_status_keep_the_rest_of_the_file(tmp_path: Path) -> None:
    path = new_issue(tmp_path, "The Logic of Colour: “Blue”", today=dt.date(2026, 12, 1))
    assert path.name == "2026-12-01-the-logic-of-colour-blue.md"
    issue = parse_issue(path)
    assert issue.title == "The Logic of Colour: “Blue”" and issue.status == "draft"
    before = path.read_text(encoding="utf-8")
    set_status(issue, "sent")
    after = path.read_text(encoding="utf-8")
    assert parse_issue(path).status == "sent"
    assert after.replace("status: sent", "status: draft") == before
    with pytest.raises(IssueError, match="already exists"):
        new_issue(tmp_path, "The Logic of Colour: “Blue”", today=dt.date(2026, 12, 1))
    assert slugify("Ça va? — Déjà vu!") == "ca-va-deja-vu"


def test_a_lone_surrogate_escape_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "2026-01-02-x.md", '---\ntitle: "\\ud800"\n---\n')
    with pytest.raises(IssueError, match=":2: title has an escape that is not a character"):
        parse_issue(path)
