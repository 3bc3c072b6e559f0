"""The Netdonor Transaction Report's form: a date range (fixed, or relative to each run) and
the filters."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, DecimalField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, StopValidation

from webapp.formutil import choices
from webapp.jobtypes.transaction_report import RANGES
from webapp.models.money import TRANSACTION_KINDS
from webapp.rules.clock import format_day

FIRST_DAY = date(1990, 1, 1)  # an earlier day is a typing mistake
LAST_DAY = date(2100, 12, 31)
MAX_AMOUNT = Decimal("9999999999.99")  # the column's Numeric(12, 2)


class InRange(NumberRange):
    """NumberRange for an optional number field: a value that is no number at all gets only the
    field's own message ("Not a valid …"), not the range's as well."""

    def __call__(self, form, field) -> None:
        if field.data is not None:
            super().__call__(form, field)


def _finite(form: FlaskForm, field: DecimalField) -> None:
    """Refuse NaN and infinities (Decimal parses them) before they are compared."""
    if field.data is not None and not field.data.is_finite():
        raise StopValidation("Enter an amount such as 100 or 25.50.")  # (no range to compare)


class ReportForm(FlaskForm):
    """Name, range and filters of a transaction report."""

    name = StringField("Job name", validators=[DataRequired(), Length(max=200)])
    range = RadioField("Transactions of", choices=choices(RANGES.items()), default="previous_month")
    start = DateField("First day", validators=[Optional()])
    end = DateField("Last day", validators=[Optional()])
    appeal = StringField("Campaign or appeal code", validators=[Optional(), Length(max=80)])
    payment_method = StringField("Payment method", validators=[Optional(), Length(max=40)])
    kind = SelectField("Type", choices=choices([("", "Any type"), *TRANSACTION_KINDS.items()]), default="")
    min_amount = DecimalField(
        "Minimum amount",
        places=2,
        validators=[
            Optional(),
            _finite,
            InRange(min=0, max=MAX_AMOUNT, message="Enter an amount from 0 to 9,999,999,999.99."),
        ],
    )
    bom = BooleanField(
        "Excel-friendly (UTF-8 with BOM)",
        default=True,
        description="Leave it off for a program that wants plain UTF-8.",
    )

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.range.data != "fixed":
            return valid
        for day, missing in ((self.start, "Choose the first day."), (self.end, "Choose the last day.")):
            problem = None if day.data else missing
            if day.data and not FIRST_DAY <= day.data <= LAST_DAY:
                problem = f"Choose a day from {format_day(FIRST_DAY)} to {format_day(LAST_DAY)}."
            if problem and not day.errors:
                day.errors = [*day.errors, problem]
            valid = valid and not day.errors
        if self.start.data and self.end.data and self.end.data < self.start.data and not self.end.errors:
            self.end.errors = [*self.end.errors, "The last day is before the first day."]
            valid = False
        return valid

    def params(self) -> dict[str, Any]:
        """The job parameters this form describes."""
        fixed = self.range.data == "fixed"
        return {
            "range": self.range.data,
            "start": self.start.data.isoformat() if fixed and self.start.data else None,
            "end": self.end.data.isoformat() if fixed and self.end.data else None,
            "appeal": (self.appeal.data or "").strip() or None,
            "payment_method": (self.payment_method.data or "").strip() or None,
            "kind": self.kind.data or None,
            "min_amount": f"{self.min_amount.data:.2f}" if self.min_amount.data is not None else None,
            "bom": self.bom.data,
        }

    def fill_from(self, params: dict[str, Any]) -> None:
        """Show a saved job's parameters (editing it)."""
        self.range.data = params.get("range", "fixed")
        for name in ("start", "end"):
            if params.get(name):
                getattr(self, name).data = date.fromisoformat(params[name])
        self.appeal.data = params.get("appeal") or ""
        self.payment_method.data = params.get("payment_method") or ""
        self.kind.data = params.get("kind") or ""
        self.min_amount.data = Decimal(params["min_amount"]) if params.get("min_amount") else None
        self.bom.data = bool(params.get("bom"))
