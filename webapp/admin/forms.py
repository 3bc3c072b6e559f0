"""Admin forms."""

from __future__ import annotations

from datetime import date

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from webapp.admin.outbox import OutboxSearch
from webapp.auth.forms import AccountEmail, NewPassword
from webapp.formutil import choices
from webapp.models.users import Role
from webapp.rules.clock import format_day
from webapp.rules.countries import country_choices


def role_choices(include_super: bool) -> list[SelectChoice]:
    """Roles an admin may give (only a super admin may make super admins)."""
    return choices((r.value, r.label) for r in Role if include_super or r is not Role.SUPER_ADMIN)


class UserForm(FlaskForm):
    """Create or edit a user."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=255), AccountEmail()])
    name = StringField("Name", validators=[Optional(), Length(max=120)])
    role = SelectField("Role", choices=role_choices(True))
    # a super admin's only (admin/users.py removes it for everyone else); audited
    password = PasswordField(
        "Set the password directly",
        validators=[Optional(), NewPassword()],
        description="Super admins only, and audited. Leave empty to keep the password (a new "
        "user then gets a set-password link by email).",
        render_kw={"autocomplete": "new-password"},
    )
    active = BooleanField("Active", default=True)


class SettingsForm(FlaskForm):
    """Account settings."""

    retention_days = IntegerField(
        "Keep result files for (days)", validators=[InputRequired(), NumberRange(min=1, max=3650)]
    )
    audit_retention_days = IntegerField(
        "Keep audit entries for (days)",
        validators=[InputRequired(), NumberRange(min=30, max=3650)],
    )
    default_country = SelectField(
        "Default country for postal codes",
        choices=choices(country_choices()),
        description="An import checks a supporter's postal code for the country in their row's "
        "Country column; rows without one are checked for this country (a country without a "
        "known format takes any postal code of up to 20 characters).",
    )

    def changes(self, account: object) -> str:
        """What saving changes, for the audit log ('' when nothing):
        'Keep result files for (days): 30 → 60'."""
        return "; ".join(
            f"{field.label.text}: {getattr(account, field.name)} → {field.data}"
            for field in (self.retention_days, self.audit_retention_days, self.default_country)
            if getattr(account, field.name) != field.data
        )


SEARCH_DAYS = (date(1970, 1, 1), date(2100, 12, 31))  # the dates an outbox search takes
SEARCH_TEXT_MAX = 200


def _search_day(_form: object, field: DateField) -> None:
    """A search date from SEARCH_DAYS, as a field message otherwise."""
    first, last = SEARCH_DAYS
    if field.data is not None and not first <= field.data <= last:
        raise ValidationError(f"Choose a date from {format_day(first)} to {format_day(last)}.")


def _search_text(label: str) -> StringField:
    return StringField(
        label,
        validators=[
            Optional(),
            Length(max=SEARCH_TEXT_MAX, message=f"Search for at most {SEARCH_TEXT_MAX} characters."),
        ],
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        render_kw={"maxlength": SEARCH_TEXT_MAX, "type": "search"},
    )


def _search_date(label: str) -> DateField:
    first, last = SEARCH_DAYS
    return DateField(
        label,
        validators=[Optional(), _search_day],
        invalid_value_message="Enter a date as YYYY-MM-DD (like 2026-11-30).",
        render_kw={"min": first.isoformat(), "max": last.isoformat()},
    )


class OutboxSearchForm(FlaskForm):
    """The Outbox search (a GET form: its URL is the search, bookmarkable): recipient and
    subject contain the text, dates in the account time zone."""

    class Meta:
        csrf = False

    recipient = _search_text("Recipient")
    subject = _search_text("Subject")
    from_date = _search_date("From date")
    to_date = _search_date("To date")

    def validate_to_date(self, field: DateField) -> None:
        """The To date is not before the From date."""
        start = self.from_date.data
        if field.data is not None and start is not None and not self.from_date.errors and field.data < start:
            raise ValidationError("Choose a To date on or after the From date.")

    def search(self) -> OutboxSearch:
        """What the (valid) form asks for."""
        return OutboxSearch(
            recipient=self.recipient.data or "",
            subject=self.subject.data or "",
            start=self.from_date.data,
            end=self.to_date.data,
        )

    def args(self) -> dict[str, str]:
        """The search's query arguments, for the pager's links (empty ones left out)."""
        return {field.name: raw for field in self if (raw := (field.raw_data or [""])[0])}
