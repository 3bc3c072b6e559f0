"""The Supporter Delete forms: what to delete, and the typed confirmation."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from webapp.formutil import choices
from webapp.jobtypes.supporter_delete import SOURCES

NUMBER = re.compile(r"^\d{1,3}(,?\d{3})*$|^\d+$")


class DeleteForm(FlaskForm):
    """A new Supporter Delete: its name and which supporters (a CSV of emails or a saved filter)."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    source = RadioField("Which supporters", choices=choices(SOURCES.items()), default="csv")
    file = FileField(
        "CSV file of emails",
        description="A column named Email (or a file of emails only, one a line); other columns are ignored.",
    )
    encoding = SelectField(
        "Encoding",
        choices=choices([("utf-8", "UTF-8 (with or without BOM)"), ("latin-1", "Latin-1 (older Excel)")]),
        default="utf-8",
    )
    filter_id = SelectField("Saved filter", coerce=int, validate_choice=False)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.source.data == "csv" and not self.file.data:
            self.file.errors = [*self.file.errors, "Choose a CSV file of emails to upload."]
            valid = False
        if self.source.data == "filter" and not self.filter_id.data:
            self.filter_id.errors = [*self.filter_id.errors, "Choose one of your saved filters."]
            valid = False
        return valid


class ConfirmDeleteForm(FlaskForm):
    """The confirmation: the number of supporters to delete, typed back."""

    typed = StringField("Type the number of supporters to delete", validators=[DataRequired()])

    def number(self) -> int | None:
        """The typed number (commas allowed), or None when it is not one."""
        text = (self.typed.data or "").strip()
        return int(text.replace(",", "")) if NUMBER.match(text) else None


class DiscardForm(FlaskForm):
    """Discard a delete that waits for its confirmation (a button, CSRF protected)."""
