"""Importing other platforms' exports: each platform's real column layout, and the rules that
keep anyone who left from coming back."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from newsletter.errors import SubscriberError
from newsletter.subscribers.exports import import_subscribers
from newsletter.subscribers.imports import read_export
from newsletter.subscribers.schema import shown
from newsletter.subscribers.store import load_subscribers

ROOT = Path(__file__).resolve().parents[2]
FIX = Path(__file__).resolve().parents[1] / "fixtures" / "subscribers"


@pytest.fixture
def lst(tmp_path: Path) -> Path:
    path = tmp_path / "subscribers.csv"
    shutil.copy(ROOT / "subscribers.example.csv", path)
    return path


@pytest.fixture
def mailchimp_zip(tmp_path: Path) -> Path:
    """The audience export ZIP as Mailchimp sends it: one CSV per status."""
    path = tmp_path / "mailchimp_export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in sorted((FIX / "mailchimp_export").glob("*.csv")):
            archive.write(member, member.name)
    return path


def rows(path: Path) -> dict[str, tuple[str, str, str, str, str, str]]:
    return {r.email: (r.name, r.status, ";".join(r.tags), r.created_at, r.updated_at, r.source)
            for r in load_subscribers(path).rows}


@pytest.mark.parametrize("name,platform", [
    ("substack_email_list.csv", "substack"), ("substack_subscribers_page.csv", "substack"),
    ("buttondown.csv", "buttondown"), ("listmonk.csv", "listmonk"), ("ghost.csv", "ghost"),
    ("generic_semicolon.csv", "csv"), ("mailchimp_export/cleaned_members_export_a1b2c3d4e5.csv", "mailchimp"),
])
def test_the_platform_is_detected_from_the_header(name: str, platform: str) -> None:
    assert read_export(FIX / name).platform == platform


def test_the_mailchimp_zip_is_read_whole_and_each_file_decides_the_status(tmp_path: Path, mailchimp_zip: Path) -> None:
    target = tmp_path / "new.csv"
    report = import_subscribers(target, mailchimp_zip)
    assert (report.platform, report.added, report.updated, report.unchanged) == ("mailchimp", 5, 0, 0)
    zip_name = str(mailchimp_zip)
    assert report.skipped == [
        (f"{zip_name}:nonsubscribed_members_export_a1b2c3d4e5.csv:2", "a Mailchimp non-subscribed contact "
         "(never opted in)"),
        (f"{zip_name}:subscribed_members_export_a1b2c3d4e5.csv:4",
         f"same address as {zip_name}:unsubscribed_members_export_a1b2c3d4e5.csv:3: merged into it"),
        (f"{zip_name}:subscribed_members_export_a1b2c3d4e5.csv:5",
         "'not-an-address' is not a valid address: An email address must have an @-sign."),
    ]
    assert rows(target) == {
        "priya.nair@example.in": ("Priya Nair", "unsubscribed", "", "2026-01-10T09:01:00Z", "2026-06-01T12:00:00Z",
                                  "import:mailchimp"),
        # subscribed in one file, unsubscribed in another: the more restrictive status wins
        "ada.lovelace@example.com": ("Ada Lovelace", "unsubscribed", "books", "2025-12-01T10:05:00Z",
                                     "2026-07-01T08:00:00Z", "import:mailchimp"),
        "old.address@example.com": ("Pat Morgan", "bounced", "", "2026-04-20T16:00:00Z", "2026-09-02T11:31:05Z",
                                    "import:mailchimp"),
        "kenji.watanabe@example.jp": ("健二 渡辺", "active", "film;founding", "2026-04-02T03:45:00Z",
                                      "2026-04-02T03:45:00Z", "import:mailchimp"),
        "lena.fischer@example.de": ("Lena Fischer", "active", "art", "2026-05-07T14:14:14Z", "2026-05-07T14:14:14Z",
                                    "import:mailchimp"),
    }


def test_an_import_never_reactivates_anyone_and_the_more_restrictive_status_wins(lst: Path, tmp_path: Path) -> None:
    export = tmp_path / "everyone.csv"
    export.write_text("Email,Status,Name\njon.olsen@example.com,subscribed,Jon\nold.address@example.com,active,\n"
                      "spam.reporter@example.com,unsubscribed,Spam R\nada.lovelace@example.com,bounced,\n"
                      "grace.hopper@example.org,subscribed,\n")
    before = rows(lst)
    report = import_subscribers(lst, export)
    after = rows(lst)
    assert (report.added, report.updated, report.unchanged, report.skipped) == (0, 2, 3, [])
    assert after["jon.olsen@example.com"][1] == "unsubscribed"  # stays a tombstone
    assert after["old.address@example.com"] == before["old.address@example.com"]
    assert after["spam.reporter@example.com"][:2] == ("Spam R", "complained")  # name filled, complaint kept
    assert after["ada.lovelace@example.com"][1] == "bounced" and after["grace.hopper@example.org"][1] == "active"
    assert after["ada.lovelace@example.com"][4] > before["ada.lovelace@example.com"][4]


def test_substack_email_list_rules(tmp_path: Path) -> None:
    target = tmp_path / "s.csv"
    report = import_subscribers(target, FIX / "substack_email_list.csv", tags=["substack"])
    where = shown(FIX / "substack_email_list.csv")
    assert report.skipped == [
        (f"{where}:5", "a Substack deletion request (the reader asked to be erased)"),
        (f"{where}:6", "'noemail-at-all' is not a valid address: An email address must have an @-sign."),
    ]
    assert rows(target) == {
        "ada.lovelace@example.com": ("", "active", "substack", "2026-01-04T09:12:00Z", "2026-01-04T09:12:00Z",
                                     "import:substack"),
        "Grace.Hopper@example.org": ("", "active", "substack", "2026-01-11T18:40:21Z", "2026-01-11T18:40:21Z",
                                     "import:substack"),
        "jon.olsen@example.com": ("", "unsubscribed", "substack", "2026-03-01T12:00:00Z",
                                  rows(target)["jon.olsen@example.com"][4], "import:substack"),
        "zoë.brontë@example.org": ("", "active", "substack", "2026-05-20T16:52:22Z", "2026-05-20T16:52:22Z",
                                   "import:substack"),
    }


def test_substack_subscribers_page_export(tmp_path: Path) -> None:
    target = tmp_path / "s.csv"
    import_subscribers(target, FIX / "substack_subscribers_page.csv")
    assert {e: v[:4] for e, v in rows(target).items()} == {
        "amira.haddad@example.com": ("Amira Haddad", "active", "", "2026-02-19T21:30:00Z"),
        "sofia.ruiz@example.org": ("Sofía Ruiz", "active", "", "2026-03-15T10:10:10Z"),
    }


def test_buttondown_types_and_tags(tmp_path: Path) -> None:
    target = tmp_path / "s.csv"
    report = import_subscribers(target, FIX / "buttondown.csv")
    assert [reason for _, reason in report.skipped] == [
        "flagged as likely spam by Buttondown", "never confirmed the subscription (Buttondown: unactivated)"]
    assert {e: v[1:4] for e, v in rows(target).items()} == {
        "marek@example.net": ("active", "books;film", "2026-02-02T07:05:44Z"),
        "noah.b@example.com": ("active", "founding", "2026-06-21T19:02:33Z"),
        "spam.reporter@example.com": ("unsubscribed", "", "2026-07-08T08:08:08Z"),
    }


def test_listmonk_statuses_and_go_times(tmp_path: Path) -> None:
    target = tmp_path / "s.csv"
    import_subscribers(target, FIX / "listmonk.csv")
    assert {e: v[:5] for e, v in rows(target).items()} == {
        "lena.fischer@example.de": ("Lena Fischer", "active", "", "2026-05-07T14:14:14Z", "2026-05-07T14:14:14Z"),
        "priya.nair@example.in": ("Priya Nair", "unsubscribed", "", "2026-10-30T17:17:51Z", "2026-11-01T03:30:00Z"),
        "quiet@example.com": ("Quiet Reader", "unsubscribed", "", "2026-03-03T03:03:03Z", "2026-04-04T04:04:04Z"),
    }


def test_ghost_labels_and_email_opt_out(tmp_path: Path) -> None:
    target = tmp_path / "s.csv"
    report = import_subscribers(target, FIX / "ghost.csv")
    assert report.skipped == [(f"{shown(FIX / 'ghost.csv')}:4", "deleted in Ghost")]
    assert {e: v[:3] for e, v in rows(target).items()} == {
        "grace.hopper@example.org": ("Grace Hopper", "active", "film;founding"),
        "jon.olsen@example.com": ("Jon Olsen", "unsubscribed", ""),
    }


def test_a_generic_spreadsheet_csv_keeps_its_own_columns(lst: Path) -> None:
    report = import_subscribers(lst, FIX / "generic_semicolon.csv")
    assert (report.platform, report.encoding, report.added, report.new_columns) == ("csv", "utf-8-sig", 2, ["City"])
    assert report.skipped == [(f"{shown(FIX / 'generic_semicolon.csv')}:5",
                               "'not an email' is not a valid address: An email address must have an @-sign.")]
    loaded = load_subscribers(lst)
    assert loaded.fieldnames[-1] == "City" and len(loaded.rows) == 14
    new = {r.email: r for r in loaded.rows}
    ines, tomas = new["ines@example.pt"], new["tomas@example.cz"]
    assert (ines.name, ines.tags, ines.created_at, dict(ines.extra)) == (
        "Inês Costa", ("books", "art"), "2026-09-09T00:00:00Z", {"City": "Lisboa"})
    assert (tomas.name, dict(tomas.extra)) == ("Tomáš Novák", {"City": "Praha"})
    assert dict(new["ada.lovelace@example.com"].extra) == {"City": ""}


def test_dry_run_reports_and_writes_nothing(lst: Path, mailchimp_zip: Path) -> None:
    before = lst.read_bytes()
    report = import_subscribers(lst, mailchimp_zip, dry_run=True)
    assert report.dry_run and (report.added, report.updated, report.unchanged) == (0, 3, 2)
    assert lst.read_bytes() == before
    assert not (lst.parent / "nowhere.csv").exists()
    import_subscribers(lst.parent / "nowhere.csv", mailchimp_zip, dry_run=True)
    assert not (lst.parent / "nowhere.csv").exists()


def test_a_forced_format_and_an_unknown_one(tmp_path: Path) -> None:
    assert read_export(FIX / "ghost.csv", platform="csv").platform == "csv"
    with pytest.raises(SubscriberError, match="unknown format 'tinyletter'"):
        read_export(FIX / "ghost.csv", platform="tinyletter")


SPREADSHEET = "Email,Name\nsofia@example.org,Sofía Ruiz\nzoe@example.com,Zoë Brontë\n"


def test_a_cp1252_file_is_refused_with_a_hint_never_read_as_mojibake(tmp_path: Path) -> None:
    export = tmp_path / "excel.csv"
    export.write_bytes(SPREADSHEET.encode("cp1252"))
    target = tmp_path / "s.csv"
    with pytest.raises(SubscriberError) as err:
        import_subscribers(target, export)
    assert err.value.message == f"{export}:2: not utf-8 (byte 0xed in 'sofia@example.org,Sof\ufffda Ruiz')"
    assert "--encoding cp1252" in (err.value.hint or "") and "'sofia@example.org,Sofía Ruiz'" in (err.value.hint or "")
    assert not target.exists()
    import_subscribers(target, export, encoding="cp1252")
    assert [r.name for r in load_subscribers(target).rows] == ["Sofía Ruiz", "Zoë Brontë"]


def test_a_central_european_file_gets_no_cp1252_guess(tmp_path: Path) -> None:
    export = tmp_path / "cz.csv"
    export.write_bytes("Email,Name\nl@example.pl,Łukasz Żółć\n".encode("cp1250"))
    with pytest.raises(SubscriberError) as err:
        read_export(export)
    assert "cp1252, which reads" not in (err.value.hint or "") and "--encoding" in (err.value.hint or "")
    assert read_export(export, encoding="cp1250").rows["l@example.pl"].name == "Łukasz Żółć"


def test_utf16_with_a_byte_order_mark_is_detected(tmp_path: Path) -> None:
    export = tmp_path / "unicode.txt"  # Excel's "Unicode Text": UTF-16 with a BOM, tab-separated
    export.write_bytes(SPREADSHEET.replace(",", "\t").encode("utf-16"))
    batch = read_export(export)
    assert batch.encoding == "utf-16" and [r.name for r in batch.rows.values()] == ["Sofía Ruiz", "Zoë Brontë"]


def test_unreadable_exports_are_refused_with_the_line(tmp_path: Path) -> None:
    no_email = tmp_path / "a.csv"
    no_email.write_text("Name,Phone\nAda,123\n")
    with pytest.raises(SubscriberError, match=r"a.csv:1: no email column \(the header reads 'Name,Phone'\)"):
        read_export(no_email)
    quote = tmp_path / "b.csv"
    quote.write_text('Email,Name\na@example.com,"Ada" L\n')
    with pytest.raises(SubscriberError, match=r"b.csv:2: broken quoting"):
        read_export(quote)
    with pytest.raises(SubscriberError, match=r"c.csv: no such file"):
        read_export(tmp_path / "c.csv")
    empty_zip = tmp_path / "d.zip"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("posts.csv", "post_id,title\n1,Hello\n")
    with pytest.raises(SubscriberError, match="no subscriber list in this ZIP"):
        read_export(empty_zip)


def test_an_address_written_differently_in_the_export_still_finds_its_row(tmp_path: Path) -> None:
    target = tmp_path / "s.csv"
    target.write_text("email,name,status,tags,created_at,updated_at,source\n"
                      "jürgen@bücher.de,Jürgen,unsubscribed,,,,cli\nann@example.com,Ann,active,,,,cli\n")
    export = tmp_path / "e.csv"
    export.write_text("email,name\nJÜRGEN@xn--bcher-kva.de,J\n ANN@Example.com ,\nnew@Example.COM,New\n")
    report = import_subscribers(target, export)
    assert (report.added, report.updated, report.unchanged) == (1, 0, 2)
    assert rows(target) == {
        "jürgen@bücher.de": ("Jürgen", "unsubscribed", "", "", "", "cli"),
        "ann@example.com": ("Ann", "active", "", "", "", "cli"),
        "new@example.com": ("New", "active", "", *rows(target)["new@example.com"][3:5], "import:csv"),
    }
