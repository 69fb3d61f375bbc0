"""The subscriber file as the library reads and changes it.

Strict reading (every malformed file refused with its line), tombstones that nothing softens,
rewrites that change only the rows they mean to, and a spreadsheet's own formatting kept.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from newsletter.errors import SubscriberError
from newsletter.subscribers.stats import list_stats
from newsletter.subscribers.store import (
    active_people,
    add_subscriber,
    apply_statuses,
    count_subscribers,
    forget_subscribers,
    iter_active,
    load_subscribers,
    normalize_email,
    select_subscribers,
    unsubscribe,
)

ROOT = Path(__file__).resolve().parents[2]
HEADER = "email,name,status,tags,created_at,updated_at,source\n"


@pytest.fixture
def lst(tmp_path: Path) -> Path:
    """A copy of the repository's example list."""
    path = tmp_path / "subscribers.csv"
    shutil.copy(ROOT / "subscribers.example.csv", path)
    return path


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_the_example_list_loads_with_every_column() -> None:
    loaded = load_subscribers(ROOT / "subscribers.example.csv")
    assert loaded.fieldnames == HEADER.strip().split(",")
    assert len(loaded.rows) == 12
    ada = loaded.rows[0]
    assert (ada.email, ada.name, ada.status, ada.tags) == ("ada.lovelace@example.com", "Ada Lovelace", "active",
                                                          ("founding", "books"))
    assert (ada.created_at, ada.source, ada.first_name) == ("2026-01-04T09:12:00Z", "import:substack", "Ada")
    assert [s.status for s in loaded.rows].count("active") == 9


def test_a_semicolon_file_with_bom_crlf_and_blank_tail(tmp_path: Path) -> None:
    text = ("\ufeff Email ; Name ;Status;Tags;created_at;updated_at;source; City \r\n"
            "zoe@example.com;Zoë Brontë;active;books;2026-01-01T00:00:00Z;2026-01-01T00:00:00Z;cli;Haworth\r\n"
            ";;;;;;;\r\n"
            "kai@example.com;\"Kai; Jr\";unsubscribed;;;;cli;\r\n"
            "\r\n\r\n")
    path = write(tmp_path / "s.csv", text)
    loaded = load_subscribers(path)
    assert loaded.fieldnames == ["email", "name", "status", "tags", "created_at", "updated_at", "source", "City"]
    assert [(s.email, s.name, s.status, dict(s.extra)) for s in loaded.rows] == [
        ("zoe@example.com", "Zoë Brontë", "active", {"City": "Haworth"}),
        ("kai@example.com", "Kai; Jr", "unsubscribed", {"City": ""}),
    ]
    added = add_subscriber(path, "new@example.com", name="New; One").subscriber
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf Email ; Name ;")  # the BOM and the writer's header, as they were
    assert b"\n\n" not in raw and b"\r\n\r\n" not in raw  # the blank tail is gone
    lines = raw.decode("utf-8-sig").split("\r\n")
    assert lines[:4] == text.removeprefix("\ufeff").split("\r\n")[:4]  # untouched, byte for byte
    assert lines[4:] == [f'new@example.com;"New; One";active;;{added.created_at};{added.created_at};cli;', ""]


def test_add_appends_one_line_and_leaves_every_other_byte(lst: Path) -> None:
    before = lst.read_bytes()
    result = add_subscriber(lst, "  Hedy.Lamarr@EXAMPLE.com ", name=" Hedy Lamarr ", tags=["film", "film", " "])
    assert result.outcome == "added"
    after = lst.read_bytes()
    assert after.startswith(before)
    line = after[len(before):].decode()
    email, name, status, tags, created, updated, source = line.rstrip("\n").split(",")
    assert (email, name, status, tags, source) == ("Hedy.Lamarr@example.com", "Hedy Lamarr", "active", "film", "cli")
    assert created == updated and created.endswith("Z") and line.endswith("\n")


