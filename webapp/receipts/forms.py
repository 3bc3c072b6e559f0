"""The receipts forms: the receipt template, the three receipt jobs' parameters, and Void."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from PIL import Image, UnidentifiedImageError
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from webapp.formutil import choices
from webapp.money.pdf import unprintable
from webapp.money.periods import RELATIVE
from webapp.request_args import as_int
from webapp.rules.clock import format_day

SIGNATURE_LIMIT = 512 * 1024  # bytes: a signature is a small picture
SIGNATURE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}
FIRST_DAY = date(2000, 1, 1)
PERIOD_SOURCES = {"range": "Fixed days", "relative": "Days before each run"}


class InRange(NumberRange):
    """NumberRange for an optional number field: a value that is no number at all gets only the
    field's own message ("Not a valid …"), not the range's as well."""

    def __call__(self, form, field) -> None:
        if field.data is not None:
            super().__call__(form, field)


def printable(form, field) -> None:
    """Refuse text with characters the receipt fonts lack (a receipt would leave them out)."""
    if missing := unprintable(field.data or ""):
        shown = missing if len(missing) <= 20 else missing[:20] + "…"
        raise ValidationError(
            f"The receipt font cannot print “{shown}”: a receipt would leave them out. "
            "Write this without them (letters of European scripts, Greek and Cyrillic print)."
        )


class TemplateForm(FlaskForm):
    """What every receipt prints."""

    organisation_name = StringField(
        "Organisation name", validators=[DataRequired(), Length(max=200), printable]
    )
    address = TextAreaField("Address", validators=[Length(max=1000), printable])
    charity_number = StringField("Charity registration number", validators=[Length(max=60), printable])
    signatory = StringField(
        "Signatory",
        validators=[Length(max=200), printable],
        description="Name and title, e.g. “A. Smith, Treasurer”.",
    )
    wording = TextAreaField(
        "Wording printed on every receipt",
        validators=[DataRequired(), Length(max=2000), printable],
        description="The statement your tax authority requires on a receipt.",
    )
    signature = FileField("Signature image (PNG or JPEG, up to 512 KB)")
    remove_signature = BooleanField("Remove the signature image")

    def signature_image(self) -> tuple[bytes, str] | None:
        """The uploaded signature (bytes, media type) if one was sent and it is a real PNG or
        JPEG; sets the field's error and returns None otherwise."""
        upload = self.signature.data
        if not upload or not getattr(upload, "filename", ""):
            return None
        data = upload.read(SIGNATURE_LIMIT + 1)
        if len(data) > SIGNATURE_LIMIT:
            self.signature.errors = ["The signature image is larger than 512 KB."]
            return None
        try:
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            kind = None
        if kind not in SIGNATURE_TYPES:
            self.signature.errors = ["The signature must be a PNG or JPEG image."]
            return None
        return data, SIGNATURE_TYPES[kind]


class _PeriodForm(FlaskForm):
    """A job name and a period: fixed days, or days relative to each run."""

    name = StringField("Job name", validators=[DataRequired(), Length(max=200)])
    source = RadioField("Period", choices=choices(PERIOD_SOURCES.items()), default="relative")
    start = DateField("First day", validators=[Optional()])
    end = DateField("Last day", validators=[Optional()])
    period = SelectField(
        "Which days before each run", choices=choices(RELATIVE.items()), default="previous_month"
    )

    def _check_days(self) -> bool:
        valid = True
        for day, missing in ((self.start, "Choose the first day."), (self.end, "Choose the last day.")):
            problem = None if day.data else missing
            if day.data and day.data < FIRST_DAY:
                problem = f"Choose a day on or after {format_day(FIRST_DAY)}."
            if problem and not day.errors:
                day.errors = [*day.errors, problem]
            valid = valid and not day.errors
        if self.start.data and self.end.data and self.end.data < self.start.data and not self.end.errors:
            self.end.errors = [*self.end.errors, "The last day is before the first day."]
            valid = False
        return valid

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.source.data == "range":
            valid = self._check_days() and valid
        return valid

    def period_params(self) -> dict[str, Any]:
        if self.source.data == "relative":
            return {"source": "relative", "period": self.period.data}
        return {"source": "range", "start": self.start.data.isoformat(), "end": self.end.data.isoformat()}

    def fill_from(self, params: dict[str, Any]) -> None:
        """Show a saved job's parameters (editing it)."""
        self.source.data = params.get("source", "relative")
        self.period.data = params.get("period") or "previous_month"
        for name in ("start", "end"):
            if params.get(name):
                getattr(self, name).data = date.fromisoformat(params[name])


