"""`newsletter subscribers ...` as a writer runs it, asserting on the file each command leaves."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from newsletter.cli import app
from newsletter.subscribers.store import load_subscribers
from tests.helpers import one_error_line

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "subscribers"
COMMANDS = ("add", "unsubscribe", "remove", "list", "count", "stats", "import", "export", "check")


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, ["subscribers", *args])


def ok(runner: CliRunner, *args: str) -> str:
    result = run(runner, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def statuses(path: Path) -> dict[str, str]:
    return {r.email: r.status for r in load_subscribers(path).rows}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(runner: CliRunner, command: str) -> None:
    out = ok(runner, command, "--help")
    assert f"Example: newsletter subscribers {command}" in " ".join(out.split())
    assert "--subscribers" in out


def test_add_unsubscribe_and_resubscribe(newsletter_dir: Path, runner: CliRunner) -> None:
    lst = newsletter_dir / "subscribers.csv"
    assert ok(runner, "add", "Hedy@Example.com", "--name", "Hedy Lamarr", "--tag", "film", "--tag", "tech") == (
        "Added Hedy@example.com.\n")
    assert ok(runner, "add", "hedy@example.com") == "Hedy@example.com is already subscribed.\n"
    assert ok(runner, "add", "hedy@example.com", "--tag", "art") == (
        "Hedy@example.com is already subscribed; now tagged film, tech, art.\n")
    assert ok(runner, "unsubscribe", "hedy@example.com", "spam.reporter@example.com") == (
        "Unsubscribed Hedy@example.com (was active).\n"
        "spam.reporter@example.com already has status complained; left as it is.\n")
    line = one_error_line(run(runner, "add", "hedy@example.com"))
    since = load_subscribers(lst).rows[-1].updated_at[:10]
    assert line == f"error: Hedy@example.com has status unsubscribed since {since}: not resubscribed"
    assert ok(runner, "add", "hedy@example.com", "--resubscribe") == (
        "Resubscribed Hedy@example.com (was unsubscribed).\n")
    row = load_subscribers(lst).rows[-1]
    assert (row.email, row.name, row.status, row.tags, row.source) == (
        "Hedy@example.com", "Hedy Lamarr", "active", ("film", "tech", "art"), "cli")


def test_remove_needs_forget_and_then_deletes_the_row(newsletter_dir: Path, runner: CliRunner) -> None:
    lst = newsletter_dir / "subscribers.csv"
    before = lst.read_bytes()
    result = run(runner, "remove", "marek@example.net")
    assert one_error_line(result) == "error: remove deletes rows for good, so it needs --forget; nothing was removed"
    assert "unsubscribe ADDRESS" in result.stderr and lst.read_bytes() == before
    assert ok(runner, "remove", "marek@example.net", "--forget") == (
        "Forgot marek@example.net (row deleted; a later import could add them again).\n")
    assert "marek@example.net" not in statuses(lst) and len(statuses(lst)) == 11


def test_list_count_and_stats(newsletter_dir: Path, runner: CliRunner) -> None:
    table = ok(runner, "list", "--status", "active", "--tag", "film")
    assert [line.split()[0] for line in table.splitlines()] == [
        "email", "grace.hopper@example.org", "amira.haddad@example.com", "kenji.watanabe@example.jp", "3"]
    as_csv = ok(runner, "list", "--format", "csv", "--status", "bounced")
    assert list(csv.reader(io.StringIO(as_csv))) == [
        ["email", "name", "status", "tags", "created_at", "updated_at", "source"],
        ["old.address@example.com", "Pat Morgan", "bounced", "", "2026-04-20T16:00:00Z", "2026-09-02T11:31:05Z",
         "import:mailchimp"]]
    as_json = json.loads(ok(runner, "list", "--format", "json", "--tag", "founding"))
    assert [(p["email"], p["tags"]) for p in as_json] == [
        ("ada.lovelace@example.com", ["founding", "books"]), ("noah.b@example.com", ["books", "founding"])]
    assert ok(runner, "count") == "9\n" and ok(runner, "count", "--status", "complained") == "1\n"
    assert ok(runner, "count", "--tag", "books") == "3\n"
    stats = ok(runner, "stats")
    assert stats.startswith("12 subscribers\n  active                 9\n  bounced                1\n")
    assert "Tags (active subscribers)\n  books                                  3\n" in stats
    assert re.search(r"^2026-06 +1 +1 +\+0$", stats, re.M)


def test_subscribers_option_overrides_the_config_on_every_command(newsletter_dir: Path, runner: CliRunner) -> None:
    default = newsletter_dir / "subscribers.csv"
    before = default.read_bytes()
    other = newsletter_dir / "other.csv"
    ok(runner, "add", "a@example.com", "--subscribers", str(other))
    ok(runner, "import", str(FIX / "ghost.csv"), "--subscribers", str(other))
    ok(runner, "unsubscribe", "a@example.com", "--subscribers", str(other))
    assert ok(runner, "count", "--subscribers", str(other)) == "1\n"
    assert ok(runner, "list", "--format", "csv", "--subscribers", str(other)).count("\n") == 4
    assert "3 subscribers" in ok(runner, "stats", "--subscribers", str(other))
    assert ok(runner, "export", "--subscribers", str(other)).count("\n") == 4
    ok(runner, "check", "--subscribers", str(other))
    ok(runner, "remove", "a@example.com", "--forget", "--subscribers", str(other))
    assert set(statuses(other)) == {"grace.hopper@example.org", "jon.olsen@example.com"}
    assert default.read_bytes() == before


def test_without_newsletter_toml_only_subscribers_works(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(runner, "count")
    assert "no newsletter.toml here" in one_error_line(result) and "--subscribers PATH" in result.stderr
    assert ok(runner, "add", "a@example.com", "--subscribers", "list.csv") == "Added a@example.com.\n"
    assert ok(runner, "count", "--subscribers", "list.csv") == "1\n"


def test_import_reports_each_skip_with_its_line_and_dry_run_writes_nothing(
    newsletter_dir: Path, runner: CliRunner
) -> None:
    lst = newsletter_dir / "subscribers.csv"
    export = newsletter_dir / "mailchimp.zip"
    with zipfile.ZipFile(export, "w") as archive:
        for member in sorted((FIX / "mailchimp_export").glob("*.csv")):
            archive.write(member, member.name)
    before = lst.read_bytes()
    out = ok(runner, "import", "mailchimp.zip", "--dry-run", "--tag", "mc")
    assert out.splitlines() == [
        "Mailchimp export (utf-8): 0 added, 5 updated, 0 unchanged, 3 skipped",
        "  skipped mailchimp.zip:nonsubscribed_members_export_a1b2c3d4e5.csv:2: a Mailchimp non-subscribed "
        "contact (never opted in)",
        "  skipped mailchimp.zip:subscribed_members_export_a1b2c3d4e5.csv:4: same address as "
        "mailchimp.zip:unsubscribed_members_export_a1b2c3d4e5.csv:3: merged into it",
        "  skipped mailchimp.zip:subscribed_members_export_a1b2c3d4e5.csv:5: 'not-an-address' is not a valid "
        "address: An email address must have an @-sign.",
        "Dry run: nothing was written.",
    ]
    assert lst.read_bytes() == before
    ok(runner, "import", "mailchimp.zip")
    assert statuses(lst)["ada.lovelace@example.com"] == "unsubscribed"
    assert statuses(lst)["priya.nair@example.in"] == "unsubscribed"


def test_export_is_safe_to_open_in_a_spreadsheet(newsletter_dir: Path, runner: CliRunner) -> None:
    ok(runner, "add", "mallory@example.com", "--name", '=HYPERLINK("http://evil.example","x")', "--tag", "@home")
    ok(runner, "add", "plus@example.com", "--name", "+1 fan", "--tag", "-minus")
    assert ok(runner, "export", "-o", "out.csv", "--status", "active") == "Exported 11 subscribers to out.csv.\n"
    raw = (newsletter_dir / "out.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfemail,name,status") and raw.count(b"\r\n") == 12
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[-2][:4] == ["mallory@example.com", '\'=HYPERLINK("http://evil.example","x")', "active", "'@home"]
    assert rows[-1][:4] == ["plus@example.com", "'+1 fan", "active", "'-minus"]
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@")]
    people = json.loads(ok(runner, "export", "--format", "json", "--status", "complained"))
    assert people == [{"email": "spam.reporter@example.com", "name": "", "status": "complained", "tags": [],
                       "created_at": "2026-07-08T08:08:08Z", "updated_at": "2026-08-30T09:15:00Z",
                       "source": "import:mailchimp"}]
    line = one_error_line(run(runner, "export", "-o", "subscribers.csv"))
    assert "that is the subscriber list itself" in line


def test_check_lists_problems_and_fix_repairs_the_safe_ones(newsletter_dir: Path, runner: CliRunner) -> None:
    lst = newsletter_dir / "subscribers.csv"
    assert ok(runner, "check") == "subscribers.csv: 12 rows, 0 problems\n"
    with lst.open("a", encoding="utf-8") as f:
        f.write(" Zed@Example.COM ,Zed,Active,,2026-01-01 10:00:00,,cli\nbob@,Bob,active,,,,cli\n"
                "ZED@example.com,,unsubscribed,x,,,cli\n")
    result = run(runner, "check")
    assert result.exit_code == 1 and result.stdout.splitlines() == [
        "subscribers.csv:14: address ' Zed@Example.COM ' is written 'Zed@example.com' (fixable)",
        "subscribers.csv:14: status 'Active' is written 'active' (fixable)",
        "subscribers.csv:14: created_at '2026-01-01 10:00:00' is written '2026-01-01T10:00:00Z' (fixable)",
        "subscribers.csv:15: 'bob@' is not a valid address: There must be something after the @-sign.",
        "subscribers.csv:16: ZED@example.com is listed twice (first on line 14): merged into that row, the more "
        "restrictive status kept (fixable)",
        "subscribers.csv: 15 rows, 5 problems (4 fixable: run 'newsletter subscribers check --fix')",
    ]
    line = one_error_line(run(runner, "count"))  # a read command refuses, and repairs nothing
    assert line == ("error: subscribers.csv:14: unknown status 'Active' "
                    "(expected active, bounced, unsubscribed, complained)")
    result = run(runner, "check", "--fix")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == "subscribers.csv: 15 rows, 1 problem left (4 fixed)"
    assert lst.read_text().splitlines()[-2:] == ["Zed@example.com,Zed,unsubscribed,x,2026-01-01T10:00:00Z,,cli",
                                                "bob@,Bob,active,,,,cli"]


MALFORMED = {
    "bad address": ("bob@,Bob,active,,,,cli\n", 15, "'bob@' is not a valid address"),
    "unknown status": ("bob@example.com,Bob,gone,,,,cli\n", 15, "unknown status 'gone'"),
    "repeated": ("ADA.LOVELACE@example.com,Ada,active,,,,cli\n", 15, "listed twice (first on line 2)"),
    "open quote": ('bob@example.com,"Bob,active,,,,cli\n', 15, "a quote opened in this row is never closed"),
    "too wide": ("bob@example.com,Bob,Jr,active,,,,cli\n", 15, "8 values but the header has 7 columns"),
}
COMMAND_LINES = [
    ("add", "new@example.com"), ("unsubscribe", "ada.lovelace@example.com"),
    ("remove", "ada.lovelace@example.com", "--forget"), ("list",), ("count",), ("stats",), ("export",),
    ("import", "__export__"),
]


@pytest.mark.parametrize("problem", MALFORMED)
@pytest.mark.parametrize("args", COMMAND_LINES, ids=[a[0] for a in COMMAND_LINES])
def test_a_malformed_list_stops_every_command_with_file_line_and_no_change(
    newsletter_dir: Path, runner: CliRunner, problem: str, args: tuple[str, ...]
) -> None:
    lst = newsletter_dir / "subscribers.csv"
    extra, line, message = MALFORMED[problem]
    with lst.open("a", encoding="utf-8") as f:
        f.write("zed@example.com,Zed,active,,,,cli\n" + extra)
    before = lst.read_bytes()
    argv = [str(FIX / "ghost.csv") if a == "__export__" else a for a in args]
    error = one_error_line(run(runner, *argv))
    assert error.startswith(f"error: subscribers.csv:{line}: ") and message in error, error
    assert lst.read_bytes() == before


BAD_INPUT = [
    (("add", "bob@"), "error: 'bob@' is not a valid address: There must be something after the @-sign."),
    (("add", "a@example.com", "--tag", "x;y"), "error: tag 'x;y' contains ';', which separates tags in the file"),
    (("unsubscribe", "ada.lovelace@example.com", "nobody@example.com"),
     "error: nobody@example.com is not on the list; nothing changed"),
    (("remove", "nobody@example.com", "--forget"), "error: nobody@example.com is not on the list; nothing changed"),
    (("import", "missing.csv"), "error: missing.csv: no such file"),
    (("import", "bad.csv"), "error: bad.csv:3: broken quoting (',' expected after '\"')"),
    (("import", "cp1252.csv"), "error: cp1252.csv:2: not utf-8 (byte 0xeb in 'zoe@example.com,Zo\ufffd')"),
    (("import", "cp1252.csv", "--encoding", "klingon"), "error: unknown encoding 'klingon'"),
]


@pytest.mark.parametrize("args,message", BAD_INPUT, ids=[" ".join(a[:2]) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_leaves_the_list_byte_for_byte(
    newsletter_dir: Path, runner: CliRunner, args: tuple[str, ...], message: str
) -> None:
    (newsletter_dir / "bad.csv").write_text('Email,Name\na@example.com,Ada\nb@example.com,"B" x\n')
    (newsletter_dir / "cp1252.csv").write_bytes("Email,Name\nzoe@example.com,Zoë\n".encode("cp1252"))
    lst = newsletter_dir / "subscribers.csv"
    before = lst.read_bytes()
    assert one_error_line(run(runner, *args)) == message
    assert lst.read_bytes() == before
