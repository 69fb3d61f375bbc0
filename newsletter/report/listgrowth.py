"""The list over time: who joined and who left in each month, from the subscriber CSV."""

from __future__ import annotations

from pathlib import Path

from newsletter.report.model import MonthGrowth
from newsletter.subscribers.stats import list_stats


def list_growth(path: Path) -> tuple[MonthGrowth, ...]:
    """Joined (created_at), left (updated_at of a row no longer active) and size, month by month.

    A row without a usable date counts in the month "unknown", listed first; sizes start there.
    Months with no change between two that have one are left out: the table shows movement.
    """
    stats = list_stats(path)
    months = sorted(set(stats.joined) | set(stats.left), key=lambda m: (m != "unknown", m))
    size, out = 0, []
    for month in months:
        size += stats.joined[month] - stats.left[month]
        out.append(MonthGrowth(month, stats.joined[month], stats.left[month], size))
    return tuple(out)
