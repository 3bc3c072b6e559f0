"""Sign-in, own account and password forms, and the two checks other forms share:
AccountEmail (a staff address, `admin@conveyor.local` included) and NewPassword (the rules)."""

from __future__ import annotations

from typing import Any

import email_validator
from flask_wtf import FlaskForm
from wtforms import EmailField, Field, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from webapp.auth.passwords import MAX_LENGTH, password_problem

# Names email-validator refuses as special-use (RFC 6761/6762) that an organisation's own mail
# server may well serve: staff accounts may use them (the first super admin is
# admin@conveyor.local). "invalid" and "onion" stay refused.
PRIVATE_MAIL_DOMAINS = ("local", "localhost", "test", "internal", "lan", "home.arpa")


def account_email_problem(address: str) -> str | None:
    """Why `address` cannot be an account's email, or None (syntax only, no DNS)."""
    domain = address.rpartition("@")[2].lower().rstrip(".")
    if any(domain == name or domain.endswith("." + name) for name in PRIVATE_MAIL_DOMAINS):
        address += ".example.org"  # the same syntax rules, without the special-use refusal
    try:
        email_validator.validate_email(address, check_deliverability=False,
                                       allow_smtputf8=False)
    except email_validator.EmailNotValidError as problem:
        return f"Not a valid email address: {problem}"
    return None


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
    return PasswordField(label, validators=[DataRequired(), NewPassword()],
                         description="At least 12 characters; not a common password. A few "
                                     "unrelated words make a good one.",
                         render_kw={"autocomplete": "new-password"})


def _repeat() -> PasswordField:
    return PasswordField("Repeat the new password", validators=[
        DataRequired(), EqualTo("new_password", message="The two passwords differ.")],
        render_kw={"autocomplete": "new-password"})


class LoginForm(FlaskForm):
    """Email and password."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=MAX_LENGTH)])


class ChangePasswordForm(FlaskForm):
    """A signed-in user's own new password."""

    current_password = PasswordField("Current password",
                                     validators=[DataRequired(), Length(max=MAX_LENGTH)],
                                     render_kw={"autocomplete": "current-password"})
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
        "Current password", validators=[Optional(), Length(max=MAX_LENGTH)],
        description="Needed only to change the email address.",
        render_kw={"autocomplete": "current-password"})
