"""Supporters: the people data the jobs act on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import Model
from webapp.models.base import utcnow


@dataclass(frozen=True)
class SupporterField:
    """A supporter column as imports and exports see it."""

    name: str
    label: str
    kind: str  # email, text, zip, country, phone, state, number, bool


SUPPORTER_FIELDS: tuple[SupporterField, ...] = (
    SupporterField("email", "Email", "email"),
    SupporterField("first_name", "First name", "text"),
    SupporterField("last_name", "Last name", "text"),
    SupporterField("address1", "Address", "text"),
    SupporterField("city", "City", "text"),
    SupporterField("state", "State", "state"),
    SupporterField("zip", "Postal code", "zip"),  # checked for the supporter's country
    SupporterField("country", "Country", "country"),  # ISO 3166-1 alpha-2
    SupporterField("phone", "Phone", "phone"),
    SupporterField("opted_in", "Opted in", "bool"),
    SupporterField("donation_total", "Donation total", "number"),
)
FIELDS_BY_NAME = {field.name: field for field in SUPPORTER_FIELDS}


class Supporter(Model):
    """One supporter; the email (stored lower-case) is unique.

    Email is the only index besides the key: supporters are read in id order (exports,
    campaign audiences) with opted_in / created_at as filters on the way, and each further
    index would be written for every row an import creates."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(120))
    last_name: Mapped[str | None] = mapped_column(String(120))
    address1: Mapped[str | None] = mapped_column(String(255))
    city: Mapped[str | None] = mapped_column(String(120))
    state: Mapped[str | None] = mapped_column(String(2))
    zip: Mapped[str | None] = mapped_column(String(20))  # a postal code of any country
    country: Mapped[str | None] = mapped_column(String(2))
    phone: Mapped[str | None] = mapped_column(String(40))
    opted_in: Mapped[bool] = mapped_column(default=False)
    donation_total: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    last_run_id: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