class BatchForm(_PeriodForm):
    """Batch Receipt Generator: gifts of a period or of one transaction import run."""

    source = RadioField(
        "Gifts to receipt",
        choices=choices([*PERIOD_SOURCES.items(), ("run", "The gifts of one import")]),
        default="relative",
    )
    import_run = SelectField("Import", choices=[], validate_choice=False)
    email = BooleanField("Email each receipt to its donor (PDF attached)")

    def import_run_id(self) -> int | None:
        return as_int(self.import_run.data or "", minimum=1)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.source.data == "run" and self.import_run_id() is None:
            self.import_run.errors = [*self.import_run.errors, "Choose the import whose gifts to receipt."]
            valid = False
        return valid

    def params(self) -> dict[str, Any]:
        if self.source.data == "run":
            return {"source": "run", "import_run_id": self.import_run_id(), "email": self.email.data}
        return {**self.period_params(), "email": self.email.data}

    def fill_from(self, params: dict[str, Any]) -> None:
        super().fill_from(params)
        self.import_run.data = str(params.get("import_run_id") or "")
        self.email.data = bool(params.get("email"))


class AnnualForm(FlaskForm):
    """Annual Receipt Generator: a tax year (a calendar year)."""

    name = StringField("Job name", validators=[DataRequired(), Length(max=200)])
    year_choice = RadioField(
        "Tax year",
        choices=choices(
            [("previous", "The year before each run (for a January schedule)"), ("fixed", "This year:")]
        ),
        default="previous",
    )
    year = IntegerField("Year", validators=[Optional(), InRange(min=2000, max=2100)])
    email = BooleanField("Email each receipt to its donor (PDF attached)")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.year_choice.data == "fixed" and self.year.data is None and not self.year.errors:
            self.year.errors = [*self.year.errors, "Give the tax year, e.g. 2025."]
            valid = False
        return valid

    def params(self) -> dict[str, Any]:
        if self.year_choice.data == "fixed":
            return {"year_choice": "fixed", "year": self.year.data, "email": self.email.data}
        return {"year_choice": "previous", "email": self.email.data}

    def fill_from(self, params: dict[str, Any]) -> None:
        self.year_choice.data = params.get("year_choice", "previous")
        self.year.data = params.get("year")
        self.email.data = bool(params.get("email"))


class InventoryForm(_PeriodForm):
    """Receipt Inventory Generator: a period."""

    def params(self) -> dict[str, Any]:
        return self.period_params()


class VoidForm(FlaskForm):
    """Void a receipt: a reason and a confirmation."""

    reason = StringField(
        "Reason", validators=[InputRequired("Give the reason the receipt is voided."), Length(max=200)]
    )
    confirm = BooleanField(
        "I understand the number is voided for good and its gifts may be receipted again",
        validators=[DataRequired("Tick the box to confirm.")],
    )


class ReceiptFilters(FlaskForm):
    """The receipts list's filters (GET, no CSRF)."""

    class Meta:
        csrf = False

    number = IntegerField("Number", validators=[Optional(), InRange(min=1, max=2**31 - 1)])
    status = SelectField("Status", choices=choices([("", "Any")]), validate_choice=False)
    kind = SelectField(
        "Kind",
        choices=choices([("", "Any"), ("single", "Single"), ("annual", "Annual")]),
        validate_choice=False,
    )
    year = IntegerField("Tax year", validators=[Optional(), InRange(min=1900, max=2200)])
    donor = StringField("Donor", validators=[Length(max=200)], description="Email or name contains")
