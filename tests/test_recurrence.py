import random
from datetime import date, datetime, time, timedelta

import pytest
from dateutil import rrule as rr
from dateutil import tz as dtz

from tests.conftest import no_database
from webapp.rules.clock import local_to_utc, utc_to_local_naive
from webapp.rules.recurrence import (
    LAST_WEEK,
    PAST_SLOT_MESSAGE,
    Schedule,
    ScheduleError,
    ScheduleKind,
    moved_by_dst,
    next_run,
    next_runs,
    pick_slot_minute,
    slot_in_past,
)

pytestmark = no_database

K = ScheduleKind
NY = "America/New_York"
LONDON = "Europe/London"
START = date(2026, 1, 1)


def sched(kind, tz=NY, start=START, **fields):
    return Schedule(kind=kind, tz=tz, start_date=start, **fields)


def at(*args):
    return datetime(*args)


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,fields,message",
    [
        (K.DAYS_OF_WEEK, {"tz": "Mars/Olympus", "time": time(9), "weekdays": {0}}, "unknown time zone"),
        (K.DAYS_OF_WEEK, {"tz": "", "time": time(9), "weekdays": {0}}, "unknown time zone"),
        ("hourly", {}, "unknown schedule kind"),
        (K.TIMES_PER_DAY, {"time": time(9), "times_per_day": 5}, "times per day must be one of"),
        (K.TIMES_PER_DAY, {"time": time(9)}, "times per day must be one of"),
        (K.TIMES_PER_DAY, {"times_per_day": 2}, "a time of day is required"),
        (K.DAYS_OF_WEEK, {"time": time(9, 0, 30), "weekdays": {0}}, "whole minutes"),
        (K.DAYS_OF_WEEK, {"time": time(9), "weekdays": set()}, "at least one day"),
        (K.DAYS_OF_WEEK, {"time": time(9)}, "at least one day"),
        (K.DAYS_OF_WEEK, {"time": time(9), "weekdays": {1, 7}}, "days of the week run from"),
        (K.DAY_OF_MONTH, {"time": time(9), "day_of_month": 0}, "between 1 and 31"),
        (K.DAY_OF_MONTH, {"time": time(9), "day_of_month": 32}, "between 1 and 31"),
        (K.WEEKDAY_OF_MONTH, {"time": time(9), "week_of_month": 5, "weekday": 0}, "first to fourth"),
        (K.WEEKDAY_OF_MONTH, {"time": time(9), "week_of_month": 0, "weekday": 0}, "first to fourth"),
        (K.WEEKDAY_OF_MONTH, {"time": time(9), "week_of_month": 1, "weekday": 7}, "day of the week"),
        (K.HOURLY_SLOT, {"hour": 24, "slot": 0, "minute": 3}, "hour must be between"),
        (K.HOURLY_SLOT, {"hour": 9, "slot": 4, "minute": 50}, "the slot must be"),
        (K.HOURLY_SLOT, {"hour": 9, "slot": 1, "minute": 30}, "between 15 and 29"),
        (K.HOURLY_SLOT, {"hour": 9, "slot": 2, "minute": 29}, "between 30 and 44"),
        (K.HOURLY_SLOT, {"hour": 9, "slot": 0}, "between 0 and 14"),
        (K.ONCE, {}, "a local date and time is required"),
        (K.ONCE, {"once_at": at(2026, 5, 1, 9).replace(tzinfo=dtz.UTC)}, "a local date and time"),
    ],
)
def test_bad_values_are_refused(kind, fields, message):
    with pytest.raises(ScheduleError, match=message):
        sched(kind, **fields)


def test_start_date_must_be_a_plain_date():
    with pytest.raises(ScheduleError, match="start date"):
        sched(K.ONCE, start=at(2026, 1, 1), once_at=at(2026, 5, 1, 9))


