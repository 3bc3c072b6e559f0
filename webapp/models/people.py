"""Supporters: the people data the jobs act on."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ColumnElement, Index, Numeric, String, func
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import Model
from webapp.models.base import utcnow
from webapp.models.campaigns import Recipient


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
    # the id another system (a CRM, a payment processor) knows the supporter by: a transaction
    # import may match supporters by it. Indexed only where set, so imports that leave it
    # empty write no index entry for it.
    external_id: Mapped[str | None] = mapped_column(String(100))
    last_run_id: Mapped[int | None] = mapped_column()
    # the run that added it, kept by the first write of another run (an insert leaves it empty,
    # and last_run_id says it until then: added_by); whose Supporter Delete may reach it
    created_run_id: Mapped[int | None] = mapped_column()
    # on PostgreSQL, a digest of the CSV record the last import stored here (with its mapping
    # and rules): a re-import passes the same record by unvalidated (jobtypes/pg_copy.py). A
    # trigger forgets it when anything else changes the fields of SUPPORTER_FIELDS (migration
    # 4c7d1e9a2b63: a new field there needs a migration that recreates the trigger)
    import_digest: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# the SQL that keeps who added a supporter when another run writes it (every UPDATE of an
# import sets it beside last_run_id; both read the row as it was)
CREATOR_KEPT = "created_run_id = coalesce(created_run_id, last_run_id)"


def added_by() -> ColumnElement[int | None]:
    """The run that added a supporter: created_run_id, or while nothing else wrote it since,
    its last import."""
    return func.coalesce(Supporter.created_run_id, Supporter.last_run_id)


class ErasedEmail(Model):
    """A supporter deleted on request: only a keyed hash of the email is kept (email_key), so
    that a later import can refuse that address without Conveyor knowing it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex HMAC-SHA256
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)
    run_id: Mapped[int | None] = mapped_column()  # the Supporter Delete run that deleted it


Index(
    "ix_supporter_external_id",
    Supporter.external_id,
    unique=True,
    sqlite_where=Supporter.external_id.isnot(None),
    postgresql_where=Supporter.external_id.isnot(None),
)

# a deleted supporter's recipient rows (one per send) are found by supporter: without this
# index every batch of a Supporter Delete would read the whole recipient table
Index("ix_recipient_supporter_id", Recipient.supporter_id)

HASH_CONTEXT = b"conveyor supporter delete: email key"


def email_key(secret_key: str) -> bytes:
    """The key of the email hashes, derived from the deployment's SECRET_KEY (the same on
    every machine); a new SECRET_KEY forgets which addresses were deleted."""
    return hmac.digest(secret_key.encode(), HASH_CONTEXT, "sha256")


class EmailHasher:
    """HMAC-SHA256 of lower-cased emails under one key, as hex: the keyed hash kept of a
    deleted supporter's email. The key's two padded blocks are hashed once and each email
    continues copies of them (RFC 2104), four times faster than hmac.digest an email; an
    import hashes every email it reads."""

    def __init__(self, key: bytes) -> None:
        block = key.ljust(64, b"\0")  # (the derived key is 32 bytes, within SHA-256's block)
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __call__(self, email: str) -> str:
        """The hash of one email (stripped and lower-cased first)."""
        return self.many([email.strip().lower()])[0]

    def many(self, emails: list[str]) -> list[str]:
        """The hashes of emails already stripped and lower-cased (an import's)."""
        inner, outer = self.inner, self.outer
        hashes = []
        for email in emails:
            step = inner.copy()
            step.update(email.encode())
            done = outer.copy()
            done.update(step.digest())
            hashes.append(done.hexdigest())
        return hashes


def email_hash(key: bytes, email: str) -> str:
    """The keyed hash kept of a deleted supporter's email (case-insensitive)."""
    return EmailHasher(key)(email)
