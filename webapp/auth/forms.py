"""Sign-in, own account and password forms, and the two checks other forms share:
AccountEmail (a staff address, `admin@conveyor.local` included) and NewPassword (the rules)."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import EmailField, Field, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from webapp.auth.passwords import MAX_LENGTH, password_problem
from webapp.emails import is_email


def account_email_problem(address: str) -> str | None:
    """Why `address` cannot be an account's email, or None: the one rule every address follows
    (webapp/emails.py; syntax only, no DNS, so admin@conveyor.local is one)."""
    return None if is_email(address) else "Not a valid email address."


class AccountEmail:
    """WTForms validator for an account's email address."""

    def __call__(self, form: Any, field: Field) -> None:
        if problem := account_email_problem((field.data or "").strip()):
            raise ValidationError(problem)


class NewPassword:
    """WTForms validator: at least 12 characters and not a common password."""

    def __call__(self, form: Any, field: Field) -> None:
        if field.data and (problem := password_problem(field.data)):
            raise ValidationError(problem)


def _new_password(label: str = "New password") -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired(), NewPassword()],
        description="At least 12 characters; not a common password. A few unrelated words make a good one.",
        render_kw={"autocomplete": "new-password"},
    )


def _repeat() -> PasswordField:
    return PasswordField(
        "Repeat the new password",
        validators=[DataRequired(), EqualTo("new_password", message="The two passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


class LoginForm(FlaskForm):
    """Email and password."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=MAX_LENGTH)])


class ChangePasswordForm(FlaskForm):
    """A signed-in user's own new password."""

    current_password = PasswordField(
        "Current password",
        validators=[DataRequired(), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = _new_password()
    repeat_password = _repeat()


class SetPasswordForm(FlaskForm):
    """A new password chosen through a set-password link."""

    new_password = _new_password("Password")
    repeat_password = _repeat()


class ProfileForm(FlaskForm):
    """A user's own name and email address (the current password confirms a new address)."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=255), AccountEmail()])
    name = StringField("Name", validators=[Optional(), Length(max=120)])
    current_password = PasswordField(
        "Current password",
        id="profile_current_password",  # the password form beside it has its own
        validators=[Optional(), Length(max=MAX_LENGTH)],
        description="Needed only to change the email address.",
        render_kw={"autocomplete": "current-password"},
    )