@pytest.mark.parametrize(
    "start,once_at,message",
    [
        (date(9999, 12, 31), at(9999, 12, 31, 23, 30), "the start date 9999-12-31 is after Dec 31, 2100"),
        (START, at(9999, 12, 31, 23, 30), "the date 9999-12-31 is after Dec 31, 2100"),
        (START, at(2101, 1, 1), "the last day Conveyor can plan"),
    ],
)
def test_dates_after_2100_are_refused_rather_than_overflowing(start, once_at, message):
    with pytest.raises(ScheduleError, match=message):
        sched(K.ONCE, start=start, once_at=once_at)


def test_the_last_plannable_day_still_plans():
    s = sched(K.ONCE, once_at=at(2100, 12, 31, 23, 59))
    assert next_run(s, at(2026, 1, 1)) == at(2101, 1, 1, 4, 59)


def test_schedule_error_is_a_value_error():
    assert issubclass(ScheduleError, ValueError)


def test_kind_and_weekdays_are_normalised():
    s = Schedule(kind="days_of_week", tz=NY, start_date=START, time=time(9), weekdays=[0, 2, 2])
    assert s.kind is K.DAYS_OF_WEEK
    assert s.weekdays == frozenset({0, 2})
    hash(s)


def test_aware_instants_are_refused():
    s = sched(K.HOURLY_SLOT, hour=9, slot=0, minute=5)
    with pytest.raises(ValueError, match="naive UTC"):
        next_run(s, at(2026, 5, 1).replace(tzinfo=dtz.UTC))


# -- each kind ------------------------------------------------------------------------------


def test_once():
    s = sched(K.ONCE, once_at=at(2026, 5, 1, 9, 30))  # EDT: UTC-4
    assert next_run(s, at(2026, 1, 1)) == at(2026, 5, 1, 13, 30)
    assert next_run(s, at(2026, 5, 1, 13, 29, 59)) == at(2026, 5, 1, 13, 30)
    assert next_run(s, at(2026, 5, 1, 13, 30)) is None  # strictly after
    assert next_run(s, at(2027, 1, 1)) is None
    assert next_runs(s, at(2026, 1, 1), 10) == [at(2026, 5, 1, 13, 30)]


def test_once_before_the_start_date_never_runs():
    s = sched(K.ONCE, start=date(2026, 6, 1), once_at=at(2026, 5, 1, 9, 30))
    assert next_run(s, at(2026, 1, 1)) is None


def test_times_per_day_are_evenly_spaced_from_the_time():
    s = sched(K.TIMES_PER_DAY, tz="UTC", start=date(2026, 2, 1), time=time(7, 15), times_per_day=3)
    assert next_runs(s, at(2026, 1, 1), 5) == [
        at(2026, 2, 1, 7, 15),
        at(2026, 2, 1, 15, 15),
        at(2026, 2, 1, 23, 15),
        at(2026, 2, 2, 7, 15),
        at(2026, 2, 2, 15, 15),
    ]


def test_times_per_day_start_at_the_time_on_the_start_date():
    s = sched(K.TIMES_PER_DAY, tz="UTC", start=date(2026, 2, 1), time=time(18), times_per_day=2)
    assert next_runs(s, at(2026, 1, 1), 3) == [at(2026, 2, 1, 18), at(2026, 2, 2, 6), at(2026, 2, 2, 18)]


def test_days_of_week():
    s = sched(K.DAYS_OF_WEEK, time=time(9), weekdays={0, 2, 4})  # Mon, Wed, Fri at 09:00 EST
    # 2026-01-05 is a Monday
    assert next_runs(s, at(2026, 1, 5, 14), 4) == [
        at(2026, 1, 7, 14),
        at(2026, 1, 9, 14),
        at(2026, 1, 12, 14),
        at(2026, 1, 14, 14),
    ]
    assert next_run(s, at(2026, 1, 5, 13, 59)) == at(2026, 1, 5, 14)


