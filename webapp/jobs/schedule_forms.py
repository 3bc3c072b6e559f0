"""The schedule form: one form, the fields of the chosen kind shown (HTMX swaps them in)."""

from __future__ import annotations

from datetime import date

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

from webapp.formutil import choices
from webapp.models.base import utcnow
from webapp.rules.clock import check_plannable, to_local
from webapp.rules.recurrence import TIMES_PER_DAY_CHOICES, ScheduleKind

KIND_LABELS = {
    ScheduleKind.TIMES_PER_DAY: "Times per day",
    ScheduleKind.DAYS_OF_WEEK: "Days of week",
    ScheduleKind.DAY_OF_MONTH: "Day of month",
    ScheduleKind.WEEKDAY_OF_MONTH: "Weekday of month",
    ScheduleKind.HOURLY_SLOT: "Hourly slot",
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
PAST_DATE_MESSAGE = "This date is in the past: choose today or a later day."


def refuse_unplannable(form: FlaskForm, field: DateField) -> None:
    """A field validator: refuse a date Conveyor cannot plan (after clock.LAST_PLANNABLE)."""
    if problem := check_plannable(field.data):
        raise ValidationError(problem)


def local_today() -> date:
    """Today in the account time zone."""
    return to_local(utcnow(), current_app.config["TIMEZONE"]).date()


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
        "Hour", coerce=int, choices=choices((str(h), f"{h:02d}:00") for h in range(24)), default=9
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

    def kind_problems(self) -> None:
        """Require the fields the chosen kind needs."""
        kind = ScheduleKind(self.kind.data)
        need = {
            "time": kind in USES_TIME,
            "weekdays": kind is ScheduleKind.DAYS_OF_WEEK,
            "day_of_month": kind is ScheduleKind.DAY_OF_MONTH,
            "once_at": kind is ScheduleKind.ONCE,
        }
        for name, required in need.items():
            field = getattr(self, name)
            if required and not field.data:
                field.errors = [*field.errors, "Required for this kind of schedule."]
        if kind is ScheduleKind.ONCE and self.once_at.data:
            problem = check_plannable(self.once_at.data)
            if problem is None and self.enabled.data and self.once_at.data.date() < local_today():
                problem = PAST_DATE_MESSAGE
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
    at = schedule.time.strftime("%I:%M %p").lstrip("0") if schedule.time else ""
    kind = schedule.kind
    if kind == ScheduleKind.TIMES_PER_DAY:
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
        return f"daily at {schedule.hour:02d}:{schedule.minute:02d} (slot {SLOTS[str(schedule.slot)]})"
    return "once"


class PauseForm(FlaskForm):
    """Pause a schedule, saying why, optionally until a date."""

    reason = StringField("Reason", validators=[DataRequired(), Length(max=300)])
    resume_on = DateField("Resume automatically on", validators=[Optional(), refuse_unplannable])


class BlackoutForm(FlaskForm):
    """Dates on which scheduled runs are skipped."""

    start_date = DateField("From", validators=[DataRequired(), refuse_unplannable])
    end_date = DateField("To", validators=[DataRequired(), refuse_unplannable])
    reason = StringField(
        "Reason",
        validators=[DataRequired(), Length(max=200)],
        description="e.g. Giving Tuesday, office closed",
    )

    def validate_end_date(self, field: DateField) -> None:
        if self.start_date.data and field.data and field.data < self.start_date.data:
            raise ValidationError("The end date is before the start date.")


def blackout_text(blackout) -> str:
    """Blackout dates in one line (for the audit log): '2026-12-24 to 2026-12-26: office closed'."""
    days = blackout.start_date.isoformat()
    if blackout.end_date != blackout.start_date:
        days += f" to {blackout.end_date.isoformat()}"
    return f"{days}: {blackout.reason}" if blackout.reason else days
