"""The rule files' value syntax (router/engine/schema.py): durations and working hours. How a
bad value is reported with its file and line: tests/engine/test_loader.py."""

from __future__ import annotations

import pytest

from router.engine.schema import parse_duration, parse_working_hours

NINE_TO_FIVE = ((9 * 60, 17 * 60),)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("5m", 300), ("4h", 14400), ("2d", 172800), ("1h30m", 5400),
    ("1d 2h 3m 4s", 93784), (" 90m ", 5400), (3600, 3600), (45, 45),
    ("3600", 3600), (" 45 ", 45)])
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("5x", "'5x' is not a duration"), ("", "'' is not a duration"),
    ("m5", "'m5' is not a duration"), ("5m4h", "'5m4h' is not a duration"),
    ("0m", "a duration must be positive"), (0, "a duration must be positive"),
    ("0", "a duration must be positive"),
    (-5, "a duration must be positive")])
def test_bad_durations(text: str | int, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


def test_working_hours_per_weekday_monday_first() -> None:
    week = parse_working_hours({"mon-fri": "09:00-17:00"})
    assert week == (NINE_TO_FIVE,) * 5 + ((), ())
    split = parse_working_hours({"sat": ["13:00-17:00", "08:00-12:00"], "sun": "00:00-24:00"})
    assert split[5] == ((480, 720), (780, 1020))  # sorted
    assert split[6] == ((0, 1440),)
    assert split[:5] == ((),) * 5


def test_day_lists_and_ranges_that_wrap_the_week() -> None:
    week = parse_working_hours({"Fri-Mon": "9:00-17:00", "wed, thu": "10:00-11:00"})
    assert [bool(day) for day in week] == [True, False, True, True, True, True, True]
    assert week[0] == week[4] == week[5] == week[6] == NINE_TO_FIVE
    assert week[2] == week[3] == ((600, 660),)


@pytest.mark.parametrize(("spec", "message"), [
    ({"mon-fri": "9-17"}, "'9-17' is not a time range like 09:00-17:00"),
    ({"funday": "09:00-17:00"}, "unknown day 'funday'"),
    ({"mon-funday": "09:00-17:00"}, "unknown day range 'mon-funday'"),
    ({"mon": "17:00-09:00"}, "'17:00-09:00' ends before it starts (split overnight shifts "
     "into two days)"),
    ({"mon": "09:00-09:00"}, "'09:00-09:00' ends before it starts (split overnight shifts "
     "into two days)"),
    ({"mon": "09:00-25:00"}, "'09:00-25:00' is not a valid time range"),
    ({"mon": "09:60-10:00"}, "'09:60-10:00' is not a valid time range"),
    ({"mon": "24:00-24:30"}, "'24:00-24:30' is not a valid time range"),
])
def test_bad_working_hours(spec: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_working_hours(spec)  # type: ignore[arg-type]
    assert str(info.value) == message
