"""`subscribers stats`: the list counted by status, tag, domain, and month."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from newsletter.subscribers.reader import ListReader
from newsletter.subscribers.schema import STATUS_RANK, RowCodec


@dataclass
class ListStats:
    """Counts over the list. Tags and domains count active subscribers; months are YYYY-MM."""

    by_status: dict[str, int]
    by_tag: Counter[str]
    by_domain: Counter[str]
    joined: Counter[str]  # rows created in each month
    left: Counter[str]  # rows no longer active, by the month of their last change

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def list_stats(path: Path) -> ListStats:
    """Count the list by status, by tag, by domain, and people joining and leaving by month."""
    by_status = dict.fromkeys(STATUS_RANK, 0)
    tags, domains, joined, left = Counter[str](), Counter[str](), Counter[str](), Counter[str]()
    with ListReader(path) as reader:
        codec, index = RowCodec(reader.layout), reader.layout.index
        ie = index["email"]
        ist, itg, ic, iu = (index.get(c) for c in ("status", "tags", "created_at", "updated_at"))
        for row in reader.checked():
            status = row[ist] if ist is not None else "active"
            by_status[status] += 1
            joined[_month(row[ic]) if ic is not None else "unknown"] += 1
            if status != "active":
                left[_month(row[iu]) if iu is not None else "unknown"] += 1
                continue
            domains[row[ie].rpartition("@")[2]] += 1
            if itg is not None and (found := codec.tags(row[itg])):
                tags.update(found)
    return ListStats(by_status, tags, domains, joined, left)


def _month(when: str) -> str:
    return when[:7] if len(when) >= 7 and when[4] == "-" else "unknown"

