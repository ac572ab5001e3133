"""The calibration report (router/services/calibration.py) as text, Markdown or JSON — what
``leadrouter rules calibrate --format`` prints and ``GET /v1/scoring/calibration`` answers
(JSON)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from router.services.calibration import Bucket, CalibrationReport, Cell

__all__ = ["render_calibration", "table"]


def _pct(x: float) -> str:
    return f"{x:.1%}"


def table(head: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> list[str]:
    """Aligned columns (text) or a pipe table (Markdown)."""
    if markdown:
        return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                *("| " + " | ".join(r) + " |" for r in rows), ""]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*head).rstrip(), *(fmt.format(*r).rstrip() for r in rows), ""]


def _rate_rows(buckets: Sequence[Bucket]) -> list[list[str]]:
    return [[b.key, str(b.leads), str(b.converted), _pct(b.rate),
             f"{_pct(b.low)}-{_pct(b.high)}"] for b in buckets]


def _cells(cells: Sequence[Cell]) -> list[list[str]]:
    return [[c.grade, c.group, str(c.leads), str(c.converted), _pct(c.rate),
             f"{_pct(c.low)}-{_pct(c.high)}"] for c in cells]


def _lines(r: CalibrationReport, md: bool) -> list[str]:
    h = "## " if md else ""
    window = f"{r.since.isoformat() if r.since else 'oldest kept'} to " \
             f"{r.until.isoformat() if r.until else 'now'}"
    out = [("# " if md else "") + f"Score calibration: conversion to {r.target!r}", "",
           f"{r.leads} decided leads ({window}), {r.converted} converted: {_pct(r.rate)} "
           f"(95% {_pct(r.low)}-{_pct(r.high)})"
           + (f"; {r.skipped} skipped (expired or erased)" if r.skipped else ""), ""]
    t = r.top
    out += [f"{h}Top grades ({'/'.join(t.grades)})", "",
            f"{_pct(t.lead_share)} of leads hold {_pct(t.recall)} of conversions (recall); "
            f"they convert at {_pct(t.precision)} (precision).",
            f"{t.top_grade or '-'} over {t.bottom_grade or '-'}: "
            + ("n/a" if t.separation is None else f"{t.separation:.1f}x") + ".",
            f"Concentration goal {'met' if t.meets_concentration else 'NOT met'}; separation "
            f"goal {'met' if t.meets_separation else 'NOT met'} ({t.goal}).", ""]
    head = ["", "leads", "converted", "rate", "95% interval"]
    out += [f"{h}By grade", "", *table(["grade", *head[1:]], _rate_rows(r.by_grade), md)]
    out += [f"{h}By score band (width {r.band_width:g})", "",
            *table(["score", *head[1:]], _rate_rows(r.by_band), md)]
    cross = ["grade", "", "leads", "converted", "rate", "95% interval"]
    out += [f"{h}By grade and speed to lead", "",
            *table([cross[0], "speed", *cross[2:]], _cells(r.by_speed), md)]
    out += [f"{h}By grade and pool", "",
            *table([cross[0], "pool", *cross[2:]], _cells(r.by_pool), md)]
    rows = [[x.rule, "-" if x.points is None else f"{x.points:+g}", str(x.matched),
             _pct(x.matched_rate), _pct(x.unmatched_rate),
             "-" if x.lift is None else f"{x.lift:.2f}",
             "-" if x.low is None or x.high is None else f"{x.low:.2f}-{x.high:.2f}",
             x.verdict + (f": {x.note}" if x.note else "")] for x in r.rules]
    out += [f"{h}Rules: conversion when matched vs not", "",
            f"Lift = conversion when matched / when not; 'too little data' below "
            f"{r.min_expected:g} conversions expected on either side.", "",
            *table(["rule", "points", "matched", "rate matched", "rate not", "lift",
                    "95% interval", "verdict"], rows, md)]
    return out


def render_calibration(report: CalibrationReport, fmt: str) -> bytes:
    """``fmt``: ``json``, ``text`` or ``markdown``."""
    if fmt == "json":
        return msgspec.json.encode(report)
    return ("\n".join(_lines(report, fmt == "markdown")).rstrip() + "\n").encode()
