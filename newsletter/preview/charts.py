"""Small charts for the Reports page, drawn on the server as inline SVG: no script, no network.

Each chart is sized in a 320-unit-wide viewBox, about the width of a phone, so its text stays
legible at 375 px and it never grows wider than its column. Colours come from the page's CSS
classes (light and dark), never from inline styles, which the page's CSP forbids. Every text is
escaped; each chart has an accessible name, and the page shows the same numbers in a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 320
ROW = 24  # one bar's row in an issue's chart
LABEL_W = 92  # the metric's name on the left
VALUE_W = 78  # its number on the right
MIN_BAR = 2.0  # a count above zero is never drawn invisible


@dataclass(frozen=True)
class Bar:
    """One labelled bar: a count (None when the source cannot know it) and why it is blank."""

    label: str
    value: int | None
    kind: str  # CSS class suffix: delivered, bounced, complained, unsubscribed, clicked
    blank: str = "unknown"  # shown instead of a number when value is None ("not tracked", ...)


@dataclass(frozen=True)
class Point:
    """One month of the list: its label and the list's size at its end."""

    label: str
    size: int


def bar_width(value: int, scale: int, room: float) -> float:
    """value's share of scale in `room` units; never less than MIN_BAR for a count above zero."""
    if value <= 0 or scale <= 0:
        return 0.0
    return max(MIN_BAR, room * min(value, scale) / scale)


def issue_chart(name: str, bars: Sequence[Bar], scale: int) -> Markup:
    """Horizontal bars, one per outcome, each against `scale` (the messages handed over)."""
    height = ROW * len(bars) + 4
    room = WIDTH - LABEL_W - VALUE_W
    parts = [f'<svg class="chart chart-issue" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(name)}" preserveAspectRatio="xMinYMin meet">',
             f"<title>{escape(name)}</title>",
             f'<line class="axis" x1="{LABEL_W}" y1="0" x2="{LABEL_W}" y2="{height}"/>']
    for i, bar in enumerate(bars):
        y = i * ROW + 2
        parts.append(f'<text class="label" x="0" y="{y + 16}">{escape(bar.label)}</text>')
        if bar.value is None:
            parts.append(f'<text class="value blank" x="{WIDTH}" y="{y + 16}" text-anchor="end">'
                         f"{escape(bar.blank)}</text>")
            continue
        width = bar_width(bar.value, scale, room)
        parts.append(f'<rect class="bar bar-{escape(bar.kind)}" x="{LABEL_W}" y="{y + 4}" '
                     f'width="{width:.1f}" height="{ROW - 8}" data-value="{bar.value}"/>')
        parts.append(f'<text class="value" x="{WIDTH}" y="{y + 16}" text-anchor="end">{bar.value:,}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped


def growth_chart(name: str, points: Sequence[Point]) -> Markup:
    """The list's size at the end of each month, as columns, oldest on the left."""
    top, bottom, left = 18, 22, 4
    height = 150
    plot_h = height - top - bottom
    biggest = max((p.size for p in points), default=0)
    step = (WIDTH - left) / max(len(points), 1)
    gap = min(4.0, step / 4)
    parts = [f'<svg class="chart chart-growth" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(name)}" preserveAspectRatio="xMinYMin meet">',
             f"<title>{escape(name)}</title>",
             f'<text class="label" x="{left}" y="12">largest: {biggest:,}</text>',
             f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{WIDTH}" y2="{top + plot_h}"/>']
    for i, p in enumerate(points):
        h = 0.0 if biggest <= 0 else max(MIN_BAR if p.size > 0 else 0.0, plot_h * p.size / biggest)
        x = left + i * step + gap / 2
        parts.append(f'<rect class="bar bar-size" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{step - gap:.1f}" '
                     f'height="{h:.1f}" data-value="{p.size}"><title>{escape(p.label)}: {p.size:,}</title></rect>')
    if points:
        parts.append(f'<text class="label" x="{left}" y="{height - 4}">{escape(points[0].label)}</text>')
        if len(points) > 1:
            parts.append(f'<text class="label" x="{WIDTH}" y="{height - 4}" text-anchor="end">'
                         f"{escape(points[-1].label)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped
