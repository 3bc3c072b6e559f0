"""Forms of the jobs area that are not a job type's own parameter form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from webapp.formutil import choices
from webapp.models.people import SUPPORTER_FIELDS

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
