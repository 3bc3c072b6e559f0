"""Forms of the jobs area that are not a job type's own parameter form."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectField, StringField, ValidationError
from wtforms.validators import DataRequired, Length

from webapp.formutil import choices
from webapp.models.people import SUPPORTER_FIELDS

_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
FIELD_CHOICES = [("", "Ignore this column")] + [(f.name, f.label) for f in SUPPORTER_FIELDS]


class MappingForm(FlaskForm):
    """Step 2 of an import: a field for every CSV column, plus the job name."""

    name = StringField("Job name", validators=[DataRequired(), Length(max=200)])


def mapping_form(columns: list[str], guesses: list[str], formdata=None) -> MappingForm:
    """A MappingForm with one select per column, preselected with the guessed field."""

    class _Form(MappingForm):
        pass

    for index, column in enumerate(columns):
        label = column or f"Column {index + 1}"
        setattr(_Form, f"col_{index}", SelectField(
            f"Field for column “{label}”", choices=choices(FIELD_CHOICES), default=guesses[index]))
    return _Form(formdata=formdata) if formdata is not None else _Form()


class ConfirmForm(FlaskForm):
    """A button-only form (CSRF protected)."""


class NotificationsForm(FlaskForm):
    """Who hears about a job's runs, and when."""

    notify_emails = StringField("Email addresses", validators=[Length(max=500)],
                                description="Comma separated.")
    notify_on = RadioField("Send an email", default="never", choices=choices([
        ("every", "After every run"), ("failure", "Only when a run fails"),
        ("never", "Never")]))
    notify_missed = BooleanField("Also when a run is missed")
    notify_long = BooleanField("Also when a run takes over twice as long as usual")

    def validate_notify_emails(self, field: StringField) -> None:
        for address in [a.strip() for a in (field.data or "").split(",") if a.strip()]:
            if not _EMAIL.match(address):
                raise ValidationError(f"'{address}' is not an email address.")
        if self.notify_on.data != "never" and not (field.data or "").strip():
            raise ValidationError("Add at least one address, or choose Never.")
