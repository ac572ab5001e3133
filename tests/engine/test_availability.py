"""Pure calendar math of pool members: working hours and local days in each rep's own zone."""

from __future__ import annotations

import datetime as dt

import pytest

from router.engine.availability import (
    PlanCache,
    chain_plan,
    effective_cap,
    in_working_hours,
    local_day,
    member_plan,
    pool_plan,
    utc_day,
)
from router.engine.ruleset import PoolSpec, RepSpec

UTC = dt.UTC
NINE_TO_FIVE = (((540, 1020),),) * 5 + ((), ())  # Mon-Fri 09:00-17:00
LUNCH_BREAK = (((480, 720), (780, 1020)),) * 5 + ((), ())  # 08-12, 13-17


def rep(rep_id: str = "r", tz: str = "UTC", hours: tuple = NINE_TO_FIVE,  # type: ignore[type-arg]
        cap: int | None = None) -> RepSpec:
    return RepSpec(id=rep_id, name=None, timezone=tz, hours=hours, weight=1, daily_cap=cap)


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def pool(pool_id: str, members: tuple[tuple[str, int], ...], *, hours: bool = True,
         cap: int | None = None, pool_cap: int | None = None, overflow: str = "unassigned",
         overflow_kind: str = "queue") -> PoolSpec:
    return PoolSpec(id=pool_id, strategy="round_robin", members=members, daily_cap=cap,
                    pool_daily_cap=pool_cap, working_hours=hours, overflow_kind=overflow_kind,
                    overflow=overflow)


class TestWorkingHours:
    def test_interval_is_half_open(self) -> None:
        r = rep()
        monday = (2026, 3, 2)
        assert not in_working_hours(r, at(*monday, 8, 59))
        assert in_working_hours(r, at(*monday, 9, 0))
        assert in_working_hours(r, at(*monday, 16, 59))
        assert not in_working_hours(r, at(*monday, 17, 0))

    def test_days_off(self) -> None:
        assert not in_working_hours(rep(), at(2026, 3, 7, 12, 0))  # Saturday

    def test_lunch_break(self) -> None:
        r = rep(hours=LUNCH_BREAK)
        assert in_working_hours(r, at(2026, 3, 2, 11, 59))
        assert not in_working_hours(r, at(2026, 3, 2, 12, 30))
        assert in_working_hours(r, at(2026, 3, 2, 13, 0))

    def test_uses_the_reps_zone(self) -> None:
        la = rep(tz="America/Los_Angeles")
        # Monday 2026-03-02 (PST, UTC-8): 16:59 UTC is 08:59 local, 17:00 UTC is 09:00.
        assert not in_working_hours(la, at(2026, 3, 2, 16, 59))
        assert in_working_hours(la, at(2026, 3, 2, 17, 0))
        # 00:30 UTC Tuesday is still Monday 16:30 in Los Angeles.
        assert in_working_hours(la, at(2026, 3, 3, 0, 30))

    def test_dst_spring_forward(self) -> None:
        la = rep(tz="America/Los_Angeles")
        # US DST starts Sunday 2026-03-08. 16:30 UTC is 08:30 PST on Friday, 09:30 PDT on Monday.
        assert not in_working_hours(la, at(2026, 3, 6, 16, 30))
        assert in_working_hours(la, at(2026, 3, 9, 16, 30))
        # Europe switches three weeks later: Berlin 09:00 is 08:00 UTC before, 07:00 UTC after.
        berlin = rep(tz="Europe/Berlin")
        assert in_working_hours(berlin, at(2026, 3, 27, 8, 0))
        assert not in_working_hours(berlin, at(2026, 3, 27, 7, 30))
        assert in_working_hours(berlin, at(2026, 3, 30, 7, 30))

    def test_dst_fall_back_repeated_hour(self) -> None:
        # A shift covering 01:00-02:00 on the night clocks go back (US: Sunday 2026-11-01) covers
        # both occurrences of that hour: 08:30 UTC (01:30 PDT) and 09:30 UTC (01:30 PST).
        night = ((), (), (), (), (), (), ((60, 120),))
        la = rep(tz="America/Los_Angeles", hours=night)
        assert in_working_hours(la, at(2026, 11, 1, 8, 30))
        assert in_working_hours(la, at(2026, 11, 1, 9, 30))
        assert not in_working_hours(la, at(2026, 11, 1, 10, 30))

    def test_zone_on_the_other_side_of_midnight(self) -> None:
        # Sunday 22:00 UTC is Monday 11:00 in Auckland (NZDT, UTC+13): a working day there.
        akl = rep(tz="Pacific/Auckland")
        assert in_working_hours(akl, at(2026, 1, 4, 22, 0))
        assert local_day(akl, at(2026, 1, 4, 22, 0)) == "2026-01-05"
        # Friday 23:00 UTC is already Saturday noon there: a day off.
        assert not in_working_hours(akl, at(2026, 1, 9, 23, 0))
        # Monday 03:00 UTC is still Sunday 17:00 in Honolulu (UTC-10).
        hnl = rep(tz="Pacific/Honolulu")
        assert local_day(hnl, at(2026, 1, 5, 3, 0)) == "2026-01-04"
        assert not in_working_hours(hnl, at(2026, 1, 5, 3, 0))

    def test_naive_now_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            in_working_hours(rep(), dt.datetime(2026, 3, 2, 12, 0))


