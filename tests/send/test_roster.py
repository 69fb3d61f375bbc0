"""The packed roster of a send and its batches: what goes in comes out, in order, once."""

from __future__ import annotations

import pytest

from newsletter.errors import RecipientError
from newsletter.models import Recipient
from newsletter.providers import Outgoing
from newsletter.send.roster import Batches, Roster
from newsletter.subscribers.schema import email_key

PEOPLE = [(1, "ann@example.com", "Ann Lee"), (3, "δοκιμή@example.com", "Δήμητρα"), (4, "bo@bücher.de", ""),
          (9, "cy@example.org", "Cy \"the, one\" Vale ✨"), (10, "\"odd local\"@example.com", "x" * 5000)]


def roster_of(people: list[tuple[int, str, str]]) -> Roster:
    roster = Roster()
    for number, email, name in people:
        roster.add(number, email, name, email_key(email))
    return roster


def test_what_goes_in_comes_out_in_order() -> None:
    roster = roster_of(PEOPLE)
    assert len(roster) == 5
    assert [(o.number, o.recipient.email, o.recipient.name) for o in roster] == PEOPLE
    assert roster[1] == Outgoing(3, Recipient("δοκιμή@example.com", "Δήμητρα"), "δοκιμή@example.com")
    assert roster[-1].recipient.name == "x" * 5000
    assert [o.key for o in roster] == [email_key(email) for _, email, _ in PEOPLE]
    assert roster[2].key == "bo@xn--bcher-kva.de"  # kept as the planner worked it out
    with pytest.raises(IndexError):
        roster[5]


def test_slices_and_keep_are_rosters_of_the_same_people() -> None:
    roster = roster_of(PEOPLE)
    assert [o.number for o in roster[1:3]] == [3, 4]
    assert isinstance(roster[:2], Roster) and len(roster[:0]) == 0
    kept = roster.keep(lambda key: key.endswith(".com"))
    assert [o.number for o in kept] == [1, 3, 10]
    assert Roster.of(list(roster)) is not roster and list(Roster.of(roster)) == list(roster)


def test_a_nul_is_refused_rather_than_cutting_a_name() -> None:
    with pytest.raises(RecipientError, match="NUL"):
        Roster().add(1, "a@example.com", "An\0na", "a@example.com")


@pytest.mark.parametrize(("n", "size"), [(0, 3), (1, 3), (9, 3), (10, 3), (10, 1000)])
def test_batches_cover_everyone_once_and_count_without_unpacking(n: int, size: int) -> None:
    roster = roster_of([(i + 1, f"p{i}@example.com", f"P {i}") for i in range(n)])
    batches = Batches(roster, size)
    assert len(batches) == -(-n // size)
    assert [len(b) for b in batches] == [min(size, n - i) for i in range(0, n, size)]
    assert [o.number for b in batches for o in b] == list(range(1, n + 1))
    if len(batches) > 1:
        rest = batches[1:]
        assert len(rest) == len(batches) - 1 and list(rest[0]) == list(batches[1])
        assert sum(len(b) for b in rest) == n - size
        assert list(batches[-1]) == list(batches[len(batches) - 1])


def test_a_batch_is_unpacked_once_while_the_send_loop_still_needs_it() -> None:
    roster = roster_of([(i + 1, f"p{i}@example.com", "") for i in range(50)])
    batches = Batches(roster, 5)
    ahead = batches[3]
    first = ahead[0]
    assert batches[3][0] is first and batches[3][1:3] == ahead[1:3]  # asked ahead, then handed over: one unpacking
    for later in range(Batches.KEEP + 5):
        batches.unpacked(100 + later, 0, 1)  # many others unpacked since: the old one is let go
    assert batches[3][0] == first and batches[3][0] is not first
