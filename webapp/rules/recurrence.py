"""When a schedule runs next: pure wall-clock maths in the account time zone (DESIGN.md "Schedules").

Schedules are written in local wall-clock time; instants going in and out are naive UTC, as the
app stores them. The local wall-clock times of a repeating schedule come from `dateutil.rrule`
(one rule per kind); each becomes UTC by the app's one DST rule, `clock.local_to_utc`: a local
time that does not exist (spring forward) runs at the first instant after the gap; a local time
that happens twice (fall back) runs once, the first time. A schedule whose start date (or one-off
date) is after `clock.LAST_PLANNABLE` is refused with ScheduleError.
"""

from __future__ import annotations

import enum
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule

from webapp.rules.clock import LAST_PLANNABLE, exists_locally, format_day, local_to_utc, utc_to_local_naive

PAST_SLOT_MESSAGE = "The time selected occurs in the past"

TIMES_PER_DAY_CHOICES = (1, 2, 3, 4, 6, 8, 12, 24)
SLOT_MINUTES = 15
LAST_WEEK = -1
# The longest run of days without an occurrence is two months (the 31st, from January to March);
# a schedule that passes validation always finds its next run well inside this bound.
_MAX_SCAN_DAYS = 400


class ScheduleKind(enum.StrEnum):
    """How a schedule repeats."""

    ONCE = "once"
    TIMES_PER_DAY = "times_per_day"
    DAYS_OF_WEEK = "days_of_week"
    DAY_OF_MONTH = "day_of_month"
    WEEKDAY_OF_MONTH = "weekday_of_month"
    HOURLY_SLOT = "hourly_slot"


class ScheduleError(ValueError):
    """A schedule with values that cannot describe any run."""


_USES_TIME = frozenset(
    {
        ScheduleKind.TIMES_PER_DAY,
        ScheduleKind.DAYS_OF_WEEK,
        ScheduleKind.DAY_OF_MONTH,
        ScheduleKind.WEEKDAY_OF_MONTH,
    }
)


@dataclass(frozen=True)
class Schedule:
    """A repeating (or one-off) run time in an IANA time zone; fields a kind does not use are ignored."""

    kind: ScheduleKind
    tz: str
    start_date: date  # local; no run before this day
    time: time | None = None  # local wall-clock time (TIMES_PER_DAY: the first of the day's runs)
    times_per_day: int | None = None
    weekdays: frozenset[int] | None = None  # Monday=0
    day_of_month: int | None = None
    week_of_month: int | None = None  # 1..4, or LAST_WEEK
    weekday: int | None = None  # Monday=0, for WEEKDAY_OF_MONTH
    hour: int | None = None  # HOURLY_SLOT
    slot: int | None = None  # 0..3: minutes 0-14, 15-29, 30-44, 45-59
    minute: int | None = None  # the minute picked inside the slot
    once_at: datetime | None = None  # local, naive

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", ScheduleKind(self.kind))
        except ValueError:
            raise ScheduleError(f"unknown schedule kind {self.kind!r}") from None
        if self.weekdays is not None:
            object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        _validate(self)

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.tz)