def test_the_31st_skips_short_months():
    s = sched(K.DAY_OF_MONTH, tz="UTC", time=time(6), day_of_month=31)
    assert [r.date() for r in next_runs(s, at(2026, 1, 1), 7)] == [
        date(2026, 1, 31),
        date(2026, 3, 31),
        date(2026, 5, 31),
        date(2026, 7, 31),
        date(2026, 8, 31),
        date(2026, 10, 31),
        date(2026, 12, 31),
    ]


def test_the_30th_skips_february():
    s = sched(K.DAY_OF_MONTH, tz="UTC", time=time(6), day_of_month=30)
    assert [r.date() for r in next_runs(s, at(2026, 1, 1), 3)] == [
        date(2026, 1, 30),
        date(2026, 3, 30),
        date(2026, 4, 30),
    ]


def test_the_29th_runs_in_february_only_in_leap_years():
    s = sched(K.DAY_OF_MONTH, tz="UTC", time=time(6), day_of_month=29)
    assert [r.date() for r in next_runs(s, at(2027, 1, 30), 2)] == [date(2027, 3, 29), date(2027, 4, 29)]
    assert [r.date() for r in next_runs(s, at(2028, 1, 30), 2)] == [date(2028, 2, 29), date(2028, 3, 29)]
    assert next_run(s, at(2100, 1, 30)).date() == date(2100, 3, 29)  # 2100 is not a leap year


@pytest.mark.parametrize(
    "week,weekday,expected",
    [
        (LAST_WEEK, 4, [date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27), date(2026, 4, 24)]),
        (1, 0, [date(2026, 1, 5), date(2026, 2, 2), date(2026, 3, 2), date(2026, 4, 6)]),
        (2, 1, [date(2026, 1, 13), date(2026, 2, 10), date(2026, 3, 10), date(2026, 4, 14)]),
        (4, 6, [date(2026, 1, 25), date(2026, 2, 22), date(2026, 3, 22), date(2026, 4, 26)]),
        (LAST_WEEK, 6, [date(2026, 1, 25), date(2026, 2, 22), date(2026, 3, 29), date(2026, 4, 26)]),
    ],
)
def test_weekday_of_month(week, weekday, expected):
    s = sched(K.WEEKDAY_OF_MONTH, tz="UTC", time=time(12), week_of_month=week, weekday=weekday)
    assert [r.date() for r in next_runs(s, at(2026, 1, 1), 4)] == expected


def test_last_weekday_in_a_leap_february():
    s = sched(K.WEEKDAY_OF_MONTH, tz="UTC", time=time(12), week_of_month=LAST_WEEK, weekday=1)
    assert next_run(s, at(2028, 2, 1)).date() == date(2028, 2, 29)  # Tuesday 29 February


def test_hourly_slot_runs_once_a_day_at_the_picked_minute():
    s = sched(K.HOURLY_SLOT, tz=LONDON, hour=14, slot=2, minute=37)
    assert next_runs(s, at(2026, 6, 1, 13, 37), 2) == [at(2026, 6, 2, 13, 37), at(2026, 6, 3, 13, 37)]
    assert next_run(s, at(2026, 1, 1)) == at(2026, 1, 1, 14, 37)  # GMT in winter


def test_nothing_runs_before_the_start_date():
    s = sched(K.DAYS_OF_WEEK, start=date(2026, 9, 10), time=time(9), weekdays={0})
    assert next_run(s, at(2026, 1, 1)) == at(2026, 9, 14, 13)


def test_next_runs_edge_counts():
    s = sched(K.HOURLY_SLOT, hour=9, slot=0, minute=5)
    assert next_runs(s, at(2026, 1, 1), 0) == []
    with pytest.raises(ValueError):
        next_runs(s, at(2026, 1, 1), -1)


