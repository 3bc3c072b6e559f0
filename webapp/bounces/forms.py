"""The Email Bounces job's form: a campaign send, or a date range in the account time zone."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from webapp.formutil import choices
from webapp.jobtypes.email_bounces import PERIODS, SOURCES
from webapp.request_args import as_int
from webapp.rules.clock import check_plannable, format_day

FIRST_DAY = date(2000, 1, 1)  # no bounce is older; an earlier day is a typing mistake


class BounceExportForm(FlaskForm):
    """Name, which bounces (one send, or a range of days) and the file's encoding. The send
    select holds the run ids of the sends the job's owner may see (set by the view); the view
    answers any other id with a 404 (bounces.routes._chosen_send)."""

    name = StringField("Job name", validators=[DataRequired(), Length(max=200)])
    source = RadioField("Bounces of", choices=choices(SOURCES.items()), default="send")
    send = SelectField("Campaign send", choices=[], validate_choice=False)
    start = DateField("First day", validators=[Optional()])
    end = DateField("Last day", validators=[Optional()])
    period = SelectField("Days before each run", choices=choices(PERIODS.items()), default="7")
    bom = BooleanField(
        "Excel-friendly (UTF-8 with BOM)",
        default=True,
        description="Leave it off for a program that wants plain UTF-8.",
    )

    def send_id(self) -> int | None:
        """The chosen send's run id, None when none (or no id) was sent."""
        return as_int(self.send.data or "", minimum=1)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.source.data == "send":
            if self.send_id() is None:
                self.send.errors = [*self.send.errors, "Choose the campaign send whose bounces to export."]
                valid = False
            return valid
        if self.source.data == "recent":
            return valid  # the period is a choice (checked by SelectField)
        for day, missing in ((self.start, "Choose the first day."), (self.end, "Choose the last day.")):
            problem = None if day.data else missing
            if day.data and day.data < FIRST_DAY:
                problem = f"Choose a day on or after {format_day(FIRST_DAY)}."
            problem = problem or check_plannable(day.data)
            if problem and not day.errors:
                day.errors = [*day.errors, problem]
            valid = valid and not day.errors
        if self.start.data and self.end.data and self.end.data < self.start.data and not self.end.errors:
            self.end.errors = [*self.end.errors, "The last day is before the first day."]
            valid = False
        return valid

    def params(self) -> dict[str, Any]:
        """The job parameters this form describes."""
        if self.source.data == "send":
            return {"source": "send", "run_id": self.send_id(), "bom": self.bom.data}
        if self.source.data == "recent":
            return {"source": "recent", "period": self.period.data, "bom": self.bom.data}
        return {
            "source": "range",
            "start": self.start.data.isoformat(),
            "end": self.end.data.isoformat(),
            "bom": self.bom.data,
        }

    def fill_from(self, params: dict[str, Any]) -> None:
        """Show a saved job's parameters (editing it)."""
        self.source.data = params.get("source", "send")
        self.send.data = str(params.get("run_id") or "")
        self.period.data = str(params.get("period") or "7")
        for name in ("start", "end"):
            if params.get(name):
                getattr(self, name).data = date.fromisoformat(params[name])
        self.bom.data = bool(params.get("bom"))
