"""`newsletter subscribers apply`: the inbox folded into the list, in order, once, restrictively."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.errors import SubscriberError
from newsletter.subscribers.apply import apply_inbox, read_cursors
from newsletter.subscribers.inbox import EventType, Inbox
from newsletter.subscribers.schema import email_key
from newsletter.subscribers.store import load_subscribers
from newsletter.tokens import Tokens
from tests.helpers import one_error_line

SECRET = "apply-test-secret-0123456789"  # noqa: S105 - a test secret
OLD_SECRET = "apply-old-secret-9876543210"  # noqa: S105 - a test secret


def rows(path: Path) -> dict[str, tuple[str, str, tuple[str, ...], str]]:
    """email -> (name, status, tags, source)."""
    return {s.email: (s.name, s.status, s.tags, s.source) for s in load_subscribers(path).rows}


def reader(address: str, secret: str = SECRET) -> str:
    """The reader id an unsubscribe link made with `secret` carries for this address."""
    tokens = Tokens((secret,))
    rid = tokens.open_unsubscribe(tokens.unsubscribe_token(email_key(address)))
    assert rid is not None
    return rid


@pytest.fixture
def letter(newsletter_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSLETTER_UNSUBSCRIBE_SECRET", SECRET)
    return newsletter_dir


def record(folder: Path, type: EventType, **fields: object) -> None:
    inbox = Inbox(folder / "inbox")
    try:
        inbox.record(type, "test", **fields)
    finally:
        inbox.close()


def apply(folder: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["subscribers", "apply", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_a_confirmed_signup_joins_and_a_request_alone_does_not(letter: Path) -> None:
    record(letter, EventType.SUBSCRIBE_REQUESTED, email="nadia@example.com", name="Nadia Ali")
    record(letter, EventType.SUBSCRIBE_REQUESTED, email="waiting@example.com")
    record(letter, EventType.CONFIRMED, email="Nadia@Example.com", name="Nadia Ali", tags=["film", "books"])
    code, out = apply(letter)
    assert code == 0, out
    assert "Inbox: 3 new events: 1 added" in out
    assert "2 awaiting confirmation" in out
    assert "added Nadia@example.com" in out
    people = rows(letter / "subscribers.csv")
    assert people["Nadia@example.com"] == ("Nadia Ali", "active", ("film", "books"), "readers")
    assert "waiting@example.com" not in people


def test_apply_is_idempotent_and_each_event_is_applied_once(letter: Path) -> None:
    record(letter, EventType.CONFIRMED, email="nadia@example.com")
    apply(letter)
    before = (letter / "subscribers.csv").read_bytes()
    code, out = apply(letter)
    assert code == 0 and "Inbox: no new events." in out
    assert (letter / "subscribers.csv").read_bytes() == before
    # A lost cursor (a crash between the list and the cursor) replays: nothing changes either.
    (letter / "inbox" / "applied.json").unlink()
    code, out = apply(letter)
    assert "0 added" in out and "1 unchanged" in out
    assert (letter / "subscribers.csv").read_bytes() == before


def test_an_unsubscribe_link_is_resolved_against_the_list_and_always_wins(letter: Path) -> None:
    record(letter, EventType.UNSUBSCRIBED, reader=reader("ada.lovelace@example.com"))
    record(letter, EventType.UNSUBSCRIBED, reader=reader("nobody@example.com"))
    record(letter, EventType.UNSUBSCRIBED, reader=reader("spam.reporter@example.com"))
    code, out = apply(letter)
    assert code == 0, out
    assert "unsubscribed ada.lovelace@example.com (was active)" in out
    assert "1 not on the list" in out
    people = rows(letter / "subscribers.csv")
    assert people["ada.lovelace@example.com"][1] == "unsubscribed"
    assert people["spam.reporter@example.com"][1] == "complained"  # the more restrictive status stays


def test_a_link_made_before_the_secret_was_rotated_still_unsubscribes(letter: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_UNSUBSCRIBE_SECRET", f"{SECRET},{OLD_SECRET}")
    record(letter, EventType.UNSUBSCRIBED, reader=reader("grace.hopper@example.org", OLD_SECRET))
    record(letter, EventType.UNSUBSCRIBED, reader=reader("marek@example.net", SECRET))
    apply(letter)
    people = rows(letter / "subscribers.csv")
    assert people["grace.hopper@example.org"][1] == "unsubscribed"
    assert people["marek@example.net"][1] == "unsubscribed"


def test_a_new_confirmation_brings_back_an_unsubscribed_reader_but_not_a_bounced_one(letter: Path) -> None:
    record(letter, EventType.CONFIRMED, email="jon.olsen@example.com", tags=["film"])
    record(letter, EventType.CONFIRMED, email="old.address@example.com")
    record(letter, EventType.CONFIRMED, email="spam.reporter@example.com")
    code, out = apply(letter)
    assert code == 0, out
    assert "resubscribed jon.olsen@example.com (was unsubscribed)" in out
    assert "not resubscribed old.address@example.com: status bounced" in out
    people = rows(letter / "subscribers.csv")
    assert people["jon.olsen@example.com"][1:3] == ("active", ("film",))
    assert people["old.address@example.com"][1] == "bounced"
    assert people["spam.reporter@example.com"][1] == "complained"


def test_resubscribe_lets_a_confirmation_bring_back_a_bounced_reader(letter: Path) -> None:
    record(letter, EventType.CONFIRMED, email="old.address@example.com")
    apply(letter, "--resubscribe")
    assert rows(letter / "subscribers.csv")["old.address@example.com"][1] == "active"


def test_events_are_applied_in_journal_order(letter: Path) -> None:
    record(letter, EventType.CONFIRMED, email="ana@example.com")
    record(letter, EventType.UNSUBSCRIBED, email="ana@example.com")
    record(letter, EventType.UNSUBSCRIBED, email="lena.fischer@example.de")
    record(letter, EventType.CONFIRMED, email="lena.fischer@example.de")
    apply(letter)
    people = rows(letter / "subscribers.csv")
    assert people["ana@example.com"][1] == "unsubscribed"  # joined, then left: the row stays
    assert people["lena.fischer@example.de"][1] == "active"  # left, then came back on her own


def test_bounces_and_complaints_mark_and_never_delete(letter: Path) -> None:
    record(letter, EventType.BOUNCED, email="marek@example.net", detail="550 no such user")
    record(letter, EventType.COMPLAINED, email="sofia.ruiz@example.org")
    record(letter, EventType.BOUNCED, email="sofia.ruiz@example.org")
    before = len(rows(letter / "subscribers.csv"))
    apply(letter)
    people = rows(letter / "subscribers.csv")
    assert people["marek@example.net"][1] == "bounced"
    assert people["sofia.ruiz@example.org"][1] == "complained"
    assert len(people) == before


def test_dry_run_writes_nothing(letter: Path) -> None:
    record(letter, EventType.CONFIRMED, email="nadia@example.com")
    before = (letter / "subscribers.csv").read_bytes()
    code, out = apply(letter, "--dry-run")
    assert code == 0 and "1 added" in out and "Dry run: nothing was written." in out
    assert (letter / "subscribers.csv").read_bytes() == before
    assert not (letter / "inbox" / "applied.json").exists()


def test_only_the_changed_lines_are_rewritten(letter: Path) -> None:
    before = (letter / "subscribers.csv").read_text(encoding="utf-8").splitlines()
    record(letter, EventType.UNSUBSCRIBED, email="marek@example.net")
    apply(letter)
    after = (letter / "subscribers.csv").read_text(encoding="utf-8").splitlines()
    assert [n for n, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == [3]


def test_each_list_has_its_own_cursor(letter: Path) -> None:
    (letter / "other.csv").write_text("email\n", encoding="utf-8")
    record(letter, EventType.CONFIRMED, email="nadia@example.com")
    apply(letter, "--subscribers", "other.csv")
    apply(letter)
    assert "nadia@example.com" in rows(letter / "subscribers.csv")
    assert set(read_cursors(letter / "inbox")) == {"other.csv", "subscribers.csv"}


def test_an_invalid_confirmed_address_is_reported_and_skipped(letter: Path) -> None:
    record(letter, EventType.CONFIRMED, email="not an address")
    record(letter, EventType.CONFIRMED, email="fine@example.com", name="Bad\nName")
    code, out = apply(letter)
    assert code == 0
    assert out.count("skipped event") == 2
    assert "not an address" not in rows(letter / "subscribers.csv")


def test_unsubscribes_by_link_without_the_secret_are_an_error_and_nothing_changes(
        letter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record(letter, EventType.CONFIRMED, email="nadia@example.com")
    record(letter, EventType.UNSUBSCRIBED, reader=reader("ada.lovelace@example.com"))
    monkeypatch.delenv("NEWSLETTER_UNSUBSCRIBE_SECRET")
    before = (letter / "subscribers.csv").read_bytes()
    result = CliRunner().invoke(app, ["subscribers", "apply"])
    assert "no unsubscribe secret" in one_error_line(result)
    assert SECRET not in result.output
    assert (letter / "subscribers.csv").read_bytes() == before
    assert not (letter / "inbox" / "applied.json").exists()


def test_a_broken_journal_line_is_named_with_its_line(letter: Path) -> None:
    record(letter, EventType.CONFIRMED, email="nadia@example.com")
    with open(letter / "inbox" / "events.jsonl", "ab") as fh:
        fh.write(b'{"id": 1}\n')
    result = CliRunner().invoke(app, ["subscribers", "apply"])
    assert "events.jsonl:2: not an inbox event" in one_error_line(result)


def test_the_cursor_is_written_after_the_list(letter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure writing the list leaves the cursor where it was: the events come again."""
    import newsletter.subscribers.apply as module

    record(letter, EventType.CONFIRMED, email="nadia@example.com")

    def broken(*args: object, **kwargs: object) -> None:
        raise SubscriberError("disk full")

    monkeypatch.setattr(module, "commit", broken)
    with pytest.raises(SubscriberError):
        apply_inbox(letter / "subscribers.csv", letter / "inbox", letter, (SECRET,))
    assert not (letter / "inbox" / "applied.json").exists()
    monkeypatch.undo()
    report = apply_inbox(letter / "subscribers.csv", letter / "inbox", letter, (SECRET,))
    assert report.added == ["nadia@example.com"]


