"""Campaign and saved-filter forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    EmailField,
    FieldList,
    FormField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from webapp.emails import is_email
from webapp.formutil import choices
from webapp.mailing.audience import OPERATORS
from webapp.mailing.render import MERGE_FIELDS, render_problems
from webapp.models.people import SUPPORTER_FIELDS

AUDIENCES = {"opted_in": "All opted-in supporters", "filter": "A saved filter"}


class CampaignForm(FlaskForm):
    """Everything a campaign needs to be launched."""

    name = StringField("Campaign name", validators=[DataRequired(), Length(max=200)])
    from_address = StringField(
        "From address",
        validators=[DataRequired(), Length(max=255)],
        description='e.g. "Friends of the Park <news@park.org>"',
    )
    subject = StringField("Subject", validators=[DataRequired(), Length(max=300)])
    html_body = TextAreaField("HTML body", render_kw={"rows": 10})
    text_body = TextAreaField("Plain-text body", validators=[DataRequired()], render_kw={"rows": 8})
    audience = RadioField("Audience", choices=choices(AUDIENCES.items()), default="opted_in")
    filter_id = SelectField("Saved filter", coerce=int, validate_choice=False)
    notify_email = EmailField("Notification email address", validators=[Optional(), Length(max=255)])
    launch_at = DateTimeLocalField(
        "Launch automatically at", validators=[Optional()], format="%Y-%m-%dT%H:%M"
    )

    def validate_notify_email(self, field: EmailField) -> None:
        """The address follows the one email rule (webapp/emails.py)."""
        if not is_email(field.data.strip()):
            raise ValidationError("Not a valid email address.")

    def validate(self, extra_validators=None) -> bool:
        """The fields, then the templates: each must compile (no include, extends or import) and
        render for a sample supporter within the bounds, or its field says why."""
        valid = super().validate(extra_validators)
        problems = render_problems(
            self.subject.data or "", self.html_body.data or "", self.text_body.data or ""
        )
        for part, message in problems.items():
            getattr(self, part).errors = [*getattr(self, part).errors, message]
            valid = False
        own = {value for value, *_ in self.filter_id.iter_choices() if value}  # the user's filters
        if self.audience.data == "filter" and self.filter_id.data not in own:
            # a filter deleted while the form was open, or never the owner's (the same answer:
            # no 404 that would tell a guessed id from a deleted one); what was typed is kept
            why = (
                "The saved filter chosen is not one of the saved filters now (deleted meanwhile?): "
                "choose another."
                if self.filter_id.data
                else "Choose one of your saved filters."
            )
            self.filter_id.errors = [*self.filter_id.errors, why]
            valid = False
        return valid


def merge_field_help() -> str:
    """The merge fields a campaign may use, for the form's help text."""
    names = [*MERGE_FIELDS, "unsubscribe_url"]
    return "Merge fields: " + ", ".join("{{ " + name + " }}" for name in names)


class ConditionForm(FlaskForm):
    """One condition of a saved filter."""

    class Meta:
        csrf = False

    field = SelectField("Field", choices=choices([("", "—")] + [(f.name, f.label) for f in SUPPORTER_FIELDS]))
    op = SelectField("Comparison", choices=choices(OPERATORS.items()))
    value = StringField(
        "Value",
        validators=[Length(max=200, message="A value can be at most 200 characters.")],
        render_kw={"maxlength": 200},
    )


class FilterForm(FlaskForm):
    """A named audience rule of up to five conditions (all must match)."""

    name = StringField("Filter name", validators=[DataRequired(), Length(max=200)])
    conditions = FieldList(FormField(ConditionForm), min_entries=3, max_entries=5)

    def rule(self) -> dict:
        return {
            "conditions": [
                {"field": c.field.data, "op": c.op.data, "value": c.value.data.strip()}
                for c in self.conditions
                if c.field.data
            ]
        }
