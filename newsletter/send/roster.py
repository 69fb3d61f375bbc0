"""A send's recipients, packed: a million fit in tens of megabytes.

A plan holds every recipient of a send from reading the list until the last batch is handed over.
As Python objects (an Outgoing, a Recipient and their strings) a person costs about 400 bytes;
packed as UTF-8 in one buffer (address, name and same-address key, each ended by a NUL; the key
left out when it is the address itself, as it nearly always is), with an offset and a number,
about 55. The key is worked out once, by the planner, and recorded in the ledger as it is.
Batches are unpacked one at a time as the send reaches them (Batches).
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import overload

from newsletter.errors import RecipientError
from newsletter.models import Recipient
from newsletter.providers import Outgoing
from newsletter.subscribers.schema import email_key


class Roster(Sequence[Outgoing]):
    """Outgoing recipients (number, address, name) in send order, packed."""

    def __init__(self) -> None:
        self._text = bytearray()  # per person: address NUL name NUL key NUL (the list reader refuses a NUL)
        self._ends = array("Q")  # per person: where they end in _text
        self._numbers = array("I")  # per person: the place in the whole send

    @classmethod
    def of(cls, people: Iterable[Outgoing]) -> Roster:
        """A roster of these recipients (their unsubscribe links are made again when built)."""
        roster = cls()
        for out in people:
            email = out.recipient.email
            roster.add(out.number, email, out.recipient.name, out.key or email_key(email.strip()))
        return roster

    def add(self, number: int, email: str, name: str, key: str) -> None:
        """Append one recipient with their same-address key (a NUL would be refused when sent, as here)."""
        if "\0" in email or "\0" in name:
            raise RecipientError(f"{email!r}: a NUL character in the address or name")
        text = self._text
        text += f"{email}\0{name}\0{'' if key == email else key}\0".encode("utf-8", "surrogatepass")
        self._ends.append(len(text))
        self._numbers.append(number)

    def __len__(self) -> int:
        return len(self._numbers)

    @overload
    def __getitem__(self, index: int) -> Outgoing: ...

    @overload
    def __getitem__(self, index: slice) -> Roster: ...

    def __getitem__(self, index: int | slice) -> Outgoing | Roster:
        if isinstance(index, slice):
            part = Roster()
            for i in range(*index.indices(len(self))):
                part.add(*self._row(i))
            return part
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return _outgoing(*self._row(index))

    def __iter__(self) -> Iterator[Outgoing]:
        for start in range(0, len(self), 1000):  # a thousand at a time: never the whole roster unpacked
            yield from self.span(start, min(start + 1000, len(self)))

    def span(self, start: int, stop: int) -> Iterator[Outgoing]:
        """The recipients from start to stop (positions in the roster), unpacked (one decode for all)."""
        if start >= stop:
            return iter(())
        ends = self._ends
        values = self._text[ends[start - 1] if start else 0:ends[stop - 1]].decode("utf-8", "surrogatepass").split("\0")
        return map(_outgoing, self._numbers[start:stop], values[0::3], values[1::3], values[2::3])

    def keep(self, wanted: Callable[[str], bool]) -> Roster:
        """The recipients whose same-address key `wanted` accepts, in order."""
        kept = Roster()
        for i in range(len(self)):
            row = self._row(i)
            if wanted(row[3]):
                kept.add(*row)
        return kept

    def _row(self, i: int) -> tuple[int, str, str, str]:
        ends = self._ends
        email, name, key, _ = self._text[ends[i - 1] if i else 0:ends[i]].decode("utf-8", "surrogatepass").split("\0")
        return self._numbers[i], email, name, key or email


def _outgoing(number: int, email: str, name: str, key: str) -> Outgoing:
    return Outgoing(number, Recipient(email, name), key or email)


class Batch(Sequence[Outgoing]):
    """One batch of a send: its size known at once, its people unpacked the first time they are asked for."""

    def __init__(self, batches: Batches, index: int, start: int, stop: int) -> None:
        self._batches, self._index, self._start, self._stop = batches, index, start, stop

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> Outgoing: ...

    @overload
    def __getitem__(self, index: slice) -> list[Outgoing]: ...

    def __getitem__(self, index: int | slice) -> Outgoing | list[Outgoing]:
        return self._people()[index]

    def __iter__(self) -> Iterator[Outgoing]:
        return iter(self._people())

    def _people(self) -> list[Outgoing]:
        return self._batches.unpacked(self._index, self._start, self._stop)


class Batches(Sequence[Batch]):
    """A roster cut into batches of `size`; a batch is unpacked when its people are first asked for.

    The send loop counts every batch first, asks for the next few to be built ahead, then hands
    each over: the last few unpacked batches are kept, so each is unpacked once.
    """

    KEEP = 18  # unpacked batches kept: more than the send loop asks for ahead (one a window slot, 16 at most)

    def __init__(self, roster: Roster, size: int, first: int = 0, stop: int | None = None,
                 kept: OrderedDict[int, list[Outgoing]] | None = None) -> None:
        self.roster, self.size = roster, max(1, size)
        whole = -(-len(roster) // self.size)
        self._first, self._stop = first, whole if stop is None else min(stop, whole)
        self._kept: OrderedDict[int, list[Outgoing]] = OrderedDict() if kept is None else kept  # shared with slices

    def __len__(self) -> int:
        return max(0, self._stop - self._first)

    @overload
    def __getitem__(self, index: int) -> Batch: ...

    @overload
    def __getitem__(self, index: slice) -> Batches: ...

    def __getitem__(self, index: int | slice) -> Batch | Batches:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("batches are sliced in order")
            return Batches(self.roster, self.size, self._first + start, self._first + max(start, stop), self._kept)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        number = self._first + index
        start = number * self.size
        return Batch(self, number, start, min(start + self.size, len(self.roster)))

    def __iter__(self) -> Iterator[Batch]:
        for i in range(len(self)):
            yield self[i]

    def unpacked(self, number: int, start: int, stop: int) -> list[Outgoing]:
        """Batch `number`'s people (positions start to stop in the roster), unpacked once while kept."""
        people = self._kept.get(number)
        if people is None:
            people = self._kept[number] = list(self.roster.span(start, stop))
            while len(self._kept) > self.KEEP:
                self._kept.popitem(last=False)
        return people
