"""router/services/lists.py helpers without Redis: next working hours, the import parser, the
cursor seal (the service over real Valkey and HTTP: tests/api/test_lists*.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from router.engine.ruleset import RepSpec
from router.services import _lists_cursor as cur
from router.services._lists_accounts import parse_accounts
from router.services.lists import next_working_hours
from router.services.lists_model import BadCursor, ImportRejected, UnsupportedImport

NINE_TO_FIVE = tuple(((540, 1020),) if day < 5 else () for day in range(7))


def _rep(hours: tuple[tuple[tuple[int, int], ...], ...], tz: str = "America/New_York") -> RepSpec:
    return RepSpec(id="ny", name=None, timezone=tz, hours=hours, weight=1, daily_cap=None)


def test_next_working_hours_in_the_reps_zone() -> None:
    rep = _rep(NINE_TO_FIVE)
    friday_evening = dt.datetime(2026, 12, 4, 23, 0, tzinfo=dt.UTC)  # 18:00 in New York
    assert next_working_hours(rep, friday_evening) == dt.datetime(2026, 12, 7, 14, 0,
                                                                  tzinfo=dt.UTC)  # Mon 09:00
    monday_early = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)  # 07:00
    assert next_working_hours(rep, monday_early) == dt.datetime(2026, 12, 7, 14, 0,
                                                                tzinfo=dt.UTC)
    assert next_working_hours(_rep(tuple(() for _ in range(7))), monday_early) is None


def test_parse_accounts_csv_and_json_lines() -> None:
    reps = {"r1": 1, "r2": 2}
    rows = parse_accounts(b"\xef\xbb\xbfOwner,Domain\nr1,ACME.example\n", "text/csv; charset=utf-8",
                          reps)
    assert [(r.domain, r.owner) for r in rows] == [("acme.example", "r1")]
    rows = parse_accounts(b'{"domain": "b.example", "owner": "r2"}\n\n', "application/jsonl",
                          reps)
    assert [(r.domain, r.owner) for r in rows] == [("b.example", "r2")]
    with pytest.raises(ImportRejected) as bad:
        parse_accounts(b'{"domain": "b.example", "owner": "r9"}\n{"domain": "x"}\n',
                       "application/x-ndjson", reps)
    assert [(e.line, bool(e.fix)) for e in bad.value.errors] == [(1, True), (2, True)]
    with pytest.raises(UnsupportedImport):
        parse_accounts(b"", "application/json", reps)


def test_cursor_seal_refuses_what_it_did_not_make() -> None:
    key, bound = b"k" * 32, cur.digest("leads", {"status": "mql"})
    token = cur.seal(key, "leads", bound, ["pos"])
    assert cur.open_cursor(key, token, "leads", bound) == ["pos"]
    for bad_key, kind, other in ((b"x" * 32, "leads", bound), (key, "queue", bound),
                                 (key, "leads", cur.digest("leads", {}))):
        with pytest.raises(BadCursor):
            cur.open_cursor(bad_key, token, kind, other)
    head, _, tail = token.partition(".")
    forged = cur.seal(b"x" * 32, "leads", bound, ["elsewhere"]).partition(".")[0] + "." + tail
    for garbled in ("", "!!", forged, head, token + "A"):
        with pytest.raises(BadCursor):
            cur.open_cursor(key, garbled, "leads", bound)