def test_add_reports_an_active_address_and_only_adds_new_tags(lst: Path) -> None:
    before = lst.read_bytes()
    assert add_subscriber(lst, "ADA.LOVELACE@example.com").outcome == "unchanged"
    assert lst.read_bytes() == before
    result = add_subscriber(lst, "ada.lovelace@example.com", tags=["books", "art"], name="Someone Else")
    assert result.outcome == "updated" and result.subscriber.tags == ("founding", "books", "art")
    rows = load_subscribers(lst).rows
    assert [r.email for r in rows].count("ada.lovelace@example.com") == 1 and rows[0].name == "Ada Lovelace"


@pytest.mark.parametrize("email,status", [
    ("jon.olsen@example.com", "unsubscribed"), ("old.address@example.com", "bounced"),
    ("spam.reporter@example.com", "complained"),
])
def test_add_never_reactivates_a_tombstone_without_resubscribe(lst: Path, email: str, status: str) -> None:
    before = lst.read_bytes()
    with pytest.raises(SubscriberError, match=f"{email} has status {status} since 20..-..-..: not resubscribed") as err:
        add_subscriber(lst, email.upper())
    assert "--resubscribe" in (err.value.hint or "")
    assert lst.read_bytes() == before
    result = add_subscriber(lst, email, resubscribe=True)
    assert (result.outcome, result.previous_status, result.subscriber.status) == ("resubscribed", status, "active")
    assert email in [s.email for s in iter_active(lst)]


def test_add_creates_a_private_file_and_completes_a_hand_made_header(tmp_path: Path) -> None:
    new = tmp_path / "new.csv"
    add_subscriber(new, "a@example.com")
    assert new.read_text().startswith(HEADER) and stat.S_IMODE(new.stat().st_mode) == 0o600
    plain = write(tmp_path / "plain.csv", "Email,City\nx@example.com,Oslo\n")
    add_subscriber(plain, "y@example.com")
    rows = load_subscribers(plain)
    assert rows.fieldnames == ["email", "City", "name", "status", "tags", "created_at", "updated_at", "source"]
    assert [(r.email, r.status, dict(r.extra)) for r in rows.rows] == [
        ("x@example.com", "active", {"City": "Oslo"}), ("y@example.com", "active", {"City": ""})]


def test_extra_columns_stay_in_place_through_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "email,name,city,status,tags,created_at,updated_at,source,notes\n"
                 'a@example.com,A,Oslo,active,,,,cli,"two\nlines"\nb@example.com,B,Rome,active,,,,cli,\n')
    unsubscribe(path, ["a@example.com"])
    add_subscriber(path, "c@example.com")
    loaded = load_subscribers(path)
    assert loaded.fieldnames[2] == "city" and loaded.fieldnames[-1] == "notes"
    assert [(r.email, r.status, dict(r.extra)) for r in loaded.rows] == [
        ("a@example.com", "unsubscribed", {"city": "Oslo", "notes": "two\nlines"}),
        ("b@example.com", "active", {"city": "Rome", "notes": ""}),
        ("c@example.com", "active", {"city": "", "notes": ""}),
    ]
    assert path.read_text().splitlines()[3] == "b@example.com,B,Rome,active,,,,cli,"  # untouched line


def test_unsubscribe_keeps_the_row_and_never_softens_a_complaint(lst: Path) -> None:
    done = unsubscribe(lst, ["Ada.Lovelace@example.com", "spam.reporter@example.com", "jon.olsen@example.com"])
    assert done == [("ada.lovelace@example.com", "active", "unsubscribed"),  # in the order asked
                    ("spam.reporter@example.com", "complained", "complained"),
                    ("jon.olsen@example.com", "unsubscribed", "unsubscribed")]
    rows = {r.email: r for r in load_subscribers(lst).rows}
    assert len(rows) == 12 and rows["ada.lovelace@example.com"].status == "unsubscribed"
    assert rows["ada.lovelace@example.com"].updated_at > rows["ada.lovelace@example.com"].created_at


