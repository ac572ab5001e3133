"""A replay :class:`~router.services.replay_report.Report` as text (terminal), Markdown, JSON
or a self-contained HTML page.

The HTML page has no script, no stylesheet or font from elsewhere and no CDN: its charts are
inline SVG drawn here (volume before/after per pool and per owner, the score histogram) and the
status transition matrix is a heat table, so it opens offline, in a mail attachment, and reads
without JavaScript. Pure: strings in, strings out.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import msgspec

from router.services.replay_model import Outcome
from router.services.replay_report import Report, Sample, Volume

__all__ = ["FORMATS", "MEDIA_TYPES", "render"]

FORMATS = ("text", "json", "markdown", "html")
MEDIA_TYPES = {"text": "text/plain; charset=utf-8", "json": "application/json",
               "markdown": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}
_TOP = 15  # rows per table in text and Markdown (the JSON has them all)
BEFORE, AFTER = "#8a9bb0", "#1f6feb"


def render(report: Report, fmt: str) -> bytes:
    """``report`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n"
    renderers: dict[str, Callable[[Report], str]] = {"text": text, "markdown": markdown,
                                                      "html": page}
    if fmt not in renderers:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return renderers[fmt](report).encode()


def _v(value: object) -> str:
    return "(none)" if value is None else str(value)


def _signed(n: int) -> str:
    return f"{n:+d}" if n else "0"


def _headline(r: Report) -> list[str]:
    if not r.replayed and not r.skipped.count:
        return ["0 leads in window"]
    pct = f" ({100 * r.changed / r.replayed:.1f}%)" if r.replayed else ""
    lines = [f"{r.replayed} leads replayed, {r.changed} changed{pct}, "
             f"{r.skipped.count} skipped"]
    lines += [f"  skipped: {reason}: {n}" for reason, n in r.skipped.by_reason.items()]
    if r.candidate_version:
        lines.append(f"candidate rules version {r.candidate_version[:12]}")
    return lines


def _volume_rows(rows: Sequence[Volume]) -> list[list[str]]:
    return [[_v(v.key), str(v.before), str(v.after), _signed(v.delta)] for v in rows[:_TOP]]


def _tables(r: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """Every table of the text and Markdown reports: (title, header, rows)."""
    tables = [("Changes", ["field", "from", "to", "leads"],
               [[t.field, _v(t.from_), _v(t.to), str(t.count)] for t in r.transitions[:40]])]
    for title, rows in (("Pools", r.by_pool), ("Statuses", r.by_status),
                        ("Grades", r.by_grade), ("Territories", r.by_territory),
                        ("Segments", r.by_segment), ("Queues", r.by_queue),
                        ("SLA policies", r.by_sla_policy),
                        ("Expected SLA load per pool (leads under an SLA)", r.sla_load)):
        tables.append((title, ["value", "before", "after", "delta"], _volume_rows(rows)))
    owners = []
    for o in r.by_owner[:_TOP]:
        fair = "; ".join(f"{f.pool}: {_v(f.fairness_before)} -> {_v(f.fairness_after)}"
                         for f in o.fairness)
        owners.append([_v(o.owner), str(o.before), str(o.after), _signed(o.delta), fair])
    tables.append(("Owners (fairness: share of the pool's leads / share of its weight)",
                   ["owner", "before", "after", "delta", "fairness"], owners))
    tables.append(("Rules whose hits changed most", ["rule", "before", "after", "delta"],
                   [[h.rule, str(h.before), str(h.after), _signed(h.delta)]
                    for h in r.rules[:_TOP] if h.delta]))
    tables.append(("Score distribution", ["score", "before", "after"],
                   [[b.bin, str(b.before), str(b.after)] for b in r.score_histogram]))
    return tables


def _side(outcome: Outcome) -> list[str]:
    lines = [f"{outcome.status} score {outcome.score:g}, pool {_v(outcome.pool)}, "
             f"owner {_v(outcome.owner)}, queue {_v(outcome.queue)}"]
    return lines + [f"  {st.stage}: {_v(st.outcome)}" + (f" <- {st.rule}" if st.rule else "")
                    for st in outcome.explanation]


def _sample_title(s: Sample) -> str:
    return (f"{s.lead_id}: {s.field} {_v(s.from_)} -> {_v(s.to)}"
            f"  (difference: {_v(s.difference)})")


def _sample_lines(s: Sample) -> list[str]:
    before, after = _side(s.before), _side(s.after)
    return [_sample_title(s), f"    before: {before[0]}", *["    " + x for x in before[1:]],
            f"    after: {after[0]}", *["    " + x for x in after[1:]]]


def text(r: Report) -> str:
    out = _headline(r)
    if not r.replayed:
        return "\n".join(out) + "\n"
    for title, header, rows in _tables(r):
        if not rows:
            continue
        widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=False)]
        out += ["", title]
        out += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
                for row in (header, *rows)]
    if r.dead_rules:
        out += ["", f"Dead rules (never reached by this traffic): {', '.join(r.dead_rules)}"]
    if r.samples:
        out += ["", "Samples of changed leads"]
        for s in r.samples:
            out += ["  " + line for line in _sample_lines(s)]
    return "\n".join(out) + "\n"


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|")


def markdown(r: Report) -> str:
    out = ["# Replay report", "", *[f"{line}  " for line in _headline(r)]]
    if not r.replayed:
        return "\n".join(out) + "\n"
    for title, header, rows in _tables(r):
        if not rows:
            continue
        out += ["", f"## {title}", "", "| " + " | ".join(header) + " |",
                "|" + "---|" * len(header)]
        out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    if r.dead_rules:
        out += ["", "## Dead rules", "", *[f"- `{d}`" for d in r.dead_rules]]
    if r.samples:
        out += ["", "## Samples of changed leads", ""]
        for s in r.samples:
            first, *rest = _sample_lines(s)
            out += [f"- **{_md_cell(first)}**", "", "  ```", *["  " + x for x in rest],
                    "  ```"]
    return "\n".join(out) + "\n"


