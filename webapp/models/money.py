"""Donations and receipts: transactions imported for supporters, the receipts issued for them,
and what a transaction import changed (so that it can be rolled back exactly).

No foreign keys to supporter: a Supporter Delete removes the supporter and leaves its
transactions and receipts (money the charity received and receipts it issued stay on the books)
with supporter_id set to NULL."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, Index, LargeBinary, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import Model, db
from webapp.models.base import utcnow

TRANSACTION_KINDS = {"one_off": "One-off", "recurring": "Recurring", "refund": "Refund"}


class Transaction(Model):
    """One gift (or refund) from a supporter, created by a Transaction Data Import run."""

    __tablename__ = "money_transaction"  # ("transaction" is an SQL keyword)
    __table_args__ = (
        # an external transaction id is unique per source ("Stripe", "PayPal", a bank file …)
        UniqueConstraint("source", "external_id", name="uq_transaction_source_external_id"),
        Index("ix_transaction_supporter", "supporter_id", "received_on"),
        Index("ix_transaction_received_on", "received_on", "id"),  # date ranges, in order
        Index("ix_transaction_run", "run_id", "id"),  # what one import created (rollback)
        Index("ix_transaction_owner", "owner_id", "received_on"),  # a user's own, by date
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    supporter_id: Mapped[int | None] = mapped_column()
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))  # negative only for a refund
    currency: Mapped[str] = mapped_column(String(3))  # ISO 4217
    received_on: Mapped[date] = mapped_column(Date)
    payment_method: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10), default="one_off")  # TRANSACTION_KINDS
    appeal: Mapped[str | None] = mapped_column(String(80))  # campaign or appeal code
    source: Mapped[str] = mapped_column(String(60))
    external_id: Mapped[str | None] = mapped_column(String(100))
    tax_deductible: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    run_id: Mapped[int | None] = mapped_column()  # the import run that created it
    owner_id: Mapped[int | None] = mapped_column()  # whose import: owner rules as for runs
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupporterChange(Model):
    """What one transaction import did to one supporter: created it, or changed these fields
    from `before` to `after` (the first change a run made to the supporter), so that its
    rollback deletes what it created and restores what it changed."""

    __table_args__ = (UniqueConstraint("run_id", "supporter_id", name="uq_supporter_change_run_supporter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column()
    supporter_id: Mapped[int] = mapped_column()
    created: Mapped[bool] = mapped_column(default=False)
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # field -> stored value
    after: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # field -> value written


class ImportRollback(Model):
    """An import run rolled back (or being rolled back) by a rollback run: at most one each."""

    id: Mapped[int] = mapped_column(primary_key=True)
    import_run_id: Mapped[int] = mapped_column(unique=True)
    rollback_run_id: Mapped[int] = mapped_column()
    at: Mapped[datetime] = mapped_column(default=utcnow)


RECEIPT_STATUSES = {"issued": "Issued", "voided": "Voided", "replaced": "Replaced"}


class Receipt(Model):
    """A tax receipt issued under a number of the account's one sequence (ReceiptCounter)."""

    __table_args__ = (
        Index("ix_receipt_supporter_year", "supporter_id", "tax_year"),
        Index("ix_receipt_run", "run_id", "number"),
        Index("ix_receipt_issued_at", "issued_at", "number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # "single" or "annual"
    supporter_id: Mapped[int | None] = mapped_column()
    # the donor as printed on the receipt (kept: a receipt is what was issued, not today's data)
    donor_name: Mapped[str] = mapped_column(String(255), default="")
    donor_address: Mapped[str] = mapped_column(Text, default="")
    donor_email: Mapped[str | None] = mapped_column(String(255))
    tax_year: Mapped[int | None] = mapped_column()  # an annual receipt's year
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))  # the eligible (tax-deductible) total
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    run_id: Mapped[int | None] = mapped_column()  # the run that issued it
    status: Mapped[str] = mapped_column(String(10), default="issued")  # RECEIPT_STATUSES
    replaces_id: Mapped[int | None] = mapped_column()  # the receipt this one replaces
    voided_at: Mapped[datetime | None] = mapped_column()
    void_reason: Mapped[str | None] = mapped_column(String(200))
    emailed_at: Mapped[datetime | None] = mapped_column()


class ReceiptItem(Model):
    """A transaction a receipt covers (one for a single receipt, the year's for an annual)."""

    __table_args__ = (
        Index("ix_receipt_item_receipt", "receipt_id"),
        Index("ix_receipt_item_transaction", "transaction_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[int] = mapped_column()
    transaction_id: Mapped[int] = mapped_column()
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))


class ReceiptCounter(Model):
    """The account's next receipt number (one row). A receipt run takes numbers by updating
    this row in the transaction that inserts the receipts: parallel runs queue on the row lock,
    and a batch that is rolled back gives its numbers back, so none is skipped or reused."""

    id: Mapped[int] = mapped_column(primary_key=True)
    next_number: Mapped[int] = mapped_column(default=1)


class ReceiptTemplate(Model):
    """What every receipt prints (one row, edited by an admin on the Receipts settings page)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_name: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    charity_number: Mapped[str] = mapped_column(String(60), default="")
    wording: Mapped[str] = mapped_column(Text, default="")
    signatory: Mapped[str] = mapped_column(String(200), default="")
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)  # PNG or JPEG
    signature_type: Mapped[str | None] = mapped_column(String(20))  # "image/png" or "image/jpeg"
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @classmethod
    def get(cls) -> ReceiptTemplate:
        """The account's receipt template, created empty on first use."""
        template = db.session.get(cls, 1)
        if template is None:
            template = cls(id=1)
            db.session.add(template)
            db.session.flush()
        return template