def test_unsubscribing_someone_not_on_the_list_changes_nothing(lst: Path) -> None:
    before = lst.read_bytes()
    with pytest.raises(SubscriberError, match="nobody@example.com is not on the list; nothing changed"):
        unsubscribe(lst, ["ada.lovelace@example.com", "nobody@example.com"])
    with pytest.raises(SubscriberError, match="'bob@' is not a valid address"):
        unsubscribe(lst, ["bob@"])
    assert lst.read_bytes() == before


def test_apply_statuses_is_restrictive_ignores_strangers_and_never_reactivates(lst: Path) -> None:
    changed = apply_statuses(lst, {
        "grace.hopper@example.org": "bounced", "JON.OLSEN@example.com": "bounced",
        "old.address@example.com": "complained", "stranger@example.com": "unsubscribed",
        "priya.nair@example.in": "complained",
    }, source="sendgrid")
    assert changed == [("grace.hopper@example.org", "active", "bounced"),
                       ("old.address@example.com", "bounced", "complained"),
                       ("priya.nair@example.in", "active", "complained")]
    rows = {r.email: r.status for r in load_subscribers(lst).rows}
    assert rows["jon.olsen@example.com"] == "unsubscribed" and "stranger@example.com" not in rows
    before = lst.read_bytes()
    with pytest.raises(SubscriberError, match="sendgrid: ada.lovelace@example.com: cannot set status 'active'"):
        apply_statuses(lst, {"ada.lovelace@example.com": "active"}, source="sendgrid")
    assert apply_statuses(lst, {"grace.hopper@example.org": "bounced"}, source="sendgrid") == []
    assert lst.read_bytes() == before


def test_forget_deletes_the_row_and_only_that_row(lst: Path) -> None:
    lines = lst.read_text().splitlines()
    assert forget_subscribers(lst, ["Marek@example.net"]) == ["marek@example.net"]
    assert lst.read_text().splitlines() == [line for line in lines if not line.startswith("marek@")]
    with pytest.raises(SubscriberError, match="marek@example.net is not on the list"):
        forget_subscribers(lst, ["marek@example.net"])


def test_selecting_counting_and_stats(lst: Path) -> None:
    assert [s.email for s in iter_active(lst, "film")] == [
        "grace.hopper@example.org", "amira.haddad@example.com", "kenji.watanabe@example.jp"]
    assert [s.email for s in select_subscribers(lst, ["bounced", "complained"])] == [
        "old.address@example.com", "spam.reporter@example.com"]
    assert count_subscribers(lst) == 9 and count_subscribers(lst, None) == 12
    assert count_subscribers(lst, "active", "books") == 3 and count_subscribers(lst, None, "nope") == 0
    stats = list_stats(lst)
    assert stats.total == 12 and stats.by_status == {"active": 9, "bounced": 1, "unsubscribed": 1, "complained": 1}
    assert stats.by_tag.most_common(2) == [("books", 3), ("film", 3)]
    assert stats.by_domain["example.com"] == 3 and sum(stats.by_domain.values()) == 9
    assert stats.joined["2026-01"] == 2 and stats.left == {"2026-06": 1, "2026-09": 1, "2026-08": 1}
    with pytest.raises(SubscriberError, match="unknown status 'gone'"):
        select_subscribers(lst, ["gone"])


def test_normalize_email() -> None:
    assert normalize_email("  Grace.Hopper@Example.ORG ") == "Grace.Hopper@example.org"
    # issue 9: a stored A-label is never rewritten into Unicode (it was "x@bücher.de")
    assert normalize_email("x@XN--BCHER-KVA.de") == "x@xn--bcher-kva.de"
    assert normalize_email("x@Bücher.de") == "x@bücher.de"
    for bad in ("bob@", "@example.com", "a b@example.com", "a@localhost", "a..b@example.com"):
        with pytest.raises(SubscriberError, match="is not a valid address"):
            normalize_email(bad)


