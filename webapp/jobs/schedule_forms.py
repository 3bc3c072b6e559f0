"""The schedule form: one form, the fields of the chosen kind shown (HTMX swaps them in)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TimeField,
    ValidationError,
    widgets,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from webapp.formutil import choices, local_today
from webapp.models.base import utcnow
from webapp.rules.clock import (
    LAST_PLANNABLE,
    check_plannable,
    format_day,
    format_local,
    local_to_utc,
    to_local,
)
from webapp.rules.recurrence import (
    PAST_SLOT_MESSAGE,
    SLOT_MINUTES,
    TIMES_PER_DAY_CHOICES,
    ScheduleKind,
)

KIND_LABELS = {
    ScheduleKind.TIMES_PER_DAY: "Times per day",
    ScheduleKind.DAYS_OF_WEEK: "Days of week",
    ScheduleKind.DAY_OF_MONTH: "Day of month",
    ScheduleKind.WEEKDAY_OF_MONTH: "Weekday of month",
    ScheduleKind.HOURLY_SLOT: "Daily, in a 15-minute slot",
    ScheduleKind.ONCE: "Once",
}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WEEKS = {"1": "First", "2": "Second", "3": "Third", "4": "Fourth", "-1": "Last"}
SLOTS = {"0": "0–14", "1": "15–29", "2": "30–44", "3": "45–59"}
USES_TIME = {
    ScheduleKind.TIMES_PER_DAY,
    ScheduleKind.DAYS_OF_WEEK,
    ScheduleKind.DAY_OF_MONTH,
    ScheduleKind.WEEKDAY_OF_MONTH,
}
# What the preview waits for, per field a kind needs, before it can list any run.
NEEDED_WORDS = {
    "time": "the time",
    "weekdays": "the days",
    "day_of_month": "the day of the month",
    "once_at": "the date and time",
}


def refuse_unplannable(form: FlaskForm, field: DateField) -> None:
    """A field validator: refuse a date Conveyor cannot plan (after clock.LAST_PLANNABLE)."""
    if problem := check_plannable(field.data):
        raise ValidationError(problem)


def local_now() -> datetime:
    """Now as a naive wall-clock time in the account time zone."""
    return to_local(utcnow(), current_app.config["TIMEZONE"]).replace(tzinfo=None)


def counted(count: int, noun: str) -> str:
    """'1 minute', '2 minutes'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def hour_label(hour: int) -> str:
    """'12:00 AM' … '11:00 PM' for an hour of the day (0–23)."""
    return f"{hour % 12 or 12}:00 {'AM' if hour < 12 else 'PM'}"


def wall_text(day: date, at: time, tz_name: str) -> str:
    """A local wall-clock time on `day` as the app shows times: '9:07 AM EST'."""
    return format_local(local_to_utc(datetime.combine(day, at), tz_name), tz_name, with_date=False)


def slot_text(day: date, hour: int, slot: int, tz_name: str) -> str:
    """A 15-minute slot on `day`: '3:15–3:30 PM EDT' (or '11:45 AM–12:00 PM EST')."""
    start = datetime.combine(day, time(hour, slot * SLOT_MINUTES))
    end = start + timedelta(minutes=SLOT_MINUTES)
    first, last = wall_text(day, start.time(), tz_name), wall_text(end.date(), end.time(), tz_name)
    first_clock, first_half, _ = first.split(" ")
    if last.split(" ")[1] == first_half:
        return f"{first_clock}–{last}"
    return f"{first_clock} {first_half}–{last}"


