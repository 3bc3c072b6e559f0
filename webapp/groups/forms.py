"""Forms of the groups area: create, and the wizard's steps 2–4 (step 1 is a list of buttons)."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from webapp.emails import is_email

_SEPARATORS = re.compile(r"[,;\s]+")


def split_addresses(text: str | None) -> list[str]:
    """Addresses separated by commas, semicolons, spaces or new lines (duplicates dropped)."""
    seen: list[str] = []
    for address in _SEPARATORS.split(text or ""):
        if address and address not in seen:
            seen.append(address)
    return seen


class CreateGroupForm(FlaskForm):
    """The Create Group dialog: a name and a description."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[Length(max=2000)])


class CampaignsForm(FlaskForm):
    """Step 2: the campaigns to launch after a successful group run."""

    launch_campaigns = BooleanField("Launch campaigns")
    campaign_ids = SelectMultipleField(
        "Select campaigns",
        coerce=int,
        choices=[],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validate_choice=False,
    )

    def validate_campaign_ids(self, field: SelectMultipleField) -> None:
        known = {value for value, _label in field.choices}
        if any(value not in known for value in field.data or []):
            raise ValidationError("Choose among your campaigns.")
        if self.launch_campaigns.data and not field.data:
            raise ValidationError("Select at least one campaign, or untick Launch campaigns.")


def _addresses(_form: FlaskForm, field: TextAreaField) -> None:
    """Every address must be an email address; one error per bad one."""
    bad = [a for a in split_addresses(field.data) if not is_email(a)]
    if bad:
        field.errors.extend(f"“{a}” is not an email address." for a in bad[:-1])
        raise ValidationError(f"“{bad[-1]}” is not an email address.")


class NotifyForm(FlaskForm):
    """Step 3: who hears how a group run ended."""

    notify_success = TextAreaField(
        "Notify after success",
        validators=[Length(max=2000), _addresses],
        description="Email addresses, separated by commas or new lines.",
    )
    notify_failure = TextAreaField(
        "Notify after failure",
        validators=[Length(max=2000), _addresses],
        description="Email addresses, separated by commas or new lines.",
    )


class ExpirationForm(FlaskForm):
    """Step 4: when the group's definition is deleted."""

    expires_on = DateField("Expires on", validators=[Optional()])
    never_expires = BooleanField("Never expires")
