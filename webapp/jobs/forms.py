"""Forms of the jobs area that are not a job type's own parameter form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import BooleanField, Choice, RadioField, SelectField, StringField, ValidationError
from wtforms.validators import DataRequired, Length
from wtforms.widgets import Select, html_params

from webapp.emails import is_email
from webapp.formutil import choices
from webapp.models.people import SUPPORTER_FIELDS

FIELD_CHOICES = [("", "Ignore this column")] + [(f.name, f.label) for f in SUPPORTER_FIELDS]


class _FieldSelect(Select):
    """A column's field select, its options rendered once as Select renders them: a file of
    1,000 columns has 1,000 selects, and rendering their options one by one took half a second."""

    options = [
        (
            value,
            Select.render_option(Choice(value, label, False, None)),
            Select.render_option(Choice(value, label, True, None)),
        )
        for value, label in FIELD_CHOICES
    ]

    def __call__(self, field: SelectField, **kwargs: object) -> Markup:
        kwargs.setdefault("id", field.id)
        chosen = field.data
        options = "".join(selected if value == chosen else plain for value, plain, selected in self.options)
        return Markup(f"<select {html_params(name=field.name, **kwargs)}>{options}</select>")


class MappingForm(FlaskForm):
    """Step 2 of an import: a field for every CSV column, plus the job name."""

    name = StringField("Job name", validators=[DataRequired(), Length(max=200)])
    readd_deleted = BooleanField(
        "Re-add previously deleted supporters",
        description="Left off, a row whose email belongs to a supporter deleted on request is "
        "rejected as “deleted on <date> on request”.",
    )


def mapping_form(columns: list[str], guesses: list[str], formdata=None) -> MappingForm:
    """A MappingForm with one select per column, preselected with the guessed field."""

    class _Form(MappingForm):
        pass

    field_choices = choices(FIELD_CHOICES)

    for index, column in enumerate(columns):
        label = column or f"Column {index + 1}"
        setattr(
            _Form,
            f"col_{index}",
            SelectField(
                f"Field for column “{label}”",
                choices=field_choices,
                default=guesses[index],
                widget=_FieldSelect(),
            ),
        )
    return _Form(formdata=formdata) if formdata is not None else _Form()


class ConfirmForm(FlaskForm):
    """A button-only form (CSRF protected)."""


class NotificationsForm(FlaskForm):
    """Who hears about a job's runs, and when."""

    notify_emails = StringField(
        "Email addresses", validators=[Length(max=500)], description="Comma separated."
    )
    notify_on = RadioField(
        "Send an email",
        default="never",
        choices=choices(
            [("every", "After every run"), ("failure", "Only when a run fails"), ("never", "Never")]
        ),
    )
    notify_missed = BooleanField("Also when a run is missed")
    notify_long = BooleanField("Also when a run takes over twice as long as usual")

    def save_to(self, job) -> None:
        """Keep the choices on the job, the addresses as one tidy comma-separated list."""
        self.populate_obj(job)
        addresses = (self.notify_emails.data or "").split(",")
        job.notify_emails = ", ".join(a.strip() for a in addresses if a.strip())

    def validate_notify_emails(self, field: StringField) -> None:
        for address in [a.strip() for a in (field.data or "").split(",") if a.strip()]:
            if not is_email(address):
                raise ValidationError(f"'{address}' is not an email address.")
        if self.notify_on.data != "never" and not (field.data or "").strip():
            raise ValidationError("Add at least one address, or choose Never.")