def next_free_slot(now_local: datetime) -> datetime:
    """The start of the first slot that has not begun by `now_local` (local wall-clock times)."""
    begun = now_local.replace(minute=now_local.minute // SLOT_MINUTES * SLOT_MINUTES, second=0, microsecond=0)
    return begun + timedelta(minutes=SLOT_MINUTES)


def past_slot_message(hour: int, slot: int, now_local: datetime, tz_name: str) -> str:
    """Why today's slot is refused, and the next slot that would work."""
    today = now_local.date()
    free = next_free_slot(now_local)
    when = "today" if free.date() == today else "tomorrow"
    return (
        f"{PAST_SLOT_MESSAGE}: today's {slot_text(today, hour, slot, tz_name)} slot has begun. "
        f"The next free slot is {slot_text(free.date(), free.hour, free.minute // SLOT_MINUTES, tz_name)} "
        f"{when}, or keep this slot and start tomorrow."
    )


def once_before_start_message(start: date) -> str:
    """Why a one-off time before the schedule's start date is refused (it would never run)."""
    return (
        f"This is before the start date ({format_day(start)}): choose a later one, or an earlier start date."
    )


def once_past_message(tz_name: str) -> str:
    """Why a one-off time that has passed is refused."""
    return f"This date and time has passed (it is now {format_local(utcnow(), tz_name)}): choose a later one."


class ScheduleForm(FlaskForm):
    """When a job runs by itself."""

    enabled = BooleanField("Schedule on")
    kind = SelectField(
        "Repeat",
        choices=choices((k.value, v) for k, v in KIND_LABELS.items()),
        default=ScheduleKind.DAYS_OF_WEEK.value,
    )
    start_date = DateField("Start date", validators=[DataRequired(), refuse_unplannable])
    time = TimeField("Time", validators=[Optional()])
    times_per_day = SelectField(
        "Runs per day",
        coerce=int,
        default=1,
        choices=choices((str(n), f"{n} a day") for n in TIMES_PER_DAY_CHOICES),
    )
    weekdays = SelectMultipleField(
        "Days",
        coerce=int,
        choices=choices((str(i), d) for i, d in enumerate(WEEKDAYS)),
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )
    day_of_month = IntegerField("Day of the month", validators=[Optional(), NumberRange(1, 31)])
    week_of_month = SelectField("Which", coerce=int, choices=choices(WEEKS.items()), default=1)
    weekday = SelectField(
        "Weekday", coerce=int, default=0, choices=choices((str(i), d) for i, d in enumerate(WEEKDAYS))
    )
    hour = SelectField(
        "Hour", coerce=int, default=9, choices=choices((str(h), hour_label(h)) for h in range(24))
    )
    slot = SelectField("Minutes", coerce=int, choices=choices(SLOTS.items()), default=0)
    once_at = DateTimeLocalField("Date and time", validators=[Optional()], format="%Y-%m-%dT%H:%M")
    overlap_policy = RadioField(
        "If the previous run is still going",
        choices=choices(
            [
                ("skip", "Skip this run (recorded as skipped)"),
                ("queue", "Queue it behind (at most one waiting)"),
            ]
        ),
        default="skip",
    )
    misfire_policy = RadioField(
        "If Conveyor was not running at a planned time",
        choices=choices(
            [
                (
                    "run_once",
                    "Run it once when Conveyor is back, if not later than "
                    "the grace period (every missed time is recorded)",
                ),
                ("skip", "Skip it (recorded as missed)"),
            ]
        ),
        default="run_once",
    )
    misfire_grace_minutes = IntegerField(
        "Grace period",
        default=60,
        render_kw={"min": 1, "max": 24 * 60},
        description="How many minutes late a missed time may still run.",
        validators=[DataRequired(), NumberRange(1, 24 * 60, "Between 1 and 1440 minutes.")],
    )

    def missing(self) -> list[str]:
        """The names of the fields the chosen kind needs that are still empty."""
        kind = ScheduleKind(self.kind.data)
        need = {
            "weekdays": kind is ScheduleKind.DAYS_OF_WEEK,
            "day_of_month": kind is ScheduleKind.DAY_OF_MONTH,
            "time": kind in USES_TIME,
            "once_at": kind is ScheduleKind.ONCE,
        }
        return [name for name, required in need.items() if required and not getattr(self, name).data]

    def once_in_past(self) -> bool:
        """Whether a one-off schedule's date and time has already passed: as an instant, the one
        it is saved as (of a wall time the clocks go through twice, the first), so that 01:45
        is refused at 01:30 in the hour repeated when clocks fall back if its first 01:45 is over."""
        if self.kind.data != ScheduleKind.ONCE or not isinstance(self.once_at.data, datetime):
            return False
        if self.once_at.data.date() > LAST_PLANNABLE:
            return False  # (too far ahead to plan: refused as such)
        try:
            return local_to_utc(self.once_at.data, current_app.config["TIMEZONE"]) <= utcnow()
        except OverflowError:  # a time in year 1, east of UTC: long past
            return True

    def once_before_start(self) -> bool:
        """Whether a one-off schedule's day comes before its start date: nothing would run."""
        if self.kind.data != ScheduleKind.ONCE or not isinstance(self.once_at.data, datetime):
            return False
        return isinstance(self.start_date.data, date) and self.once_at.data.date() < self.start_date.data

    def kind_problems(self) -> None:
        """Require the fields the chosen kind needs; refuse a one-off time that has passed
        while the schedule is on (switched off, it may stay: nothing runs)."""
        for name in self.missing():
            field = getattr(self, name)
            field.errors = [*field.errors, "Required for this kind of schedule."]
        if self.kind.data == ScheduleKind.ONCE and self.once_at.data:
            problem = None
            if self.enabled.data and self.once_in_past():
                problem = once_past_message(current_app.config["TIMEZONE"])
            if not problem and self.once_before_start():
                problem = once_before_start_message(self.start_date.data)
            problem = problem or check_plannable(self.once_at.data)
            if problem:
                self.once_at.errors = [*self.once_at.errors, problem]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.kind.data in {k.value for k in ScheduleKind}:
            self.kind_problems()
        return valid and not any(f.errors for f in self)


def describe_schedule(schedule) -> str:
    """'Every Monday and Friday at 1:30 AM', in words, for the job page."""
    if schedule is None:
        return ""
    at = clock_text(schedule.time.hour, schedule.time.minute) if schedule.time else ""
    kind = schedule.kind
    if kind == ScheduleKind.TIMES_PER_DAY:
        if schedule.times_per_day == 1:
            return f"once a day at {at}"
        return f"{schedule.times_per_day} times a day from {at}"
    if kind == ScheduleKind.DAYS_OF_WEEK:
        days = [WEEKDAYS[d] for d in sorted(schedule.weekdays or [])]
        return f"every {' and '.join(days)} at {at}"
    if kind == ScheduleKind.DAY_OF_MONTH:
        return f"day {schedule.day_of_month} of each month at {at}"
    if kind == ScheduleKind.WEEKDAY_OF_MONTH:
        return (
            f"the {WEEKS[str(schedule.week_of_month)].lower()} "
            f"{WEEKDAYS[schedule.weekday]} of each month at {at}"
        )
    if kind == ScheduleKind.HOURLY_SLOT:
        at = clock_text(schedule.hour, schedule.minute)
        return f"daily at {at} (its minute picked in {slot_minutes_text(schedule.hour, schedule.slot)})"
    return "once"


def schedule_summary(schedule) -> str:
    """describe_schedule with the time zone its times are in, as the screens show it: 'every
    Monday at 9:00 AM, New York time'."""
    text = describe_schedule(schedule)
    return f"{text}, {zone_words(current_app.config['TIMEZONE'])}" if text and text != "once" else text


def zone_words(zone: str) -> str:
    """'New York time' for America/New_York (the same words all year, EST or EDT)."""
    place = zone.rsplit("/", 1)[-1].replace("_", " ")
    return zone if place in ("UTC", "GMT") or not place.isascii() else f"{place} time"


def slot_minutes_text(hour: int, slot: int) -> str:
    """'2:30–2:44 PM': the minutes a slot's run may be picked in (any day)."""
    return f"{hour % 12 or 12}:{slot * 15:02d}–{clock_text(hour, slot * 15 + 14)}"


def clock_text(hour: int, minute: int) -> str:
    """'2:07 PM': an hour and minute as every screen writes a time of day."""
    return f"{hour % 12 or 12}:{minute:02d} {'AM' if hour < 12 else 'PM'}"


class PauseForm(FlaskForm):
    """Pause a schedule, saying why, optionally until a date."""

    reason = StringField("Reason", validators=[DataRequired(), Length(max=300)])
    resume_on = DateField("Resume automatically on", validators=[Optional(), refuse_unplannable])

    def validate_resume_on(self, field: DateField) -> None:
        if field.data and field.data <= local_today():  # (it would resume at the scheduler's next look)
            raise ValidationError("Choose a day after today, or leave it empty to resume by hand.")


class BlackoutForm(FlaskForm):
    """Dates on which scheduled runs are skipped."""

    # Ids of their own: the schedule page holds this form next to the schedule's own start_date.
    start_date = DateField("From", id="blackout_start_date", validators=[DataRequired(), refuse_unplannable])
    end_date = DateField("To", id="blackout_end_date", validators=[DataRequired(), refuse_unplannable])
    reason = StringField(
        "Reason",
        id="blackout_reason",
        validators=[DataRequired(), Length(max=200)],
        description="e.g. Giving Tuesday, office closed",
    )

    def validate_end_date(self, field: DateField) -> None:
        if self.start_date.data and field.data and field.data < self.start_date.data:
            raise ValidationError("The end date is before the start date.")


def blackout_text(blackout) -> str:
    """Blackout dates in one line (for the audit log): 'Dec 24, 2026 to Dec 26, 2026: office closed'."""
    days = format_day(blackout.start_date)
    if blackout.end_date != blackout.start_date:
        days += f" to {format_day(blackout.end_date)}"
    return f"{days}: {blackout.reason}" if blackout.reason else days
