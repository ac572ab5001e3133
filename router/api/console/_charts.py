"""Server-side SVG charts for the console: bars, histograms and time series.

Drawn here, in Python, as inline SVG: a page's charts need no JavaScript and no chart
library, print, and work offline. Every label is escaped (it may come from a lead or a rule
file); the result is :class:`markupsafe.Markup`, so a template writes ``{{ chart }}`` as is.
Each chart carries ``role="img"``, an ``aria-label`` and a ``<title>`` per mark (the browser
shows the exact value on hover).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

__all__ = ["PALETTE", "bars", "histogram", "nice_max", "series"]

PALETTE = ("#2f5bd3", "#c23b32", "#1f8a4c", "#b7791f", "#7a4cc2", "#0f8a9d", "#8a5a2b",
           "#5c6778")
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def nice_max(value: float) -> float:
    """The axis top for ``value``: 1, 2, 2.5 or 5 times a power of ten, at least 1."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop ends at 10


def _num(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _open(width: int, height: int, label: str) -> list[str]:
    return [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(label)}">']


def _svg(parts: list[str]) -> Markup:
    # Safe: every text that did not come from this module went through escape() above.
    return Markup("".join(parts))  # noqa: S704


def _empty(label: str, width: int) -> Markup:
    del width  # nothing to draw: a line of text, not an empty chart
    return _svg([f'<p class="muted chart-empty">{escape(label)}: nothing in this period</p>'])


def bars(items: Sequence[tuple[str, float]], *, label: str, unit: str = "",
         width: int = 460, color: str = PALETTE[0]) -> Markup:
    """Horizontal bars, one per ``(name, value)``, largest scale first as given."""
    if not items:
        return _empty(label, width)
    name_w = min(220, 12 + 7 * max(len(name) for name, _ in items))
    row, top = 22, 6
    plot = width - name_w - 70
    scale = nice_max(max(v for _, v in items))
    parts = _open(width, top + row * len(items) + 6, label)
    for i, (name, value) in enumerate(items):
        y = top + i * row
        w = 0 if scale == 0 else max(1.0, plot * value / scale) if value else 0
        parts.append(f'<text x="{name_w - 6}" y="{y + 14}" text-anchor="end" {_FONT} '
                     f'fill="#1d2430">{escape(name)}</text>')
        parts.append(f'<rect x="{name_w}" y="{y + 3}" width="{w:.1f}" height="{row - 7}" '
                     f'fill="{color}"><title>{escape(name)}: {_num(value)}{escape(unit)}'
                     "</title></rect>")
        parts.append(f'<text x="{name_w + w + 5:.1f}" y="{y + 14}" {_FONT} fill="#5c6778">'
                     f"{_num(value)}{escape(unit)}</text>")
    parts.append("</svg>")
    return _svg(parts)


def histogram(values: Sequence[float], *, label: str, edges: Sequence[float],
              edge_labels: Sequence[str], marks: Mapping[str, float] | None = None,
              width: int = 560, height: int = 180) -> Markup:
    """Counts of ``values`` in the bins ``[edges[i], edges[i+1])`` (the last bin takes
    everything from its lower edge up); ``marks`` (e.g. median, p90) as labelled lines at the
    bin they fall in."""
    if not values:
        return _empty(label, width)
    bins = len(edges)
    counts = [0] * bins
    for v in values:
        counts[_bin(v, edges)] += 1
    left, bottom, top = 36, 34, 16 + 14 * len(marks or {})  # mark labels above the bars
    plot_w, plot_h = width - left - 8, height - bottom - top
    scale = nice_max(max(counts))
    step = plot_w / bins
    parts = _open(width, height, label)
    parts.append(f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" {_FONT} '
                 f'fill="#5c6778">{_num(scale)}</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" '
                 'stroke="#d9dee6"/>')
    for i, count in enumerate(counts):
        h = plot_h * count / scale
        x = left + i * step
        name = edge_labels[i]
        parts.append(f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{step - 2:.1f}" '
                     f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{escape(name)}: {count}'
                     "</title></rect>")
        parts.append(f'<text x="{x + step / 2:.1f}" y="{top + plot_h + 14}" '
                     f'text-anchor="middle" {_FONT} fill="#5c6778">{escape(name)}</text>')
    for j, (name, value) in enumerate((marks or {}).items()):
        x = left + (_bin(value, edges) + 0.5) * step
        color = PALETTE[1 + j % (len(PALETTE) - 1)]
        label_y = 12 + 14 * j
        parts.append(f'<line x1="{x:.1f}" y1="{label_y - 2}" x2="{x:.1f}" y2="{top + plot_h}" '
                     f'stroke="{color}" stroke-dasharray="4 3" stroke-width="2"/>')
        parts.append(f'<text x="{x + 4:.1f}" y="{label_y}" {_FONT} fill="{color}">'
                     f"{escape(name)}</text>")
    parts.append("</svg>")
    return _svg(parts)


def _bin(value: float, edges: Sequence[float]) -> int:
    for i in range(len(edges) - 1, -1, -1):
        if value >= edges[i]:
            return i
    return 0


def series(lines: Mapping[str, Sequence[float]], *, label: str, x_labels: Sequence[str],
           width: int = 460, height: int = 200) -> Markup:
    """One line per name over the same buckets (``x_labels``, oldest first), with a legend;
    a single bucket is drawn as dots."""
    if not lines or not x_labels or not any(any(v) for v in lines.values()):
        return _empty(label, width)
    left, top, legend = 36, 14, 16 * ((len(lines) + 2) // 3)
    bottom = 30 + legend
    plot_w, plot_h = width - left - 28, height - top - bottom  # room for the last x label
    scale = nice_max(max(max(v) for v in lines.values() if v))
    n = len(x_labels)
    step = plot_w / max(1, n - 1)
    parts = _open(width, height, label)
    parts.append(f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" {_FONT} '
                 f'fill="#5c6778">{_num(scale)}</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 12}" '
                 f'y2="{top + plot_h}" stroke="#d9dee6"/>')
    every = max(1, math.ceil(n / 8))
    for i in range(0, n, every):
        parts.append(f'<text x="{left + i * step:.1f}" y="{top + plot_h + 14}" '
                     f'text-anchor="middle" {_FONT} fill="#5c6778">{escape(x_labels[i])}</text>')
    for j, (name, values) in enumerate(lines.items()):
        color = PALETTE[j % len(PALETTE)]
        points = [(left + i * step, top + plot_h - plot_h * v / scale)
                  for i, v in enumerate(values)]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                         'stroke-width="2"/>')
        for (x, y), v, when in zip(points, values, x_labels, strict=False):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"><title>'
                         f"{escape(name)} {escape(when)}: {_num(v)}</title></circle>")
        lx, ly = left + (j % 3) * (plot_w / 3), height - legend + 16 * (j // 3) + 4
        parts.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{lx + 14:.1f}" y="{ly}" {_FONT} fill="#1d2430">'
                     f"{escape(name)}</text>")
    parts.append("</svg>")
    return _svg(parts)
