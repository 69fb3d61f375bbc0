"""Issue 9, the list side of "any address": one "same address" key, A-labels kept, control characters refused.

And `subscribers add` with several people and 'Name <address>', consistent metavars, and a
formula-safe `list --format csv`.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from newsletter.cli import app
from newsletter.errors import SubscriberError
from newsletter.subscribers.schema import email_key
from newsletter.subscribers.store import add_subscriber, count_subscribers, iter_active, load_subscribers
from tests.helpers import one_error_line

HEADER = "email,name,status,tags,created_at,updated_at,source\n"
T = "2026-01-01T00:00:00Z"
GREEK = "δοκιμή@example.com"
NFD = unicodedata.normalize("NFD", GREEK)


def row(email: str, name: str = "", status: str = "active") -> str:
    return f"{email},{name},{status},,{T},{T},cli\n"


def run(runner: CliRunner, lst: Path, *args: str) -> Result:
    return runner.invoke(app, ["subscribers", *args, "--subscribers", str(lst)])


def ok(runner: CliRunner, lst: Path, *args: str) -> str:
    result = run(runner, lst, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"})


# --- one "same address" key -------------------------------------------------------------------

@pytest.mark.parametrize(("one", "other"), [
    ("Ada@Example.com", "ada@example.com"),
    (GREEK, NFD),
    (GREEK.upper(), NFD),
    ("x@bücher.de", "x@xn--bcher-kva.de"),
    ("X@BÜCHER.DE", "x@XN--BCHER-KVA.de"),
    ("δοκιμή@παράδειγμα.δοκιμή", "δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp"),
])
def test_two_spellings_of_one_address_have_one_key(one: str, other: str) -> None:
    assert email_key(one) == email_key(other)


def test_different_addresses_keep_different_keys() -> None:
    assert email_key("x@bücher.de") != email_key("x@bucher.de")
    assert email_key("ada@example.com") == "ada@example.com"  # the ASCII hot path: only lower-cased


@pytest.mark.parametrize(("stored", "given"), [
    ("x@xn--bcher-kva.de", "x@bücher.de"),
    ("x@bücher.de", "X@XN--BCHER-KVA.DE"),
    (GREEK, NFD),
    (NFD, GREEK),
])
def test_a_tombstone_in_one_spelling_blocks_the_other_in_add(tmp_path: Path, stored: str, given: str) -> None:
    lst = tmp_path / "subscribers.csv"
    lst.write_text(HEADER + row(stored, "Left", "unsubscribed"), encoding="utf-8")
    with pytest.raises(SubscriberError, match="has status unsubscribed"):
        add_subscriber(lst, given)
    assert add_subscriber(lst, given, resubscribe=True).outcome == "resubscribed"
    assert [(r.email, r.status) for r in load_subscribers(lst).rows] == [(stored, "active")]  # one row, as stored


@pytest.mark.parametrize(("stored", "given"), [
    ("x@xn--bcher-kva.de", "x@bücher.de"), ("x@bücher.de", "x@xn--bcher-kva.de"), (GREEK, NFD), (NFD, GREEK),
])
def test_a_tombstone_in_one_spelling_blocks_the_other_in_import(
    tmp_path: Path, runner: CliRunner, stored: str, given: str
) -> None:
    lst, export = tmp_path / "subscribers.csv", tmp_path / "export.csv"
    lst.write_text(HEADER + row(stored, "Left", "complained"), encoding="utf-8")
    export.write_text(f"email,name,status\n{given},Someone,active\n", encoding="utf-8")
    assert "0 added, 0 updated, 1 unchanged" in ok(runner, lst, "import", str(export))
    assert [(r.email, r.status) for r in load_subscribers(lst).rows] == [(stored, "complained")]


def test_one_address_in_two_spellings_is_listed_twice(tmp_path: Path) -> None:
    lst = tmp_path / "subscribers.csv"
    lst.write_text(HEADER + row("x@bücher.de") + row("X@xn--bcher-kva.de"), encoding="utf-8")
    with pytest.raises(SubscriberError, match=r"csv:3: X@xn--bcher-kva.de is listed twice \(first on line 2"):
        count_subscribers(lst)


def test_check_fix_merges_two_spellings_and_the_tombstone_wins(tmp_path: Path, runner: CliRunner) -> None:
    lst = tmp_path / "subscribers.csv"
    lst.write_text(HEADER + row(GREEK, "Dora") + row(NFD, "", "unsubscribed") + row("x@xn--bcher-kva.de", "", "bounced")
                   + row("X@Bücher.de", "X"), encoding="utf-8")
    out = ok(runner, lst, "check", "--fix")
    assert "subscribers.csv:3: δοκιμή@example.com is listed twice (first on line 2): merged into that row" in out
    assert "subscribers.csv:5: X@bücher.de is listed twice (first on line 4): merged into that row" in out
    assert [(r.email, r.name, r.status) for r in load_subscribers(lst).rows] == [
        (GREEK, "Dora", "unsubscribed"), ("x@xn--bcher-kva.de", "X", "bounced")]


def test_add_import_and_check_fix_keep_a_stored_a_label(tmp_path: Path, runner: CliRunner) -> None:
    lst, export = tmp_path / "subscribers.csv", tmp_path / "export.csv"
    assert ok(runner, lst, "add", "Ada@XN--BCHER-KVA.de") == "Added Ada@xn--bcher-kva.de.\n"
    export.write_text("email,name\nbob@xn--bcher-kva.de,Bob\n", encoding="utf-8")
    ok(runner, lst, "import", str(export))
    with lst.open("a", encoding="utf-8") as f:
        f.write(row("cy@xn--bcher-kva.de", "Cy"))
    result = run(runner, lst, "check", "--fix")
    assert result.exit_code == 0, result.output
    assert [r.email for r in load_subscribers(lst).rows] == [
        "Ada@xn--bcher-kva.de", "bob@xn--bcher-kva.de", "cy@xn--bcher-kva.de"]


def test_check_fix_composes_a_decomposed_address(tmp_path: Path, runner: CliRunner) -> None:
    lst = tmp_path / "subscribers.csv"
    lst.write_text(HEADER + row(NFD), encoding="utf-8")
    assert "(the same letters, composed: Unicode NFC) (fixed)" in ok(runner, lst, "check", "--fix")
    assert [r.email for r in load_subscribers(lst).rows] == [GREEK]


# --- control characters ------------------------------------------------------------------------

HOSTILE = [  # (the row as written in the file, its line, what the error names)
    (row("ada@example.com", "Ada\x00Lovelace"), "the name 'Ada\\x00Lovelace' contains a control character"),
    (row("ada\x00@example.com", "Ada"), "'ada\\x00@example.com' contains a control character"),
    (row("ada@exa\x01mple.com", "Ada"), "contains a control character ('\\x01')"),
    (row("ada@example.com", "Ada\x7f"), "contains a control character ('\\x7f')"),
    (row("ada@example.com", "Ada\x1b[31m"), "contains a control character ('\\x1b')"),
    (row("ada@example.com", "Ada\x85"), "contains a control character ('\\x85')"),
    (row("ada@example.com", "Ada\tLovelace"), "contains a control character ('\\t')"),
    (row("ada@example.com", '"Ada\nBcc: x@evil.example"'), "contains a control character ('\\n') "
     "(this row runs from line 3 to line 4)"),
    (row("ada@example.com", '"Ada\r\nBcc: x@evil.example"'), "contains a control character ('\\r')"),
    (row("ada@example.com", '"Ada\rBcc: x@evil.example"'), "contains a control character ('\\r')"),
]


@pytest.mark.parametrize(("bad", "message"), HOSTILE)
def test_the_reader_refuses_control_characters_in_an_address_or_a_name_with_its_line(
    tmp_path: Path, runner: CliRunner, bad: str, message: str
) -> None:
    lst = tmp_path / "subscribers.csv"
    lst.write_bytes((HEADER + row("first@example.com") + bad + row("last@example.com")).encode())
    with pytest.raises(SubscriberError, match=r"subscribers\.csv:3: ") as caught:
        list(iter_active(lst))  # what a send loads
    assert message in str(caught.value)
    for command in (["count"], ["list"], ["stats"], ["add", "new@example.com"], ["unsubscribe", "first@example.com"]):
        line = one_error_line(run(runner, lst, *command))
        assert line.startswith("error: ") and "subscribers.csv:3: " in line and message in line
    result = run(runner, lst, "check")
    assert result.exit_code == 1 and "subscribers.csv:3: " in result.stdout


def test_check_fix_puts_a_name_on_one_line(tmp_path: Path, runner: CliRunner) -> None:
    lst = tmp_path / "subscribers.csv"
    lst.write_bytes((HEADER + row("ada@example.com", '"Ada\r\nLovelace\x00"')).encode())
    out = ok(runner, lst, "check", "--fix")
    assert "subscribers.csv:2: name 'Ada\\r\\nLovelace\\x00' has a control character ('\\r'); it is written " \
        "'Ada Lovelace' (fixed)" in out
    assert [r.name for r in load_subscribers(lst).rows] == ["Ada Lovelace"]


@pytest.mark.parametrize(("args", "message"), [
    (["ada@example.com", "--name", "Ada\nBcc: x@evil.example"], "contains a control character ('\\n')"),
    (["ada@example.com", "--name", "Ada\x00"], "contains a control character ('\\x00')"),
    (["ada\x01@example.com"], "is not a valid address"),
    (["Ada\x00 <ada@example.com>"], "contains a control character ('\\x00')"),
])
def test_add_refuses_control_characters(tmp_path: Path, runner: CliRunner, args: list[str], message: str) -> None:
    lst = tmp_path / "subscribers.csv"
    assert message in one_error_line(run(runner, lst, "add", *args))
    assert not lst.exists()


def test_import_puts_a_multi_line_name_on_one_line(tmp_path: Path, runner: CliRunner) -> None:
    lst, export = tmp_path / "subscribers.csv", tmp_path / "export.csv"
    export.write_bytes(b'email,name\nada@example.com,"Ada\r\nLovelace"\nbob@example.com,Bob\x00\n')
    assert "2 added" in ok(runner, lst, "import", str(export))
    assert [r.name for r in load_subscribers(lst).rows] == ["Ada Lovelace", "Bob"]


# --- add: several people, 'Name <address>' --------------------------------------------------------

def test_add_takes_several_people_and_name_address(tmp_path: Path, runner: CliRunner) -> None:
    lst = tmp_path / "subscribers.csv"
    out = ok(runner, lst, "add", "Grace Hopper <grace@example.org>", '"Lovelace, Ada" <Ada@Example.com>',
             "jon@example.com", " 渡辺 健二 <kenji@example.jp> ", "--tag", "founding")
    assert out == ("Added grace@example.org.\nAdded Ada@example.com.\nAdded jon@example.com.\n"
                   "Added kenji@example.jp.\n")
    rows = load_subscribers(lst).rows
    assert [(r.email, r.name, r.tags) for r in rows] == [
        ("grace@example.org", "Grace Hopper", ("founding",)), ("Ada@example.com", "Lovelace, Ada", ("founding",)),
        ("jon@example.com", "", ("founding",)), ("kenji@example.jp", "渡辺 健二", ("founding",))]
    assert ok(runner, lst, "add", "ada@example.com", "new@example.com", "NEW@example.com") == (
        "Ada@example.com is already subscribed.\nAdded new@example.com.\n")
    assert ok(runner, lst, "add", "Zed <zed@example.com>", "--name", "Zed") == "Added zed@example.com.\n"


def test_unsubscribe_and_remove_take_name_address_too(tmp_path: Path, runner: CliRunner) -> None:
    lst = tmp_path / "subscribers.csv"
    lst.write_text(HEADER + row("ada@example.com", "Ada") + row("bob@example.com", "Bob"), encoding="utf-8")
    assert ok(runner, lst, "unsubscribe", "Ada Lovelace <Ada@example.com>") == (
        "Unsubscribed ada@example.com (was active).\n")
    assert ok(runner, lst, "remove", "Bob <bob@example.com>", "--forget") == (
        "Forgot bob@example.com (row deleted; a later import could add them again).\n")
    assert "neither an address nor" in one_error_line(run(runner, lst, "unsubscribe", "Ada <ada@example.com"))


@pytest.mark.parametrize(("args", "message"), [
    (["Ada <ada@example.com"], "'Ada <ada@example.com' is neither an address nor 'Name <address>'"),
    (["Ada <>"], "is neither an address nor 'Name <address>'"),
    (["Ada <a@example.com> <b@example.com>"], "is neither an address nor 'Name <address>'"),
    (["Ada <a@example.com>, Bob <b@example.com>"], "is neither an address nor 'Name <address>'"),
    (["Ada <not an address>"], "'not an address' is not a valid address"),
    (["ada@example.com (Ada)"], "is not a valid address"),
    (["garbage"], "'garbage' is not a valid address"),
    (["a@example.com", "b@example.com", "--name", "Ada"], "--name names one person"),
    (["Ada <a@example.com>", "--name", "Bob"], "two names for a@example.com: 'Ada' and --name 'Bob'"),
])
def test_add_refuses_garbage_with_one_line_and_changes_nothing(
    tmp_path: Path, runner: CliRunner, args: list[str], message: str
) -> None:
    lst = tmp_path / "subscribers.csv"
    lst.write_text(HEADER + row("x@example.com"), encoding="utf-8")
    before = lst.read_bytes()
    also = [] if "--name" in args else ["ok@example.com"]  # a good address beside it is not added either
    assert message in one_error_line(run(runner, lst, "add", *also, *args))
    assert lst.read_bytes() == before


def test_add_of_several_is_all_or_nothing_when_one_has_left(tmp_path: Path, runner: CliRunner) -> None:
    lst = tmp_path / "subscribers.csv"
    lst.write_text(HEADER + row("gone@example.com", "Gone", "bounced"), encoding="utf-8")
    before = lst.read_bytes()
    line = one_error_line(run(runner, lst, "add", "new@example.com", "Gone <gone@example.com>"))
    assert line == f"error: gone@example.com has status bounced since {T[:10]}: not resubscribed; nothing changed"
    assert lst.read_bytes() == before
    assert ok(runner, lst, "add", "new@example.com", "gone@example.com", "--resubscribe") == (
        "Added new@example.com.\nResubscribed gone@example.com (was bounced).\n")


@pytest.mark.parametrize("command", ["add", "unsubscribe", "remove", "list", "count", "stats", "import", "export",
                                     "check"])
def test_metavars_are_words_not_python_types(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, ["subscribers", command, "--help"])
    assert result.exit_code == 0
    for python_type in ("<str>", "<list[str]>", "<path>", "<file>", "<text>", "EMAIL", "FILE"):
        assert python_type not in result.stdout
    if command in ("add", "unsubscribe", "remove"):
        assert "ADDRESS" in result.stdout
    if command == "import":
        assert "{PATH}" in result.stdout and "--encoding ENCODING" in result.stdout


# --- list --format csv is formula-safe -----------------------------------------------------------

def test_list_as_csv_is_as_formula_safe_as_export(tmp_path: Path, runner: CliRunner) -> None:
    lst = tmp_path / "subscribers.csv"
    lst.write_text(HEADER + f'ada@example.com,"=HYPERLINK(""http://evil.example"",""x"")",active,+tag;@b,{T},{T},'
                   "-cli\n", encoding="utf-8")
    listed = ok(runner, lst, "list", "--format", "csv")
    assert listed == ok(runner, lst, "export")
    assert "'=HYPERLINK" in listed and ",'+tag;@b," in listed and ",'-cli" in listed
