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

WIDTH = 640
ROW = 28
LEFT = 180
RIGHT = 90


@dataclass(frozen=True)
class Bar:
    label: str
    score: float | None  # None: suppressed
    low: float = 0.0
    high: float = 0.0
    suppressed_text: str = "< 10"


def bar_chart(
    chart_id: str, title: str, description: str, bars: list[Bar], unit: str = "%"
) -> Markup:
    top = max([100.0, *[b.high for b in bars if b.score is not None]])
    plot = WIDTH - LEFT - RIGHT
    height = ROW * len(bars) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'class="carenet-chart" aria-labelledby="{chart_id}-t {chart_id}-d">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(description)}</desc>',
        f'<line x1="{LEFT}" y1="10" x2="{LEFT}" y2="{height - 25}" class="carenet-chart__axis"/>',
    ]
    for tick in (0, 25, 50, 75, 100):
        x = LEFT + plot * tick / top
        parts.append(
            f'<text x="{x:.1f}" y="{height - 8}" class="carenet-chart__tick">'
            f"{tick}{escape(unit)}</text>"
        )
    for i, bar in enumerate(bars):
        y = 12 + i * ROW
        parts.append(
            f'<text x="{LEFT - 8}" y="{y + 15}" class="carenet-chart__label">'
            f"{escape(bar.label)}</text>"
        )
        if bar.score is None:
            parts.append(
                f'<text x="{LEFT + 6}" y="{y + 15}" class="carenet-chart__suppressed">'
                f"{escape(bar.suppressed_text)}</text>"
            )
            continue
        width = plot * bar.score / top
        parts.append(
            f'<rect x="{LEFT}" y="{y + 3}" width="{width:.1f}" height="{ROW - 10}" '
            'class="carenet-chart__bar"/>'
        )
        x1, x2 = LEFT + plot * bar.low / top, LEFT + plot * bar.high / top
        parts.append(
            f'<line x1="{x1:.1f}" y1="{y + ROW / 2 - 1}" x2="{x2:.1f}" '
            f'y2="{y + ROW / 2 - 1}" class="carenet-chart__ci"/>'
        )
        value = f"{bar.score:.1f}".replace(".", ",")
        parts.append(
            f'<text x="{max(x2, LEFT + width) + 6:.1f}" y="{y + 15}" class="carenet-chart__value">'
            f"{value}{escape(unit)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 -- every text above is escaped
