"""Forms of the Transactions area: the Transaction Data Import's mapping step (its upload step is
the supporter import's form)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from webapp.formutil import choices
from webapp.jobtypes.transaction_import import IMPORT_FIELDS, MATCH_BY, WHEN_UNKNOWN
from webapp.rules.currencies import CURRENCIES, DEFAULT

FIELD_CHOICES = [("", "Ignore this column"), *IMPORT_FIELDS.items()]


class TransactionMappingForm(FlaskForm):
    """Step 2 of a transaction import: a field for every CSV column, and how lines are matched."""

    name = StringField("Job name", validators=[DataRequired(), Length(max=200)])
    source = StringField(
        "Source",
        validators=[DataRequired("Name where the transactions come from."), Length(max=60)],
        description="Where the external transaction ids come from, like Stripe or PayPal: an id is "
        "refused when a transaction of the same source already has it.",
    )
    match_by = RadioField("Match supporters by", choices=choices(MATCH_BY.items()), default="email")
    unknown = RadioField("When no supporter matches", choices=choices(WHEN_UNKNOWN.items()), default="create")
    default_currency = SelectField(
        "Currency when the file has no currency column (or a blank cell)",
        choices=choices((code, f"{code} — {name}") for code, name in CURRENCIES.items()),
        default=DEFAULT,
    )
    readd_deleted = BooleanField(
        "Re-add previously deleted supporters",
        description="Left off, a line whose email belongs to a supporter deleted on request is "
        "rejected as “deleted on <date> on request”.",
    )

    def options(self) -> dict[str, object]:
        """The job parameters the options give."""
        return {
            "source": self.source.data.strip(),
            "match_by": self.match_by.data,
            "unknown": self.unknown.data,
            "default_currency": self.default_currency.data,
            "readd_deleted": self.readd_deleted.data,
        }


def transaction_mapping_form(columns: list[str], guesses: list[str], formdata=None) -> TransactionMappingForm:
    """A TransactionMappingForm with one select per column, preselected with the guessed field."""

    class _Form(TransactionMappingForm):
        pass

    field_choices = choices(FIELD_CHOICES)
    for index, column in enumerate(columns):
        label = column or f"Column {index + 1}"
        select = SelectField(f"Field for column “{label}”", choices=field_choices, default=guesses[index])
        setattr(_Form, f"col_{index}", select)
    return _Form(formdata=formdata) if formdata is not None else _Form()