# --- HTML ---------------------------------------------------------------------------------

_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}
svg{display:block;margin:.5em 0 1.5em}pre{background:#f7f7f7;padding:6px;margin:0;text-align:left}
.sample td{vertical-align:top;text-align:left}"""
_E = html.escape


def _bars(title: str, labels: Sequence[str], before: Sequence[int], after: Sequence[int],
          css: str) -> str:
    """A grouped bar chart (before grey, after blue) as inline SVG."""
    if not labels:
        return ""
    top = max(1, *before, *after)
    height, group, bar = 180, max(28, min(90, 640 // max(1, len(labels)))), 10
    width = 60 + group * len(labels)
    parts = [f'<svg class="{css}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height + 70}" role="img" aria-label="{_E(title)}">',
             f'<line x1="50" y1="{height + 10}" x2="{width}" y2="{height + 10}" '
             'stroke="#999"/>', f'<text x="0" y="20" font-size="11">{top}</text>']
    for i, label in enumerate(labels):
        x = 56 + i * group
        for j, (value, colour) in enumerate(((before[i], BEFORE), (after[i], AFTER))):
            h = round(height * value / top)
            parts.append(f'<rect class="bar" x="{x + j * (bar + 2)}" y="{height + 10 - h}" '
                         f'width="{bar}" height="{max(h, 0)}" fill="{colour}">'
                         f'<title>{_E(label)}: {"before" if j == 0 else "after"} {value}'
                         '</title></rect>')
        parts.append(f'<text x="{x}" y="{height + 24}" font-size="10" '
                     f'transform="rotate(35 {x} {height + 24})">{_E(label[:18])}</text>')
    parts.append("</svg>")
    return f"<h3>{_E(title)}</h3>" + "".join(parts)


def _heat_table(r: Report) -> str:
    cells = {(t.from_, t.to): t.count for t in r.status_matrix}
    names = sorted({k for pair in cells for k in pair if k is not None})
    top = max(cells.values(), default=1)
    rows = ["<table class=\"heat\"><tr><th>before \\ after</th>"
            + "".join(f"<th>{_E(n)}</th>" for n in names) + "</tr>"]
    for a in names:
        row = f"<tr><th>{_E(a)}</th>"
        for b in names:
            n = cells.get((a, b), 0)
            alpha = 0.08 + 0.8 * n / top if n else 0
            style = f' style="background:rgba(31,111,235,{alpha:.2f})"' if n else ""
            row += f"<td{style}>{n}</td>"
        rows.append(row + "</tr>")
    return "<h2>Status transitions</h2>" + "".join(rows) + "</table>"


def _html_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{_E(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_E(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<h2>{_E(title)}</h2><table><tr>{head}</tr>{body}</table>"


def page(r: Report) -> str:
    """The self-contained HTML page."""
    parts = ["<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             "<title>Replay report</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>Replay report</h1>", *[f"<p>{_E(line)}</p>" for line in _headline(r)]]
    if r.replayed:
        parts.append(f'<p class="legend"><span style="background:{BEFORE}"></span>before'
                     f'<span style="background:{AFTER}"></span>after</p>')
        # Leads with no pool or owner are in the tables; in a chart they would dwarf the rest.
        pools = [v for v in r.by_pool if v.key is not None][:30]
        owners = [o for o in r.by_owner if o.owner is not None][:30]
        parts.append(_bars("Leads per pool", [_v(v.key) for v in pools],
                           [v.before for v in pools], [v.after for v in pools], "chart-pool"))
        parts.append(_bars("Leads per owner", [_v(o.owner) for o in owners],
                           [o.before for o in owners], [o.after for o in owners],
                           "chart-owner"))
        bins = r.score_histogram
        parts.append(_bars("Score distribution", [b.bin for b in bins],
                           [b.before for b in bins], [b.after for b in bins], "chart-score"))
        parts.append(_heat_table(r))
        parts += [_html_table(*t) for t in _tables(r)]
        if r.dead_rules:
            parts.append("<h2>Dead rules</h2><p>" + ", ".join(
                f"<code>{_E(d)}</code>" for d in r.dead_rules) + "</p>")
        if r.samples:
            parts.append("<h2>Samples of changed leads</h2>")
            for s in r.samples:  # both decisions side by side
                cells = "".join(f"<td><pre>{_E(chr(10).join(_side(o)))}</pre></td>"
                                for o in (s.before, s.after))
                parts.append(f"<h4>{_E(_sample_title(s))}</h4><table class=\"sample\"><tr>"
                             f"<th>before</th><th>after</th></tr><tr>{cells}</tr></table>")
    parts.append("</body></html>\n")
    return "".join(parts)
