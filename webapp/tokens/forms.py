"""The form that makes a new API token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from webapp.formutil import choices, local_today
from webapp.rules.clock import check_plannable


class NewTokenForm(FlaskForm):
    """A name to know it by, what it may do, and when it stops working (optional)."""

    name = StringField("Token name", validators=[DataRequired(), Length(max=100)])
    access = RadioField(
        "Access",
        choices=choices(
            [
                ("read", "Read only: look, never change"),
                ("write", "Read and write: also start, stop and change"),
            ]
        ),
        default="read",
    )
    expires_on = DateField("Expires on (optional)", validators=[Optional()])

    def validate_expires_on(self, field: DateField) -> None:
        if field.data is not None and field.data <= local_today():  # (the account's today, as the expiry is)
            raise ValidationError(
                "Choose a day after today, or leave it empty for a token that does not expire."
            )
        if problem := check_plannable(field.data):
            raise ValidationError(problem)