def _validate(s: Schedule) -> None:
    """Raise ScheduleError for the first value that makes no sense for the schedule's kind."""
    try:
        ZoneInfo(s.tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(f"unknown time zone {s.tz!r}") from None
    if not isinstance(s.start_date, date) or isinstance(s.start_date, datetime):
        raise ScheduleError("the start date must be a date")
    _check_plannable("the start date", s.start_date)
    if s.kind in _USES_TIME:
        if not isinstance(s.time, time) or s.time.tzinfo is not None:
            raise ScheduleError("a time of day is required")
        if s.time.second or s.time.microsecond:
            raise ScheduleError("the time of day must be in whole minutes")
    match s.kind:
        case ScheduleKind.ONCE:
            if not isinstance(s.once_at, datetime) or s.once_at.tzinfo is not None:
                raise ScheduleError("a local date and time is required")
            _check_plannable("the date", s.once_at.date())
        case ScheduleKind.TIMES_PER_DAY:
            if s.times_per_day not in TIMES_PER_DAY_CHOICES:
                allowed = ", ".join(map(str, TIMES_PER_DAY_CHOICES))
                raise ScheduleError(f"times per day must be one of {allowed}")
        case ScheduleKind.DAYS_OF_WEEK:
            if not s.weekdays:
                raise ScheduleError("choose at least one day of the week")
            if not s.weekdays <= set(range(7)):
                raise ScheduleError("days of the week run from 0 (Monday) to 6 (Sunday)")
        case ScheduleKind.DAY_OF_MONTH:
            if s.day_of_month not in range(1, 32):
                raise ScheduleError("the day of the month must be between 1 and 31")
        case ScheduleKind.WEEKDAY_OF_MONTH:
            if s.week_of_month not in (1, 2, 3, 4, LAST_WEEK):
                raise ScheduleError("the week of the month must be first to fourth, or last")
            if s.weekday not in range(7):
                raise ScheduleError("the day of the week must be 0 (Monday) to 6 (Sunday)")
        case ScheduleKind.HOURLY_SLOT:
            if s.hour not in range(24):
                raise ScheduleError("the hour must be between 0 and 23")
            slot = _check_slot(s.slot)
            if s.minute not in _slot_minutes(slot):
                first, last = slot * SLOT_MINUTES, slot * SLOT_MINUTES + SLOT_MINUTES - 1
                raise ScheduleError(f"the minute must be between {first} and {last} for this slot")


def _check_plannable(what: str, day: date) -> None:
    """Raise ScheduleError for a day after the last one Conveyor plans."""
    if day > LAST_PLANNABLE:
        last = format_day(LAST_PLANNABLE)
        raise ScheduleError(f"{what} {day.isoformat()} is after {last}, the last day Conveyor can plan")


def _check_slot(slot: int | None) -> int:
    """`slot`, if it is 0..3; ScheduleError if not."""
    if slot is None or slot not in range(60 // SLOT_MINUTES):
        raise ScheduleError("the slot must be 0 (minutes 0-14) to 3 (minutes 45-59)")
    return slot


def _slot_minutes(slot: int) -> range:
    """The minutes of the hour inside `slot`."""
    return range(slot * SLOT_MINUTES, (slot + 1) * SLOT_MINUTES)


def pick_slot_minute(slot: int, rng: random.Random | None = None) -> int:
    """A random minute inside `slot`, chosen once when the schedule is saved."""
    _check_slot(slot)
    return (rng or random).choice(_slot_minutes(slot))


def slot_in_past(hour: int, slot: int, now_local: datetime) -> bool:
    """Whether today's `slot` of `hour` has started by `now_local` (the form then refuses it)."""
    if hour not in range(24):
        raise ScheduleError("the hour must be between 0 and 23")
    _check_slot(slot)
    return now_local.time() >= time(hour, slot * SLOT_MINUTES)


# -- occurrences ----------------------------------------------------------------------------
# Recurrence is dateutil's rrule (RFC 5545), one rule per kind, over naive local wall-clock times:
# the rule never sees the zone, so a wall time in a spring-forward gap or a fall-back hour comes
# out as written, and `clock.local_to_utc` alone decides when it runs. local_to_utc never goes
# back in time as the wall clock goes forward, so the runs come out in order (a moved run may
# land on the next one; `next_run` is strictly after, so it runs once). Each rule starts on the
# day a search starts rather than on the start date, so a search never walks the schedule's past.


def _at(t: time | None) -> time:
    """A repeating schedule's time of day (`_validate` has made sure it is there)."""
    if t is None:
        raise ScheduleError("a time of day is required")
    return t


def _int(value: int | None, what: str) -> int:
    """A field `_validate` has made sure is there."""
    if value is None:
        raise ScheduleError(f"{what} is required")
    return value


def _first_wall(s: Schedule) -> datetime:
    """No run of a repeating schedule is earlier than this local wall-clock time."""
    if s.kind == ScheduleKind.TIMES_PER_DAY:
        return datetime.combine(s.start_date, _at(s.time))  # the first run is at `time`
    return datetime.combine(s.start_date, time())


@lru_cache(maxsize=4096)  # the planner and the fire pass ask again for the same schedule and day
def _wall_rule(s: Schedule, first_day: date) -> rrule.rrule:
    """The local wall-clock times of a repeating schedule's runs from `first_day` on, in order."""
    if s.kind == ScheduleKind.HOURLY_SLOT:
        hours, minute = [_int(s.hour, "the hour")], _int(s.minute, "the minute")
    else:
        at = _at(s.time)
        hours, minute = [at.hour], at.minute
    freq: Literal[0, 1, 2, 3, 4, 5, 6] = rrule.DAILY  # HOURLY_SLOT, TIMES_PER_DAY: every day
    byweekday: list[int] | list[rrule.weekday] | None = None
    bymonthday: int | None = None
    match s.kind:
        case ScheduleKind.TIMES_PER_DAY:
            step = 24 // _int(s.times_per_day, "times per day")
            hours = sorted((hours[0] + k * step) % 24 for k in range(24 // step))  # from `time`
        case ScheduleKind.DAYS_OF_WEEK:
            freq, byweekday = rrule.WEEKLY, sorted(s.weekdays or ())
        case ScheduleKind.DAY_OF_MONTH:  # months without the day are skipped (RFC 5545)
            freq, bymonthday = rrule.MONTHLY, _int(s.day_of_month, "the day of the month")
        case ScheduleKind.WEEKDAY_OF_MONTH:  # BYDAY with the week number: 1FR .. 4FR, or -1FR
            weekday = rrule.weekdays[_int(s.weekday, "the day of the week")]
            week = _int(s.week_of_month, "the week of the month")  # LAST_WEEK is -1, as in rrule
            freq, byweekday = rrule.MONTHLY, [weekday(week)]
    return rrule.rrule(
        freq,
        dtstart=max(_first_wall(s), datetime.combine(first_day, time())),
        byweekday=byweekday,
        bymonthday=bymonthday,
        byhour=hours,
        byminute=minute,
        bysecond=0,
    )


def _walls(s: Schedule, first_day: date) -> Iterator[datetime]:
    """`_wall_rule`'s times, ending with the calendar: rrule overflows (ValueError) when the week
    or month it fills runs past the year 9999; the schedule then has no more runs."""
    walls, reached = iter(_wall_rule(s, first_day)), first_day
    while True:
        try:
            wall = next(walls)
        except StopIteration:
            return
        except ValueError:
            if reached.year < date.max.year:
                raise
            return
        reached = wall.date()
        yield wall


def _once_walls(s: Schedule) -> list[datetime]:
    """A one-off schedule's wall-clock time, if it is not before the start date."""
    once_at = s.once_at
    if once_at is None:
        raise ScheduleError("a local date and time is required")
    return [once_at] if once_at.date() >= s.start_date else []


def _check_instant(after: datetime) -> None:
    """Refuse an aware datetime where a naive UTC instant is expected."""
    if after.tzinfo is not None:
        raise ValueError("instants are naive UTC datetimes")


def next_run(schedule: Schedule, after: datetime) -> datetime | None:
    """The schedule's first run strictly after the naive UTC `after`, as naive UTC; None if none is left."""
    _check_instant(after)
    if schedule.kind == ScheduleKind.ONCE:
        for wall in _once_walls(schedule):
            run = local_to_utc(wall, schedule.tz)
            return run if run > after else None
        return None
    # No earlier local day can hold it: a run moved by a gap lands at the gap's end, and `after`
    # is then before the gap, on the run's own local day or earlier.
    local_after = utc_to_local_naive(after, schedule.tz)
    first_day = max(schedule.start_date, local_after.date())
    for wall in _walls(schedule, first_day):
        if (wall.date() - first_day).days >= _MAX_SCAN_DAYS:
            return None
        if wall < local_after:  # runs at or before `after` (local_to_utc keeps the order)
            continue
        run = local_to_utc(wall, schedule.tz)
        if run > after:
            return run
    return None


def next_runs(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """Up to `count` runs after `after` in order (fewer when the schedule ends), as naive UTC."""
    if count < 0:
        raise ValueError("count must not be negative")
    runs: list[datetime] = []
    while len(runs) < count:
        run = next_run(schedule, runs[-1] if runs else after)
        if run is None:
            break
        runs.append(run)
    return runs


def moved_by_dst(schedule: Schedule, occurrence_utc: datetime) -> bool:
    """Whether a run happens at `occurrence_utc` only because DST skipped its own local time."""
    _check_instant(occurrence_utc)
    if schedule.kind == ScheduleKind.ONCE:
        walls = _once_walls(schedule)
    else:
        # a wall time moved by a gap lands on its own local day or the next
        day = utc_to_local_naive(occurrence_utc, schedule.tz).date()
        rule = _walls(schedule, day - timedelta(days=1))
        walls = list(itertools.takewhile(lambda wall: wall.date() <= day, rule))
    landing = [w for w in walls if local_to_utc(w, schedule.tz) == occurrence_utc]
    return bool(landing) and not any(exists_locally(w, schedule.tz) for w in landing)
