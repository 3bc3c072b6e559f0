"""Admin forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from webapp.auth.forms import AccountEmail, NewPassword
from webapp.formutil import choices
from webapp.models.users import Role
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
        "Keep result files for (days)", validators=[DataRequired(), NumberRange(min=1, max=3650)]
    )
    audit_retention_days = IntegerField(
        "Keep audit entries for (days)",
        validators=[DataRequired(), NumberRange(min=30, max=3650)],
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