class TestDays:
    def test_local_day_crosses_midnight_at_local_midnight(self) -> None:
        tokyo = rep(tz="Asia/Tokyo")  # UTC+9
        assert local_day(tokyo, at(2026, 3, 2, 14, 59)) == "2026-03-02"
        assert local_day(tokyo, at(2026, 3, 2, 15, 0)) == "2026-03-03"

    def test_local_day_on_dst_day(self) -> None:
        la = rep(tz="America/Los_Angeles")
        # 07:59 UTC on 2026-03-09 is 00:59 PDT: the new day started an hour earlier in UTC.
        assert local_day(la, at(2026, 3, 9, 6, 59)) == "2026-03-08"
        assert local_day(la, at(2026, 3, 9, 7, 0)) == "2026-03-09"

    def test_unknown_rep_counts_in_utc(self) -> None:
        assert local_day(None, at(2026, 3, 2, 23, 59)) == "2026-03-02"
        assert utc_day(dt.datetime(2026, 3, 3, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=5)))) \
            == "2026-03-02"


class TestPlans:
    def test_effective_cap_is_the_tighter(self) -> None:
        assert effective_cap(None, None) is None
        assert effective_cap(5, None) == 5
        assert effective_cap(None, 7) == 7
        assert effective_cap(5, 7) == 5
        assert effective_cap(9, 7) == 7

    def test_member_plan(self) -> None:
        r = rep(tz="Asia/Tokyo", cap=4)
        p = pool("p", (("r", 3),), cap=10)
        m = member_plan(p, r, 3, at(2026, 3, 2, 15, 30))  # Tuesday 00:30 in Tokyo
        assert (m.rep, m.weight, m.in_hours, m.day, m.cap) == ("r", 3, False, "2026-03-03", 4)

    def test_pool_ignoring_hours_counts_everyone_in_hours(self) -> None:
        p = pool("p", (("r", 1),), hours=False)
        m = member_plan(p, rep(), 1, at(2026, 3, 7, 3, 0))  # Saturday night
        assert m.in_hours and m.cap == -1

    def test_pool_plan_caps_and_day(self) -> None:
        reps = {"a": rep("a"), "b": rep("b", cap=2)}
        plan = pool_plan(pool("p", (("a", 2), ("b", 1)), pool_cap=30), reps, at(2026, 3, 2, 10))
        assert plan.pool_cap == 30 and plan.day == "2026-03-02"
        assert [(m.rep, m.weight, m.cap) for m in plan.members] == [("a", 2, -1), ("b", 1, 2)]

    def test_chain_walks_overflow_to_the_final_queue(self) -> None:
        reps = {"a": rep("a"), "b": rep("b")}
        pools = {
            "ent": pool("ent", (("a", 1),), overflow="mm", overflow_kind="pool"),
            "mm": pool("mm", (("b", 1),), overflow="triage", overflow_kind="queue"),
        }
        plans, queue = chain_plan(pools, reps, "ent", at(2026, 3, 2, 10))
        assert [p.id for p in plans] == ["ent", "mm"] and queue == "triage"
        plans, queue = chain_plan(pools, reps, "mm", at(2026, 3, 2, 10))
        assert [p.id for p in plans] == ["mm"] and queue == "triage"

    def test_chain_survives_a_loop_in_a_hand_built_ruleset(self) -> None:
        pools = {"x": pool("x", (), overflow="y", overflow_kind="pool"),
                 "y": pool("y", (), overflow="x", overflow_kind="pool")}
        plans, queue = chain_plan(pools, {}, "x", at(2026, 3, 2, 10))
        assert [p.id for p in plans] == ["x", "y"] and queue == "unassigned"

    def test_plan_cache_is_per_minute(self) -> None:
        class FakeRuleset:
            pools = {"p": pool("p", (("a", 1),))}
            reps = {"a": rep("a")}

        cache = PlanCache(FakeRuleset())  # type: ignore[arg-type]
        first, _ = cache.chain("p", at(2026, 3, 2, 8, 59, 10))
        again, _ = cache.chain("p", at(2026, 3, 2, 8, 59, 50))
        later, _ = cache.chain("p", at(2026, 3, 2, 9, 0, 0))
        assert first is again
        assert not first[0].members[0].in_hours and later[0].members[0].in_hours

    def test_plan_cache_gives_what_chain_plan_gives_at_every_minute(self) -> None:
        """The cache keeps a plan across minutes until hours, a local day or the UTC day change:
        minute by minute over a week spanning a DST change in New York, with zones off the
        whole hour (Kolkata +05:30, Kathmandu +05:45, Lord Howe's half-hour DST), a rep with
        no hours and a pool ignoring hours, it must equal chain_plan at that minute."""
        every_day = (((480, 720), (780, 1020)),) * 7
        reps = {"ny": rep("ny", "America/New_York", every_day, cap=3),
                "in": rep("in", "Asia/Kolkata", NINE_TO_FIVE),
                "np": rep("np", "Asia/Kathmandu", (((555, 1005),),) * 7),
                "lh": rep("lh", "Australia/Lord_Howe", every_day),
                "any": rep("any", "Europe/Paris", ((),) * 7)}
        pools = {"p": pool("p", (("ny", 1), ("in", 2), ("np", 1), ("any", 1)),
                           overflow="q", overflow_kind="pool"),
                 "q": pool("q", (("lh", 1),), overflow="r", overflow_kind="pool"),
                 "r": pool("r", (("lh", 1), ("ny", 1)), hours=False, pool_cap=5),
                 **{r: pool(r, ((r, 1),)) for r in reps}}  # each zone alone too

        class FakeRuleset:
            pass

        ruleset = FakeRuleset()
        ruleset.pools, ruleset.reps = pools, reps  # type: ignore[attr-defined]
        cache = PlanCache(ruleset)  # type: ignore[arg-type]
        computed = 0
        last = None
        for start in (at(2026, 3, 5, 0, 0), at(2026, 4, 1, 0, 0)):  # NY DST 03-08; LH 04-05
            for minute in range(7 * 1440):
                now = start + dt.timedelta(minutes=minute, seconds=minute % 60)
                for pool_id in ("p", *reps):
                    got = cache.chain(pool_id, now)
                    assert got == chain_plan(pools, reps, pool_id, now.replace(second=0))
                computed += got is not last
                last = got
        assert computed < 2 * 7 * 1440 / 10  # kept across minutes, not one plan a minute
