"""The report page's charts, inline SVG drawn here (no script, nothing fetched): bars, lines with a
prediction band, a heat map with its scale; each with a legend, its labels cut to fit its width."""

from __future__ import annotations

import html
import unicodedata

WIDE, NARROW = 720, 360   # px: the report's column on a desk screen, and on a phone
PALETTE = ("#1f6f8b", "#e07a1f", "#6a8d2f", "#8e4585", "#b23a48")
# on a screen narrower than this the narrow drawing of each chart is shown
SWITCH = 600
CHART_STYLE = (f".narrow-chart{{display:none}}@media (max-width:{SWITCH}px)"
               "{.wide-chart{display:none}.narrow-chart{display:block}}")


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def _text_width(text: str, size: float) -> float:
    """About how wide ``text`` is drawn at ``size`` px: a Chinese character is a square, others about 0.6 of it."""
    return sum(size if unicodedata.east_asian_width(ch) in "WF" else 0.6 * size for ch in text)


def _fit(text: str, width: float, size: float) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` px, so a label never runs out of its chart."""
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _legend(x: float, y: float, entries: list[tuple[str, str]], width: int) -> tuple[str, float]:
    """Swatches with their names in rows from (x, y), wrapped within ``width``; and the y below them."""
    parts, at = [], x
    for colour, name in entries:
        wide = 14 + _text_width(name, 11) + 16
        if at > x and at + wide > width:
            at, y = x, y + 16
        parts.append(f'<rect x="{at:.1f}" y="{y}" width="10" height="10" fill="{colour}" stroke="#bbb" stroke-width="0.5"/>'
                     f'<text x="{at + 14:.1f}" y="{y + 9}" font-size="11">{esc(name)}</text>')
        at += wide
    return '<g class="legend">' + "".join(parts) + "</g>", y + 16


def _svg(chart_id: str, width: int, height: float, body: list[str], title: str) -> str:
    return (f'<svg class="chart" id="{chart_id}" role="img" aria-label="{esc(title)}" xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="0 0 {width} {height:.0f}" width="{width}" height="{height:.0f}">'
            f"<title>{esc(title)}</title>" + "".join(body) + "</svg>")


def bar_chart(chart_id: str, title: str, labels: list[str], series: dict[str, list[float]], width: int = WIDE) -> str:
    """Horizontal bars, one row per label, one bar per series."""
    left, row_h, bar_gap = (230 if width >= WIDE else 120), 14 * max(len(series), 1) + 8, 2
    legend, first = _legend(10, 6, list(zip(PALETTE, series)), width)
    height = first + 8 + row_h * len(labels) + 10
    top = max([v or 0 for values in series.values() for v in values] + [1])
    scale = (width - left - 60) / top
    body = [legend]
    for i, label in enumerate(labels):
        y = first + 8 + i * row_h
        body.append(f'<text x="{left - 6}" y="{y + 11}" text-anchor="end" font-size="11">{esc(_fit(label, left - 10, 11))}'
                    f"<title>{esc(label)}</title></text>")
        for j, (name, values) in enumerate(series.items()):
            value = values[i] or 0
            yy = y + j * (14 + bar_gap)
            body.append(f'<rect x="{left}" y="{yy}" width="{value * scale:.1f}" height="13" fill="{PALETTE[j]}">'
                        f"<title>{esc(name)}: {number(values[i])}</title></rect>")
            body.append(f'<text x="{left + value * scale + 4:.1f}" y="{yy + 11}" font-size="10">{number(values[i])}</text>')
    return _svg(chart_id, width, height, body, title)


def line_chart(chart_id: str, title: str, labels: list[str], series: dict[str, list[float | None]],
               band: tuple[list[float], list[float]] | None = None, width: int = WIDE) -> str:
    """Lines over a shared x axis (labels), with an optional shaded band (the prediction interval)."""
    entries = list(zip(PALETTE, series)) + ([("rgba(31,111,139,0.18)", "prediction interval")] if band else [])
    legend, top_pad = _legend(10, 4, entries, width)
    height, bottom, right = 236 + top_pad, 40, 40
    top_pad += 8
    n = max(len(labels), 2)
    values = [v for s in series.values() for v in s if v is not None] + (list(band[1]) if band else [])
    top = max(values + [1])
    left = max(50, 10 + _text_width(number(round(top, 1)), 10))
    x = lambda i: left + i * (width - left - right) / (n - 1)  # noqa: E731
    y = lambda v: height - bottom - v * (height - bottom - top_pad) / top  # noqa: E731
    body = [legend, f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" stroke="#999"/>',
            f'<text x="{left - 6}" y="{y(top):.1f}" text-anchor="end" font-size="10">{number(round(top, 1))}</text>',
            f'<text x="{left - 6}" y="{y(0):.1f}" text-anchor="end" font-size="10">0</text>']
    if band:
        upper = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(band[1]))
        lower = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in reversed(list(enumerate(band[0]))))
        body.append(f'<polygon class="band" points="{upper} {lower}" fill="{PALETTE[0]}" fill-opacity="0.18"/>')
    for j, (name, points) in enumerate(series.items()):
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(points) if v is not None)
        body.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[j]}" stroke-width="1.6">'
                    f"<title>{esc(name)}</title></polyline>")
    step = max(1, len(labels) // (8 if width >= WIDE else 3))
    for i in range(0, len(labels), step):
        body.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="10">'
                    f"{esc(labels[i])}</text>")
    return _svg(chart_id, width, height, body, title)


def heat_map(chart_id: str, title: str, rows: list[str], columns: list[str], cells: dict[tuple[int, int], float],
             width: int = WIDE) -> str:
    """A grid of rows × columns shaded by value (darker = fuller), with its scale."""
    left, top, cell_w = 40, 30, (width - 50) / max(len(columns), 1)
    cell_h = 24
    peak = max(list(cells.values()) + [1e-9])
    body = [f'<text x="{left + (c + 0.5) * cell_w:.1f}" y="{top - 8}" text-anchor="middle" font-size="10">{esc(name)}</text>'
            for c, name in enumerate(columns)]
    for r, name in enumerate(rows):
        body.append(f'<text x="{left - 6}" y="{top + r * cell_h + 16}" text-anchor="end" font-size="11">{esc(name)}</text>')
        for c in range(len(columns)):
            value = cells.get((r, c))
            shade = "#f2f2f2" if value is None else f"rgba(31,111,139,{0.08 + 0.92 * value / peak:.3f})"
            label = "no data" if value is None else f"{value:.1%}"
            body.append(f'<rect x="{left + c * cell_w:.1f}" y="{top + r * cell_h}" width="{cell_w - 1:.1f}" '
                        f'height="{cell_h - 1}" fill="{shade}"><title>{esc(name)} {esc(columns[c])}: {label}</title></rect>')
    scale = [(f"rgba(31,111,139,{0.08 + 0.92 * share:.3f})", f"{share * peak:.{0 if peak >= 0.1 else 1}%}")
             for share in (0, 0.25, 0.5, 0.75, 1)]
    legend, bottom = _legend(left, top + cell_h * len(rows) + 14, scale + [("#f2f2f2", "no data")], width)
    return _svg(chart_id, width, bottom + 4, body + [legend], title)


def both(chart) -> str:
    """A chart drawn twice: for a desk screen, and narrower for a phone (its text stays legible, where the
    wide one shrunk to fit would not); the page's style shows the one that suits the screen."""
    narrow = chart(NARROW).replace(' id="chart-', ' id="narrow-chart-', 1)
    return f'<div class="wide-chart">{chart(WIDE)}</div><div class="narrow-chart">{narrow}</div>'
