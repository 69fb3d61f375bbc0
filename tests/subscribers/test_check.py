"""`check` finds every problem with its line; `check --fix` repairs only what needs no judgement."""

from __future__ import annotations

from pathlib import Path

from newsletter.subscribers.check import check_list, fix_list
from newsletter.subscribers.store import load_subscribers

HEADER = "email,name,status,tags,created_at,updated_at,source,city\n"


def found(path: Path) -> list[tuple[int, str, bool]]:
    return [(p.line, p.message, p.fixable) for p in check_list(path).problems]


def test_repeated_rows_that_agree_are_merged_restrictively(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER
                    + "ann@example.com,Ann,active,books,2026-03-01T00:00:00Z,2026-03-01T00:00:00Z,cli,\n"
                    + "kim@example.com,Kim,active,,,,cli,Oslo\n"
                    + "ANN@example.com,,bounced,film;books,2026-01-01T00:00:00Z,2026-05-01T00:00:00Z,import:x,Rome\n")
    assert found(path) == [(4, "ANN@example.com is listed twice (first on line 2): merged into that row, the more "
                               "restrictive status kept", True)]
    report = fix_list(path)
    assert report.fixed and report.remaining == []
    assert path.read_text() == (HEADER
                                + "ann@example.com,Ann,bounced,books;film,2026-01-01T00:00:00Z,2026-05-01T00:00:00Z,"
                                "cli,Rome\n"
                                + "kim@example.com,Kim,active,,,,cli,Oslo\n")
    assert check_list(path).problems == []


def test_repeated_rows_that_disagree_are_left_for_a_person(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    text = HEADER + "ann@example.com,Ann,active,,,,cli,Oslo\nann@example.com,Ann,active,,,,cli,Rome\n"
    path.write_text(text)
    assert found(path) == [(3, "ann@example.com is listed twice (first on line 2) and the rows differ in city: "
                               "merge them by hand", False)]
    assert not fix_list(path).fixed and path.read_text() == text


def test_check_goes_on_past_a_wide_row_and_fix_leaves_unfixable_lines_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + "a@example.com,A,active,x,,,cli,,extra\n"
                    + "b@example.com,B,ACTIVE , a ;b;a,2026-02-03,,cli,\n"
                    + "c@example.com,C,maybe,,yesterday,,cli,\n")
    assert found(path) == [
        (2, "9 values but the header has 8 columns", False),
        (3, "status 'ACTIVE ' is written 'active'", True),
        (3, "tags ' a ;b;a' are written 'a;b'", True),
        (3, "created_at '2026-02-03' is written '2026-02-03T00:00:00Z'", True),
        (4, "unknown status 'maybe' (set it to one of active, bounced, unsubscribed, complained)", False),
        (4, "created_at 'yesterday' is not an ISO 8601 date and time", False),
    ]
    report = fix_list(path)
    assert report.rows == 3 and [p.line for p in report.remaining] == [2, 4, 4]
    assert path.read_text().splitlines()[1:] == [
        "a@example.com,A,active,x,,,cli,,extra",
        "b@example.com,B,active,a;b,2026-02-03T00:00:00Z,,cli,",
        "c@example.com,C,maybe,,yesterday,,cli,",
    ]


def test_broken_quoting_stops_the_check_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + "a@example.com,A,active,,,,cli,\nb@example.com,\"B,active,,,,cli,\n")
    report = check_list(path)
    assert [(p.line, p.message) for p in report.problems] == [(3, "a quote opened in this row is never closed")]


def test_a_clean_list_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + "a@example.com,A,active,,2026-01-01T00:00:00Z,,cli,\n")
    mtime = path.stat().st_mtime_ns
    report = fix_list(path)
    assert (report.rows, report.problems, report.fixed) == (1, [], False)
    assert path.stat().st_mtime_ns == mtime and load_subscribers(path).rows[0].email == "a@example.com"