# -- DST ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tz,day,wall,utc",
    [
        (NY, date(2026, 3, 8), time(2, 30), at(2026, 3, 8, 7)),  # 02:30 does not exist → 03:00 EDT
        (NY, date(2026, 3, 8), time(2, 0), at(2026, 3, 8, 7)),
        (NY, date(2026, 3, 8), time(3, 0), at(2026, 3, 8, 7)),
        (NY, date(2026, 11, 1), time(1, 30), at(2026, 11, 1, 5, 30)),  # the first 01:30 (EDT)
        (LONDON, date(2026, 3, 29), time(1, 30), at(2026, 3, 29, 1)),  # → 02:00 BST
        (LONDON, date(2026, 10, 25), time(1, 30), at(2026, 10, 25, 0, 30)),  # the first 01:30 (BST)
    ],
)
def test_dst_days_in_every_kind(tz, day, wall, utc):
    kinds = [
        sched(K.ONCE, tz=tz, once_at=datetime.combine(day, wall)),
        sched(K.TIMES_PER_DAY, tz=tz, time=wall, times_per_day=1),
        sched(K.DAYS_OF_WEEK, tz=tz, time=wall, weekdays={day.weekday()}),
        sched(K.DAY_OF_MONTH, tz=tz, time=wall, day_of_month=day.day),
        sched(
            K.WEEKDAY_OF_MONTH,
            tz=tz,
            time=wall,
            weekday=day.weekday(),
            week_of_month=LAST_WEEK if day.day > 28 else (day.day - 1) // 7 + 1,
        ),
        sched(K.HOURLY_SLOT, tz=tz, hour=wall.hour, slot=wall.minute // 15, minute=wall.minute),
    ]
    midnight = local_to_utc(datetime.combine(day, time()), tz)
    for s in kinds:
        assert next_run(s, midnight) == utc, s
        assert next_run(s, utc - timedelta(seconds=1)) == utc, s
        assert next_run(s, utc) != utc, s


def test_spring_forward_new_york():
    s = sched(K.DAYS_OF_WEEK, time=time(2, 30), weekdays=set(range(7)))
    runs = next_runs(s, at(2026, 3, 7), 3)
    assert runs == [at(2026, 3, 7, 7, 30), at(2026, 3, 8, 7), at(2026, 3, 9, 6, 30)]
    local = [utc_to_local_naive(r, NY) for r in runs]
    assert local == [at(2026, 3, 7, 2, 30), at(2026, 3, 8, 3), at(2026, 3, 9, 2, 30)]
    assert [moved_by_dst(s, r) for r in runs] == [False, True, False]


def test_fall_back_new_york_runs_once():
    s = sched(K.HOURLY_SLOT, hour=1, slot=2, minute=30)
    runs = next_runs(s, at(2026, 10, 31), 3)
    assert runs == [at(2026, 10, 31, 5, 30), at(2026, 11, 1, 5, 30), at(2026, 11, 2, 6, 30)]
    # between the two 01:30s the next run is tomorrow's
    assert next_run(s, at(2026, 11, 1, 5, 30)) == at(2026, 11, 2, 6, 30)
    assert not any(moved_by_dst(s, r) for r in runs)


def test_spring_forward_london_last_sunday():
    s = sched(K.WEEKDAY_OF_MONTH, tz=LONDON, time=time(1, 15), week_of_month=LAST_WEEK, weekday=6)
    runs = next_runs(s, at(2026, 3, 1), 2)
    assert runs == [at(2026, 3, 29, 1), at(2026, 4, 26, 0, 15)]
    assert utc_to_local_naive(runs[0], LONDON) == at(2026, 3, 29, 2)
    assert [moved_by_dst(s, r) for r in runs] == [True, False]


def test_fall_back_london_last_sunday():
    s = sched(K.WEEKDAY_OF_MONTH, tz=LONDON, time=time(1, 15), week_of_month=LAST_WEEK, weekday=6)
    assert next_runs(s, at(2026, 10, 1), 2) == [at(2026, 10, 25, 0, 15), at(2026, 11, 29, 1, 15)]


def test_hourly_times_per_day_across_spring_forward_new_york():
    s = sched(K.TIMES_PER_DAY, time=time(0, 0), times_per_day=24)
    runs = next_runs(s, at(2026, 3, 8, 5) - timedelta(seconds=1), 4)  # from 00:00 EST
    # 02:00 is skipped over: it lands on 03:00 EDT, which is a run of its own, so it runs once
    assert [utc_to_local_naive(r, NY) for r in runs] == [
        at(2026, 3, 8, 0),
        at(2026, 3, 8, 1),
        at(2026, 3, 8, 3),
        at(2026, 3, 8, 4),
    ]
    assert not any(moved_by_dst(s, r) for r in runs)
    day = [utc_to_local_naive(r, NY) for r in next_runs(s, at(2026, 3, 8), 40)]
    assert sum(r.date() == date(2026, 3, 8) for r in day) == 23  # a 23-hour day


def test_hourly_times_per_day_across_spring_forward_with_half_past():
    s = sched(K.TIMES_PER_DAY, time=time(0, 30), times_per_day=24)
    runs = next_runs(s, at(2026, 3, 8, 5), 4)
    assert [utc_to_local_naive(r, NY) for r in runs] == [
        at(2026, 3, 8, 0, 30),
        at(2026, 3, 8, 1, 30),
        at(2026, 3, 8, 3),
        at(2026, 3, 8, 3, 30),
    ]
    assert [moved_by_dst(s, r) for r in runs] == [False, False, True, False]


def test_hourly_times_per_day_across_fall_back_london():
    s = sched(K.TIMES_PER_DAY, tz=LONDON, time=time(0, 0), times_per_day=24)
    runs = next_runs(s, at(2026, 10, 24, 23) - timedelta(seconds=1), 4)  # from 00:00 BST
    # 24 wall-clock times on a 25-hour day: 01:00 runs once (BST), none in the repeated GMT hour
    assert runs == [at(2026, 10, 24, 23), at(2026, 10, 25, 0), at(2026, 10, 25, 2), at(2026, 10, 25, 3)]


def test_six_hourly_stays_on_the_wall_clock_across_dst():
    s = sched(K.TIMES_PER_DAY, time=time(5), times_per_day=4)
    local = [utc_to_local_naive(r, NY) for r in next_runs(s, at(2026, 3, 7, 5), 12)]
    assert {r.hour for r in local} == {5, 11, 17, 23}
    assert local[:6] == [at(2026, 3, 7, h) for h in (5, 11, 17, 23)] + [at(2026, 3, 8, 5), at(2026, 3, 8, 11)]


def test_once_in_the_gap_is_marked_moved():
    s = sched(K.ONCE, once_at=at(2026, 3, 8, 2, 30))
    assert next_run(s, at(2026, 3, 1)) == at(2026, 3, 8, 7)
    assert moved_by_dst(s, at(2026, 3, 8, 7))
    assert not moved_by_dst(s, at(2026, 3, 8, 8))
    odd = sched(K.ONCE, once_at=at(2026, 3, 8, 2, 30, 17, 250000))  # seconds and microseconds too
    assert next_run(odd, at(2026, 3, 1)) == at(2026, 3, 8, 7)
    assert local_to_utc(at(2026, 3, 8, 2, 59, 59, 999999), NY) == at(2026, 3, 8, 7)


def test_a_campaign_launch_and_a_schedule_share_the_dst_rule():
    # the spring-forward gap: 02:30 does not exist, both run at 03:00 EDT (the end of the gap)
    gap = at(2027, 3, 14, 2, 30)
    assert local_to_utc(gap, NY) == at(2027, 3, 14, 7)
    assert next_run(sched(K.ONCE, once_at=gap), at(2027, 3, 1)) == at(2027, 3, 14, 7)
    # the fall-back hour: 01:30 happens twice, both take the first (EDT)
    twice = at(2027, 11, 7, 1, 30)
    assert local_to_utc(twice, NY) == at(2027, 11, 7, 5, 30)
    assert next_run(sched(K.ONCE, once_at=twice), at(2027, 11, 1)) == at(2027, 11, 7, 5, 30)


def test_local_to_utc_and_utc_to_local_naive():
    assert local_to_utc(at(2026, 7, 1, 12), NY) == at(2026, 7, 1, 16)
    first = at(2026, 11, 1, 5, 30)
    assert local_to_utc(datetime(2026, 11, 1, 1, 30, fold=1), NY) == first  # whatever fold
    local = utc_to_local_naive(at(2026, 11, 1, 6, 30), NY)
    assert (local, local.fold) == (at(2026, 11, 1, 1, 30), 1)
    assert local_to_utc(at(2026, 3, 29, 1, 59), LONDON) == at(2026, 3, 29, 1)


# -- hourly slots ---------------------------------------------------------------------------


def test_past_slot_message():
    assert PAST_SLOT_MESSAGE == "The time selected occurs in the past"


@pytest.mark.parametrize(
    "hour,slot,now,past",
    [
        (14, 2, at(2026, 5, 1, 14, 29, 59), False),  # slot 30-44 not started yet
        (14, 2, at(2026, 5, 1, 14, 30), True),  # starts now: overlaps
        (14, 2, at(2026, 5, 1, 14, 44, 59), True),  # inside
        (14, 2, at(2026, 5, 1, 14, 45), True),  # over
        (14, 0, at(2026, 5, 1, 9, 0), False),
        (9, 3, at(2026, 5, 1, 14, 0), True),
        (0, 0, at(2026, 5, 1, 0, 0), True),
        (23, 3, at(2026, 5, 1, 23, 44), False),
    ],
)
def test_slot_in_past(hour, slot, now, past):
    assert slot_in_past(hour, slot, now) is past
    assert slot_in_past(hour, slot, now.replace(tzinfo=dtz.gettz(NY))) is past


def test_slot_in_past_refuses_bad_slots():
    with pytest.raises(ScheduleError):
        slot_in_past(9, 4, at(2026, 5, 1))
    with pytest.raises(ScheduleError):
        slot_in_past(24, 0, at(2026, 5, 1))


@pytest.mark.parametrize("slot", range(4))
def test_pick_slot_minute_stays_in_the_slot(slot):
    rng = random.Random(slot)
    picked = {pick_slot_minute(slot, rng) for _ in range(500)}
    assert picked == set(range(slot * 15, slot * 15 + 15))
    assert pick_slot_minute(slot) in picked
    sched(K.HOURLY_SLOT, hour=3, slot=slot, minute=pick_slot_minute(slot, rng))


def test_pick_slot_minute_refuses_bad_slots():
    with pytest.raises(ScheduleError):
        pick_slot_minute(4)


# -- property tests against dateutil's rrule ------------------------------------------------
# The oracle lists local wall-clock occurrences with rrule, then applies the DST rules with
# dateutil.tz (an implementation independent of zoneinfo): a wall time in a spring-forward gap
# runs at the end of the gap; a repeated wall time runs at its first occurrence.

ZONE_TRANSITIONS = {
    NY: ["2025-03-09", "2025-11-02", "2026-03-08", "2026-11-01", "2027-03-14", "2027-11-07"],
    LONDON: ["2025-03-30", "2025-10-26", "2026-03-29", "2026-10-25", "2027-03-28", "2027-10-31"],
    "Australia/Sydney": ["2026-04-05", "2026-10-04"],
    "Australia/Lord_Howe": ["2026-04-05", "2026-10-04"],  # half-hour shift
    "America/Santiago": ["2026-04-05", "2026-09-06"],  # changes at midnight
    "Asia/Kolkata": ["2026-06-01"],  # no DST
}


def oracle_rule(s):
    """The schedule as an rrule of local wall-clock times (None: never runs)."""
    start = datetime.combine(s.start_date, time())
    if s.kind is K.ONCE:
        if s.once_at.date() < s.start_date:
            return None
        return rr.rrule(rr.DAILY, count=1, dtstart=s.once_at)
    if s.kind is K.TIMES_PER_DAY:
        return rr.rrule(
            rr.HOURLY,
            interval=24 // s.times_per_day,
            dtstart=datetime.combine(s.start_date, s.time),
            cache=True,
        )
    if s.kind is K.HOURLY_SLOT:
        hour, minute = s.hour, s.minute
    else:
        hour, minute = s.time.hour, s.time.minute
    common = {"byhour": hour, "byminute": minute, "bysecond": 0, "dtstart": start, "cache": True}
    if s.kind is K.DAYS_OF_WEEK:
        return rr.rrule(rr.WEEKLY, byweekday=sorted(s.weekdays), **common)
    if s.kind is K.DAY_OF_MONTH:
        return rr.rrule(rr.MONTHLY, bymonthday=s.day_of_month, **common)
    if s.kind is K.WEEKDAY_OF_MONTH:
        return rr.rrule(rr.MONTHLY, byweekday=rr.weekdays[s.weekday](s.week_of_month), **common)
    return rr.rrule(rr.DAILY, **common)


def oracle_gap_end(wall, zone):
    """The first existing wall-clock minute after `wall` (the end of its gap)."""
    wall = wall.replace(second=0, microsecond=0)
    while not dtz.datetime_exists(wall, zone):
        wall += timedelta(minutes=1)
    return wall


def oracle_utc(wall, zone):
    """Naive UTC for a local wall-clock time under the DST rules."""
    if not dtz.datetime_exists(wall, zone):
        wall = oracle_gap_end(wall, zone)
    aware = dtz.enfold(wall.replace(tzinfo=zone), fold=0)
    return aware.astimezone(dtz.UTC).replace(tzinfo=None)


def oracle_next(s, rule, zone, after):
    """(naive UTC, wall time, moved) of the first run strictly after `after`, or None."""
    if rule is None:
        return None
    local_after = after.replace(tzinfo=dtz.UTC).astimezone(zone).replace(tzinfo=None)
    for wall in rule.xafter(local_after - timedelta(days=1)):
        run = oracle_utc(wall, zone)
        if run > after:
            moved = not dtz.datetime_exists(wall, zone) and oracle_gap_end(wall, zone) not in rule
            return run, wall, moved
    return None


def random_time(rng):
    hour = rng.choice([0, 1, 2, 3, 23]) if rng.random() < 0.5 else rng.randrange(24)
    return time(hour, rng.choice([0, 0, 15, 30, 45, 59, rng.randrange(60)]))


def random_schedule(rng, zone_name, near):
    kind = rng.choice(list(K))
    span = 20 if kind is K.TIMES_PER_DAY else 70
    start = near + timedelta(days=rng.randint(-span, 3))
    common = {"kind": kind, "tz": zone_name, "start_date": start}
    t = random_time(rng)
    match kind:
        case K.ONCE:
            once = datetime.combine(near + timedelta(days=rng.randint(-3, 3)), t)
            return Schedule(once_at=once, **common)
        case K.TIMES_PER_DAY:
            return Schedule(time=t, times_per_day=rng.choice([1, 2, 3, 4, 6, 8, 12, 24]), **common)
        case K.DAYS_OF_WEEK:
            days = rng.sample(range(7), rng.randint(1, 7))
            return Schedule(time=t, weekdays=frozenset(days), **common)
        case K.DAY_OF_MONTH:
            day = rng.choice([1, 8, 28, 29, 30, 31, rng.randint(1, 31)])
            if rng.random() < 0.3:
                day = near.day  # land on the DST day itself
            return Schedule(time=t, day_of_month=day, **common)
        case K.WEEKDAY_OF_MONTH:
            week = rng.choice([1, 2, 3, 4, LAST_WEEK])
            weekday = near.weekday() if rng.random() < 0.5 else rng.randrange(7)
            return Schedule(time=t, week_of_month=week, weekday=weekday, **common)
        case K.HOURLY_SLOT:
            slot = t.minute // 15
            return Schedule(hour=t.hour, slot=slot, minute=pick_slot_minute(slot, rng), **common)


def random_instant(rng, zone, near):
    """A naive UTC instant within a few days of `near`, to the second or at a round minute."""
    local = datetime.combine(near, time()) + timedelta(seconds=rng.randint(-3 * 86400, 3 * 86400))
    if rng.random() < 0.5:
        local = local.replace(second=0)
    return oracle_utc(local, zone) + timedelta(microseconds=rng.choice([0, 0, 0, -1, 1]))


def test_next_run_matches_rrule_oracle():
    rng = random.Random(20260308)
    checked = moved = 0
    for _ in range(1000):
        zone_name = rng.choice(list(ZONE_TRANSITIONS))
        zone = dtz.gettz(zone_name)
        near = date.fromisoformat(rng.choice(ZONE_TRANSITIONS[zone_name]))
        if rng.random() < 0.2:
            near = date(2025, 1, 1) + timedelta(days=rng.randrange(3 * 365))
        s = random_schedule(rng, zone_name, near)
        rule = oracle_rule(s)
        for _ in range(3):
            after = random_instant(rng, zone, near)
            expected = oracle_next(s, rule, zone, after)
            got = next_run(s, after)
            assert got == (expected and expected[0]), (s, after, expected)
            # a chain of runs, each strictly after the one before
            for _ in range(4):
                if expected is None:
                    break
                assert moved_by_dst(s, got) is expected[2], (s, got, expected)
                moved += expected[2]
                checked += 1
                after = got
                expected = oracle_next(s, rule, zone, after)
                got = next_run(s, after)
                assert got == (expected and expected[0]), (s, after, expected)
    assert checked > 7000
    assert moved > 20  # the generator does reach the gaps


def test_next_runs_matches_chained_next_run():
    rng = random.Random(7)
    for _ in range(200):
        zone_name = rng.choice(list(ZONE_TRANSITIONS))
        near = date.fromisoformat(rng.choice(ZONE_TRANSITIONS[zone_name]))
        s = random_schedule(rng, zone_name, near)
        after = random_instant(rng, dtz.gettz(zone_name), near)
        runs = next_runs(s, after, 10)
        assert runs == sorted(set(runs))
        assert all(r > after for r in runs)
        chained, cursor = [], after
        while len(chained) < 10 and (cursor := next_run(s, cursor)) is not None:
            chained.append(cursor)
        assert runs == chained


# -- search bounds --------------------------------------------------------------------------


def test_a_start_date_years_ahead_is_found():
    s = sched(K.DAY_OF_MONTH, tz="UTC", start=date(2029, 2, 1), time=time(6), day_of_month=31)
    assert next_run(s, at(2026, 1, 1)) == at(2029, 3, 31, 6)


def test_a_schedule_started_years_ago_plans_from_today():
    s = sched(K.TIMES_PER_DAY, start=date(2001, 1, 1), time=time(7, 15), times_per_day=2)
    assert next_runs(s, at(2026, 7, 1, 12), 2) == [at(2026, 7, 1, 23, 15), at(2026, 7, 2, 11, 15)]


def test_runs_end_with_the_calendar_rather_than_overflowing():
    s = sched(K.DAYS_OF_WEEK, tz="Asia/Kolkata", time=time(15), weekdays={0, 2, 5})
    assert next_runs(s, at(9999, 12, 28), 3) == [at(9999, 12, 29, 9, 30)]  # Wednesday 29 December


def test_the_same_schedule_gives_the_same_runs_every_time():
    s = sched(K.WEEKDAY_OF_MONTH, time=time(9), week_of_month=2, weekday=1)
    again = sched(K.WEEKDAY_OF_MONTH, time=time(9), week_of_month=2, weekday=1)
    assert (
        next_runs(s, at(2026, 1, 1), 3)
        == next_runs(again, at(2026, 1, 1), 3)
        == next_runs(s, at(2026, 1, 1), 3)
    )
    other = sched(K.WEEKDAY_OF_MONTH, time=time(9), week_of_month=3, weekday=1)
    assert next_run(other, at(2026, 1, 1)) == at(2026, 1, 20, 14)