MALFORMED = [
    (HEADER + 'a@example.com,"Ada,active,,,,cli\nb@example.com,B,active,,,,cli\n', 2,
     "a quote opened in this row is never closed"),
    (HEADER + 'a@example.com,"Ada" L,active,,,,cli\n', 2, "broken quoting"),
    ("name,status\nAda,active\n", 1, "no 'email' column"),
    ("email,name,email\na@example.com,A,b@example.com\n", 1, "column 'email' appears twice"),
    (HEADER + "a@example.com,A,active,,,,cli\nb@example.com,B,Jr,active,,,,cli\n", 3,
     "8 values but the header has 7 columns"),
    (HEADER + "a@example.com,A,active,,,,cli\nbob@,B,active,,,,cli\n", 3, "'bob@' is not a valid address"),
    (HEADER + "a@example.com,A,active,,,,cli\n,B,active,,,,cli\n", 3, "no email address in this row"),
    (HEADER + "a@example.com,A,active,,,,cli\nb@example.com,B,active,,,,cli\nA@EXAMPLE.COM,,bounced,,,,cli\n", 4,
     "A@EXAMPLE.COM is listed twice (first on line 2)"),
    (HEADER + "a@example.com,A,actve,,,,cli\n", 2, "unknown status 'actve'"),
    (HEADER + "a@example.com,A,,,,,cli\n", 2, "unknown status ''"),
]


@pytest.mark.parametrize("text,line,message", MALFORMED)
def test_a_malformed_list_is_refused_with_its_line_by_every_reader(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path / "subscribers.csv", text)
    before = path.read_bytes()
    for read in (load_subscribers, lambda p: list(iter_active(p)), count_subscribers, list_stats,
                 lambda p: list(active_people(p)), lambda p: list(active_people(p, "none")),
                 lambda p: add_subscriber(p, "new@example.com"), lambda p: unsubscribe(p, ["a@example.com"])):
        with pytest.raises(SubscriberError) as err:
            read(path)
        assert err.value.message.startswith(f"{path}:{line}: ") and message in err.value.message, err.value.message
    assert path.read_bytes() == before


def test_a_sends_reading_keeps_only_hashes_and_tells_a_collision_from_a_repeat(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import newsletter.subscribers.reader as reader

    rows = "".join(f"p{i}@example.com,P {i},{'active' if i % 3 else 'unsubscribed'},{'vip' if i % 2 else ''},,,cli\n"
                   for i in range(40))
    path = write(tmp_path / "subscribers.csv", HEADER + rows)
    expected = [(f"p{i}@example.com", f"P {i}") for i in range(40) if i % 3]
    monkeypatch.setattr(reader, "hash", lambda key: 7, raising=False)  # every address collides with every other
    assert list(active_people(path)) == expected  # collisions alone are no repeat
    assert list(active_people(path, "vip")) == [p for p in expected if int(p[1][2:]) % 2]
    write(path, HEADER + rows + "P7@Example.com,again,active,,,,cli\n")
    with pytest.raises(SubscriberError, match=r":42: P7@Example.com is listed twice \(first on line 9\)"):
        list(active_people(path))


def test_a_file_in_another_encoding_is_refused_with_the_line(tmp_path: Path) -> None:
    cp1252 = write(tmp_path / "s.csv", HEADER + "a@example.com,A,active,,,,cli\ns@example.org,Sofía,active,,,,cli\n",
                   "cp1252")
    with pytest.raises(SubscriberError, match=r"s.csv:3: not UTF-8 \(byte 0xed in 's@example.org,Sof") as err:
        load_subscribers(cp1252)
    assert "--encoding cp1252" in (err.value.hint or "")
    utf16 = write(tmp_path / "u.csv", "\ufeff" + HEADER, "utf-16-le")
    with pytest.raises(SubscriberError, match=r"u.csv:1: not UTF-8"):
        load_subscribers(utf16)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(SubscriberError, match="nope.csv: no such file") as err:
        load_subscribers(tmp_path / "nope.csv")
    assert "subscribers add" in (err.value.hint or "")
    empty = write(tmp_path / "empty.csv", "")
    assert load_subscribers(empty).rows == [] and count_subscribers(empty) == 0
    add_subscriber(empty, "a@example.com")
    assert empty.read_text().startswith(HEADER)
    with pytest.raises(SubscriberError, match="the folder .* does not exist"):
        add_subscriber(tmp_path / "no" / "such.csv", "a@example.com")
