"""Times are stored in UTC and shown in the account time zone with its abbreviation.

A wall-clock time the account types (a schedule, a campaign launch) becomes UTC by one DST rule,
`local_to_utc`: a time that does not exist (spring forward) is the first instant after the gap,
so 02:30 on a spring-forward day in New York is 03:00 EDT; a time that happens twice (fall back)
is the first of the two.

This module is the one converter between the account time zone and UTC; schedule recurrence
(rules.recurrence) converts only through it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

# The days Conveyor plans anything on (schedules, blackouts, campaign launches, token expiry):
# forms refuse others, and a stored schedule outside them is reported instead of planned. (Before
# the first, a year of fewer than four digits is no date a browser's date field shows.)
FIRST_PLANNABLE = date(1970, 1, 1)
LAST_PLANNABLE = date(2100, 12, 31)


def to_local(moment: datetime, tz_name: str) -> datetime:
    """A stored (naive UTC) instant as an aware datetime in the account time zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(tz_name))


@lru_cache(maxsize=16384)  # pages show the same stored times again and again
def format_local(moment: datetime | None, tz_name: str, *, with_date: bool = True) -> str:
    """'Nov 23, 2026 10:41 AM EST' (or just '10:41 AM EST'); '' for no time."""
    if moment is None:
        return ""
    local = to_local(moment, tz_name)
    clock = local.strftime("%I:%M %p").lstrip("0")
    if not with_date:
        return f"{clock} {local.tzname()}"
    return f"{local.strftime('%b')} {local.day}, {local.year} {clock} {local.tzname()}"


def local_midnight_utc(day: str, tz_name: str) -> datetime:
    """The naive UTC instant at which the ISO date `day` begins in the account time zone (the
    first instant there is, for a day that began before it: Jan 1 of year 1 east of UTC)."""
    start = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(tz_name))
    try:
        return start.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        return datetime.min if start.year == 1 else datetime.max


def format_duration(seconds: float | None) -> str:
    """'2 h 05 min', '3 min 20 s' or '12 s'."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def local_to_utc(local: datetime, tz_name: str) -> datetime:
    """A naive wall-clock time in the account time zone as a naive UTC instant (the module's DST
    rule: inside a spring-forward gap, the end of the gap; a repeated time, the first)."""
    zone = ZoneInfo(tz_name)
    utc = _utc_of(local, zone)  # fold=0: of a repeated time, the first
    if utc_to_local_naive(utc, tz_name) == local:
        return utc
    return _gap_end(local, zone)


def _utc_of(wall: datetime, zone: ZoneInfo, fold: int = 0) -> datetime:
    """Naive UTC for a wall time read with the offset `fold` selects (PEP 495)."""
    aware = wall.replace(tzinfo=zone, fold=fold)
    return aware.astimezone(UTC).replace(tzinfo=None)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant that skips over `wall`: the first instant after the gap."""
    # Read with the offset after the change the wall time falls before the transition, with the
    # offset before it falls after; the transition (a whole second) lies in between.
    lo = _utc_of(wall, zone, fold=1).replace(microsecond=0)
    hi = _utc_of(wall, zone, fold=0).replace(microsecond=0)
    after = _offset_at(hi, zone)
    while (span := int((hi - lo).total_seconds())) > 1:
        mid = lo + timedelta(seconds=span // 2)
        if _offset_at(mid, zone) == after:
            hi = mid
        else:
            lo = mid
    return hi


def _offset_at(instant: datetime, zone: ZoneInfo) -> timedelta | None:
    """The zone's UTC offset at a naive UTC instant."""
    return instant.replace(tzinfo=UTC).astimezone(zone).utcoffset()


def utc_to_local_naive(moment: datetime, tz_name: str) -> datetime:
    """A stored UTC instant as a naive wall-clock time in the account time zone (for forms)."""
    return to_local(moment, tz_name).replace(tzinfo=None)


def exists_locally(local: datetime, tz_name: str) -> bool:
    """Whether a naive wall-clock time happens at all in the account time zone (False inside a
    spring-forward gap, where `local_to_utc` moves it to the end of the gap)."""
    return utc_to_local_naive(local_to_utc(local, tz_name), tz_name) == local


def check_plannable(value: date | datetime | None) -> str | None:
    """Why a form's date (or date and time) cannot be planned, as a field message; None if it can."""
    if value is None:
        return None
    day = value.date() if isinstance(value, datetime) else value
    if day > LAST_PLANNABLE:
        return f"Choose a date on or before {format_day(LAST_PLANNABLE)}: Conveyor cannot plan later dates."
    if day < FIRST_PLANNABLE:
        return f"Choose a date on or after {format_day(FIRST_PLANNABLE)}."
    return None


def format_day(day: date | None) -> str:
    """A calendar day as every screen writes it: 'Dec 24, 2026' ('' for none)."""
    if day is None:
        return ""
    return f"{day.strftime('%b')} {day.day}, {day.year}"


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """'1 run', '2 runs', '1,204 supporters' (plural_noun when adding s is wrong)."""
    word = noun if count == 1 else (plural_noun or f"{noun}s")
    return f"{count:,} {word}"


def sentence(text: str | None) -> str:
    """A reason as a sentence starts: its first letter upper case ('the worker…' → 'The worker…')."""
    if not text:
        return ""
    return text[0].upper() + text[1:]
