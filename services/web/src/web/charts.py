"""Indicator charts as SVG, drawn on the server: one horizontal bar per cell with its 95 %
interval as a line, a direct label with the score, and suppressed cells kept on the axis with
the grey text "< 10" (or "x" for complementary suppression) where the bar would be: never a
0. Each chart has a title and a text alternative; the page shows the numbers as a table.

The only place in the front that emits markup itself (so the only ``Markup``): every text
that goes into the SVG is escaped here."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 760
ROW = 28
LEFT = 290
RIGHT = 90
COMPACT_WIDTH = 360
COMPACT_ROW = 46
COMPACT_RIGHT = 60


@dataclass(frozen=True)
class Bar:
    label: str
    score: float | None  # None: suppressed
    low: float = 0.0
    high: float = 0.0
    suppressed_text: str = "< 10"
    # no eligible patient in the group (no score, nothing withheld): a dash, not a bar
    empty: bool = False


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    bars: list[Bar],
    unit: str = "%",
    *,
    compact: bool = False,
) -> Markup:
    """``compact``: for a small screen, narrower (so its text stays readable when the chart
    fills a phone's width), each group's name on its own line above its bar."""
    width = COMPACT_WIDTH if compact else WIDTH
    left = 0 if compact else LEFT
    row = COMPACT_ROW if compact else ROW
    bar_top = 20 if compact else 3  # the bar below its label (compact) or beside it
    top = max([100.0, *[b.high for b in bars if b.score is not None]])
    plot = width - left - (COMPACT_RIGHT if compact else RIGHT)
    height = row * len(bars) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'class="carenet-chart{" carenet-chart--compact" if compact else ""}" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(description)}</desc>',
        f'<line x1="{left}" y1="10" x2="{left}" y2="{height - 25}" class="carenet-chart__axis"/>',
    ]
    for tick in (0, 25, 50, 75, 100):
        x = left + plot * tick / top
        first = " carenet-chart__tick--start" if compact and tick == 0 else ""
        parts.append(
            f'<text x="{x:.1f}" y="{height - 8}" class="carenet-chart__tick{first}">'
            f"{tick}{escape(unit)}</text>"
        )
    for i, bar in enumerate(bars):
        y = 12 + i * row
        label_x, label_y = (left + 4, y + 13) if compact else (left - 8, y + 15)
        mark_y = y + bar_top + 12 if compact else y + 15
        parts.append(
            f'<text x="{label_x}" y="{label_y}" class="carenet-chart__label'
            f'{" carenet-chart__label--above" if compact else ""}">{escape(bar.label)}</text>'
        )
        if bar.score is None:
            kind = "empty" if bar.empty else "suppressed"
            parts.append(
                f'<text x="{left + 6}" y="{mark_y}" class="carenet-chart__{kind}">'
                f"{escape(bar.suppressed_text)}</text>"
            )
            continue
        length = plot * bar.score / top
        bar_height = ROW - 10
        parts.append(
            f'<rect x="{left}" y="{y + bar_top}" width="{length:.1f}" height="{bar_height}" '
            'class="carenet-chart__bar"/>'
        )
        middle = y + bar_top + bar_height / 2
        x1, x2 = left + plot * bar.low / top, left + plot * bar.high / top
        parts.append(
            f'<line x1="{x1:.1f}" y1="{middle}" x2="{x2:.1f}" '
            f'y2="{middle}" class="carenet-chart__ci"/>'
        )
        value = f"{bar.score:.1f}".replace(".", ",")
        parts.append(
            f'<text x="{max(x2, left + length) + 6:.1f}" y="{mark_y}" '
            f'class="carenet-chart__value">{value}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 -- every text above is escaped