def test_no_inbox_no_change_no_files(letter: Path) -> None:
    code, out = apply(letter)
    assert code == 0 and "Inbox: no new events." in out
    assert not (letter / "inbox").exists()


def test_a_missing_list_is_created_by_the_first_confirmation(letter: Path) -> None:
    os.remove(letter / "subscribers.csv")
    record(letter, EventType.CONFIRMED, email="nadia@example.com")
    apply(letter)
    assert list(rows(letter / "subscribers.csv")) == ["nadia@example.com"]
    cursors = json.loads((letter / "inbox" / "applied.json").read_text())["cursors"]
    assert cursors["subscribers.csv"] == (letter / "inbox" / "events.jsonl").stat().st_size


@pytest.mark.parametrize("address", ["zoë@bücher.de", "ravi@xn--bcher-kva.de", "Émile@example.fr", "UPPER@Example.COM"])
def test_a_link_resolves_for_any_spelling_of_an_address_on_the_list(letter: Path, address: str) -> None:
    """The link is made from the address as the list holds it; apply finds it among the list's keys."""
    record(letter, EventType.CONFIRMED, email=address)
    apply(letter)
    stored = next(e for e in rows(letter / "subscribers.csv") if email_key(e) == email_key(address))
    record(letter, EventType.UNSUBSCRIBED, reader=reader(stored))
    code, out = apply(letter)
    assert code == 0 and "1 left" in out, out
    assert rows(letter / "subscribers.csv")[stored][1] == "unsubscribed"
