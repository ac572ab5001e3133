"""The console's SVG charts (router/api/console/_charts.py): well-formed SVG, sizes that
follow the values, every label escaped, and a line of text when there is nothing to draw."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from router.api.console._charts import bars, histogram, nice_max, series

SVG = "{http://www.w3.org/2000/svg}"


def _svg(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # raises on anything that is not well-formed XML


def test_nice_max_rounds_up_to_a_readable_axis_top() -> None:
    assert [nice_max(v) for v in (0, 1, 3, 7, 12, 180, 2400)] == [1, 1, 5, 10, 20, 200, 2500]


def test_bars_scale_with_their_values_and_escape_labels() -> None:
    svg = _svg(bars([("<script>alert(1)</script>", 10), ("b & c", 5)], label="Pools"))
    widths = [float(r.get("width", 0)) for r in svg.iter(f"{SVG}rect")]
    assert len(widths) == 2 and widths[0] == 2 * widths[1]
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "<script>alert(1)</script>" in texts and "b & c" in texts  # as text, not markup
    assert "<script>" not in str(bars([("<script>", 1)], label="x"))


def test_histogram_counts_values_into_their_bins() -> None:
    svg = _svg(histogram([1, 2, 70, 4000, 99999], label="TTA", edges=(0, 60, 3600),
                         edge_labels=("<1m", "1-60m", ">1h"), marks={"median": 70}))
    titles = [t.text for r in svg.iter(f"{SVG}rect") for t in r.iter(f"{SVG}title")]
    assert titles == ["<1m: 2", "1-60m: 1", ">1h: 2"]
    heights = [float(r.get("height", 0)) for r in svg.iter(f"{SVG}rect")]
    assert heights[0] == heights[2] == 2 * heights[1]
    assert any(t.text == "median" for t in svg.iter(f"{SVG}text"))


def test_series_draws_one_line_per_name() -> None:
    svg = _svg(series({"rr": [0, 2, 1], "emea": [1, 0, 0]}, label="Breaches",
                      x_labels=["Mar 01", "Mar 02", "Mar 03"]))
    assert len(list(svg.iter(f"{SVG}polyline"))) == 2
    points = [c.find(f"{SVG}title").text for c in svg.iter(f"{SVG}circle")]  # type: ignore[union-attr]
    assert "rr Mar 02: 2" in points and "emea Mar 01: 1" in points


def test_nothing_to_draw_is_said_in_words() -> None:
    for empty in (bars([], label="Recycled"), series({}, label="Recycled", x_labels=[]),
                  series({"a": [0, 0]}, label="Recycled", x_labels=["1", "2"]),
                  histogram([], label="Recycled", edges=(0,), edge_labels=("all",))):
        assert "Recycled: nothing in this period" in str(empty) and "<svg" not in str(empty)
