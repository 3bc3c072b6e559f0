"""Periods a receipt job covers: fixed days, or days relative to each run (for schedules)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from webapp.rules.clock import format_day, to_local

RELATIVE = {
    "yesterday": "Yesterday",
    "previous_week": "The previous week (Monday to Sunday)",
    "previous_month": "The previous calendar month",
    "previous_quarter": "The previous calendar quarter",
    "previous_year": "The previous calendar year",
}


def relative_days(period: str, moment: datetime, tz_name: str) -> tuple[date, date]:
    """The first and last day of `period` before `moment`'s day in the account time zone."""
    today = to_local(moment, tz_name).date()
    if period == "yesterday":
        day = today - timedelta(days=1)
        return day, day
    if period == "previous_week":
        monday = today - timedelta(days=today.weekday() + 7)
        return monday, monday + timedelta(days=6)
    if period == "previous_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if period == "previous_quarter":
        this_quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        last = this_quarter - timedelta(days=1)
        return date(last.year, 3 * ((last.month - 1) // 3) + 1, 1), last
    if period == "previous_year":
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    raise ValueError(f"unknown period {period!r}")


def days_of(params: dict, moment: datetime, tz_name: str) -> tuple[date, date]:
    """The days a job's period parameters name: fixed start/end, or relative to `moment`."""
    if params.get("source") == "relative":
        return relative_days(str(params.get("period")), moment, tz_name)
    return date.fromisoformat(params["start"]), date.fromisoformat(params["end"])


def describe_period(params: dict) -> str:
    """A period as a job's page shows it."""
    if params.get("source") == "relative":
        return f"{RELATIVE.get(str(params.get('period')), 'Unknown period')}, before each run"
    try:
        first, last = (format_day(date.fromisoformat(params[name])) for name in ("start", "end"))
        return f"{first} – {last}"
    except (KeyError, TypeError, ValueError):
        return "No period chosen"
