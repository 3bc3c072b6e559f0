"""Times are stored in UTC and shown in the account time zone with its abbreviation."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo


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
    """The naive UTC instant at which the ISO date `day` begins in the account time zone."""
    start = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(tz_name))
    return start.astimezone(UTC).replace(tzinfo=None)


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
    """A naive wall-clock time in the account time zone as a naive UTC instant."""
    return local.replace(tzinfo=ZoneInfo(tz_name)).astimezone(UTC).replace(tzinfo=None)


def utc_to_local_naive(moment: datetime, tz_name: str) -> datetime:
    """A stored UTC instant as a naive wall-clock time in the account time zone (for forms)."""
    return to_local(moment, tz_name).replace(tzinfo=None)
