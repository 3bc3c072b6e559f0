"""When a schedule runs next: pure wall-clock maths in the account time zone (DESIGN.md "Schedules").

Schedules are written in local wall-clock time; instants going in and out are naive UTC, as the
app stores them. DST rules are the app's one rule, `clock.local_to_utc`: a local time that does
not exist (spring forward) runs at the first instant after the gap; a local time that happens
twice (fall back) runs once, the first time. Nothing is planned after `clock.LAST_PLANNABLE`.
"""

from __future__ import annotations

import calendar
import enum
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from webapp.rules.clock import LAST_PLANNABLE, local_to_utc

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
            _check_slot(s.slot)
            if s.minute not in _slot_minutes(s.slot):
                first, last = s.slot * SLOT_MINUTES, s.slot * SLOT_MINUTES + SLOT_MINUTES - 1
                raise ScheduleError(f"the minute must be between {first} and {last} for this slot")


def _check_plannable(what: str, day: date) -> None:
    """Raise ScheduleError for a day after the last one Conveyor plans."""
    if day > LAST_PLANNABLE:
        last = f"{LAST_PLANNABLE:%b} {LAST_PLANNABLE.day}, {LAST_PLANNABLE.year}"
        raise ScheduleError(f"{what} {day.isoformat()} is after {last}, the last day Conveyor can plan")


def _check_slot(slot: int | None) -> None:
    """Raise ScheduleError unless `slot` is 0..3."""
    if slot not in range(60 // SLOT_MINUTES):
        raise ScheduleError("the slot must be 0 (minutes 0-14) to 3 (minutes 45-59)")


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


# -- local wall-clock <-> UTC ---------------------------------------------------------------


def to_local(instant: datetime, tz: str) -> datetime:
    """The naive local wall-clock time of a naive UTC instant (fold=1 marks a repeated hour)."""
    return instant.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def exists_locally(wall: datetime, tz: str) -> bool:
    """Whether a naive local wall-clock time happens at all (False inside a spring-forward gap)."""
    return to_local(local_to_utc(wall, tz), tz) == wall


# -- occurrences ----------------------------------------------------------------------------


def _runs_on_day(s: Schedule, day: date) -> bool:
    """Whether a repeating schedule has runs on a local calendar day."""
    match s.kind:
        case ScheduleKind.DAYS_OF_WEEK:
            return day.weekday() in s.weekdays
        case ScheduleKind.DAY_OF_MONTH:
            return day.day == s.day_of_month
        case ScheduleKind.WEEKDAY_OF_MONTH:
            if day.weekday() != s.weekday:
                return False
            if s.week_of_month == LAST_WEEK:
                return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
            return (day.day - 1) // 7 + 1 == s.week_of_month
    return True


def _times_of_day(s: Schedule) -> list[time]:
    """The local wall-clock times a repeating schedule runs at on each of its days, in order."""
    if s.kind == ScheduleKind.HOURLY_SLOT:
        return [time(s.hour, s.minute)]
    if s.kind == ScheduleKind.TIMES_PER_DAY:
        step = 24 // s.times_per_day
        return sorted(s.time.replace(hour=(s.time.hour + k * step) % 24) for k in range(s.times_per_day))
    return [s.time]


def _walls_on(s: Schedule, day: date) -> list[datetime]:
    """The local wall-clock times of a repeating schedule's runs on `day`, in order."""
    if day < s.start_date or not _runs_on_day(s, day):
        return []
    walls = [datetime.combine(day, t) for t in _times_of_day(s)]
    if s.kind == ScheduleKind.TIMES_PER_DAY and day == s.start_date:
        walls = [w for w in walls if w.time() >= s.time]  # the first run is at `time`
    return walls


def _candidate_days(s: Schedule, after: datetime) -> Iterator[date]:
    """Local days that may hold the next run after `after`, in order."""
    # No earlier day can: a run moved by a gap lands at the gap's end, and `after` is then before
    # the gap, on the run's own local day or earlier.
    day = max(s.start_date, to_local(after, s.tz).date())
    for _ in range(_MAX_SCAN_DAYS):
        yield day
        if day == date.max:
            return
        day += timedelta(days=1)


def _check_instant(after: datetime) -> None:
    """Refuse an aware datetime where a naive UTC instant is expected."""
    if after.tzinfo is not None:
        raise ValueError("instants are naive UTC datetimes")


def next_run(schedule: Schedule, after: datetime) -> datetime | None:
    """The schedule's first run strictly after the naive UTC `after`, as naive UTC; None if none is left."""
    _check_instant(after)
    if schedule.kind == ScheduleKind.ONCE:
        if schedule.once_at.date() < schedule.start_date:
            return None
        run = local_to_utc(schedule.once_at, schedule.tz)
        return run if run > after else None
    for day in _candidate_days(schedule, after):
        for wall in _walls_on(schedule, day):
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
        walls = [schedule.once_at] if schedule.once_at.date() >= schedule.start_date else []
    else:
        day = to_local(occurrence_utc, schedule.tz).date()
        walls = _walls_on(schedule, day - timedelta(days=1)) + _walls_on(schedule, day)
    landing = [w for w in walls if local_to_utc(w, schedule.tz) == occurrence_utc]
    return bool(landing) and not any(exists_locally(w, schedule.tz) for w in landing)
