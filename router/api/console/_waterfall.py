"""The score waterfall of the lead page: an inline SVG, drawn here (no JavaScript).

One row per contribution, its bar spanning from the running total before it to the running
total after it (green up, red down), then the total from zero. Each bar carries
``data-points`` (its contribution) and the total ``data-total``, so a test can add them up
in the browser. Labels come from rule files and plugins: every one is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from router.services.lead_page import Bar

__all__ = ["waterfall_svg"]

_ROW, _LABEL, _PLOT, _PAD = 24, 170, 420, 60
_UP, _DOWN, _TOTAL = "#1f8a4c", "#c23b32", "#2f5bd3"


def _num(value: float) -> str:
    return f"{value:g}"


def waterfall_svg(bars: Sequence[Bar]) -> Markup:
    values = [0.0, *(b.start for b in bars), *(b.end for b in bars)]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return _LABEL + (v - lo) / span * _PLOT

    width, height = _LABEL + _PLOT + _PAD, _ROW * len(bars) + 26
    parts = [f'<svg class="chart waterfall" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             'aria-label="score waterfall: each contribution from the running total">']
    zero = x(0.0)
    parts.append(f'<line x1="{zero:.1f}" y1="0" x2="{zero:.1f}" y2="{height - 20}" '
                 'stroke="#9aa3ad" stroke-dasharray="3 3"/>')
    for i, b in enumerate(bars):
        y = i * _ROW + 4
        left, right = sorted((x(b.start), x(b.end)))
        color = _TOTAL if b.total else (_UP if b.points >= 0 else _DOWN)
        label = escape(b.label if b.total else f"{b.group}: {b.label}" if b.group else b.label)
        tip = escape(f"{b.label}: {_num(b.points)}" + (f" — {b.reason}" if b.reason else "")
                     + ("" if b.total else f" ({_num(b.start)} → {_num(b.end)})"))
        attr = f'data-total="{_num(b.points)}"' if b.total else f'data-points="{_num(b.points)}"'
        weight = ' font-weight="700"' if b.total else ""
        parts.append(f'<text x="{_LABEL - 6}" y="{y + 14}" text-anchor="end"{weight}>{label}'
                     '</text>')
        parts.append(f'<rect class="bar" {attr} x="{left:.1f}" y="{y}" '
                     f'width="{max(right - left, 1.0):.1f}" height="{_ROW - 8}" fill="{color}">'
                     f'<title>{tip}</title></rect>')
        sign = "" if b.total or b.points < 0 else "+"
        parts.append(f'<text x="{right + 4:.1f}" y="{y + 14}"{weight}>{sign}{_num(b.points)}'
                     '</text>')
    parts.append(f'<text x="{x(lo):.1f}" y="{height - 4}">{_num(lo)}</text>'
                 f'<text x="{x(hi):.1f}" y="{height - 4}" text-anchor="end">{_num(hi)}</text>'
                 '</svg>')
    # Safe: every text not produced by this module went through escape() above.
    return Markup("".join(parts))  # noqa: S704
