"""Receipts by the API: the receipts issued (filtered, paged), one receipt with its gifts, its
PDF, and Void. As on the Receipts pages, only admins and super admins: a receipt is the
organisation's document (anyone else is answered 403)."""

from __future__ import annotations

from typing import Literal

from flask import Response, current_app, url_for
from flask_login import current_user
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from webapp import audit
from webapp.api.v1.core import fail, iso
from webapp.api.v1.schemas import Body, Closed
from webapp.api.v1.spec import PDF, operation
from webapp.extensions import db
from webapp.models.money import Receipt, ReceiptItem
from webapp.money import issuing
from webapp.money.delivery import pdf_name
from webapp.money.pdf import render_receipt
from webapp.money.receipt_filter import ReceiptFilter
from webapp.paging import Keyset
from webapp.request_args import MAX_ID

TAG = "Receipts"
MAX_PAGE_SIZE = 200


class ReceiptOut(BaseModel):
    """A receipt as issued, and what became of it."""

    id: int
    number: int = Field(description="the account's receipt number: never reused, never skipped")
    kind: Literal["single", "annual"]
    status: Literal["issued", "voided", "replaced"]
    supporter_id: int | None = Field(description="null once the supporter was deleted")
    donor_name: str
    donor_email: str | None
    tax_year: int | None
    amount: str = Field(description="the eligible amount, a decimal number, e.g. 125.50")
    currency: str = Field(description="ISO 4217")
    issued_at: str = Field(description="ISO 8601, UTC")
    voided_at: str | None
    void_reason: str | None
    run_id: int | None = Field(description="the run that issued it")
    replaces: int | None = Field(description="the number of the receipt this one replaces")
    emailed_at: str | None
    transactions: list[int] = Field(description="the ids of the gifts it covers")


class ReceiptPage(BaseModel):
    """A page of receipts, newest first, and the addresses of the pages either side."""

    receipts: list[ReceiptOut]
    next: str | None
    previous: str | None


class ReceiptQuery(Closed):
    """Which receipts, and where a page starts."""

    number: int | None = Field(default=None, ge=1, le=MAX_ID)
    status: Literal["", "issued", "voided", "replaced"] = ""
    kind: Literal["", "single", "annual"] = ""
    year: int | None = Field(default=None, ge=1900, le=2200, description="the tax year")
    donor: str = Field(default="", max_length=200, description="part of the donor's email or name, any case")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE, description="receipts a page")
    before: int | None = Field(default=None, ge=1, le=MAX_ID, description="the page after this id")
    after: int | None = Field(default=None, ge=1, le=MAX_ID, description="the page before this id")

    @field_validator("number", "year", "before", "after", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


class VoidIn(Body):
    """Why the receipt is voided (kept with it, and in the inventory)."""

    reason: str = Field(min_length=1, max_length=200)


def _admins_only() -> None:
    if not current_user.is_admin:
        raise fail(403, "only admins see receipts: a receipt is the organisation's document")


def _receipt_or_404(receipt_id: int) -> Receipt:
    _admins_only()
    receipt = db.session.get(Receipt, receipt_id)
    if receipt is None:
        raise fail(404, "no receipt has that id")
    return receipt


def receipts_out(receipts: list[Receipt]) -> list[ReceiptOut]:
    """Receipts as the API shows them (their gifts and replaced numbers read in two queries)."""
    ids = [receipt.id for receipt in receipts]
    covered: dict[int, list[int]] = {receipt_id: [] for receipt_id in ids}
    for receipt_id, transaction_id in db.session.execute(
        select(ReceiptItem.receipt_id, ReceiptItem.transaction_id)
        .where(ReceiptItem.receipt_id.in_(ids))
        .order_by(ReceiptItem.id)
    ):
        covered[receipt_id].append(transaction_id)
    replaced_ids = {receipt.replaces_id for receipt in receipts if receipt.replaces_id}
    numbers = {
        row.id: row.number
        for row in db.session.execute(select(Receipt.id, Receipt.number).where(Receipt.id.in_(replaced_ids)))
    }
    return [
        ReceiptOut(
            id=receipt.id,
            number=receipt.number,
            kind=receipt.kind,  # type: ignore[arg-type]
            status=receipt.status,  # type: ignore[arg-type]
            supporter_id=receipt.supporter_id,
            donor_name=receipt.donor_name,
            donor_email=receipt.donor_email,
            tax_year=receipt.tax_year,
            amount=f"{receipt.amount:.2f}",
            currency=receipt.currency,
            issued_at=iso(receipt.issued_at) or "",
            voided_at=iso(receipt.voided_at),
            void_reason=receipt.void_reason,
            run_id=receipt.run_id,
            replaces=numbers.get(receipt.replaces_id) if receipt.replaces_id else None,
            emailed_at=iso(receipt.emailed_at),
            transactions=covered[receipt.id],
        )
        for receipt in receipts
    ]


@operation("GET", "/receipts", tag=TAG, answers={200: ReceiptPage}, query=ReceiptQuery, errors=(403,))
def receipts(query: ReceiptQuery):
    """The receipts issued, newest first, filtered as the Receipts page filters them (admins).

    `limit` a page (at most 200); follow `next` (`before` an id) and `previous` (`after` one)."""
    _admins_only()
    found = ReceiptFilter(
        number=query.number, status=query.status, kind=query.kind, year=query.year, donor=query.donor
    ).apply(select(Receipt))
    keyset = Keyset(before=query.before, after=query.after, per_page=query.limit)
    page = keyset.page(db.session.execute(keyset.narrow(found, Receipt.id)).scalars().all())
    kept = {**query.model_dump(exclude={"before", "after"}, exclude_defaults=True), "limit": query.limit}

    def link(args: dict | None) -> str | None:
        return url_for("api_v1.receipts", **kept, **args) if args else None

    return ReceiptPage(
        receipts=receipts_out(page.items), next=link(page.next_args), previous=link(page.prev_args)
    )


@operation("GET", "/receipts/<int:receipt_id>", tag=TAG, answers={200: ReceiptOut}, errors=(403, 404))
def receipt(receipt_id: int):
    """One receipt, with the ids of the gifts it covers (admins)."""
    return receipts_out([_receipt_or_404(receipt_id)])[0]


@operation("GET", "/receipts/<int:receipt_id>/pdf", tag=TAG, answers={200: PDF}, errors=(403, 404))
def receipt_pdf(receipt_id: int):
    """The receipt's PDF (application/pdf), rendered again from what was issued (admins)."""
    found = _receipt_or_404(receipt_id)
    data = render_receipt(issuing.printed(found, current_app.config["TIMEZONE"]), issuing.letterhead())
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{pdf_name(found.number)}"'},
    )


@operation(
    "POST",
    "/receipts/<int:receipt_id>/void",
    tag=TAG,
    answers={200: ReceiptOut},
    body=VoidIn,
    errors=(400, 403, 404, 409, 415),
    found=_receipt_or_404,
)
def void(receipt_id: int, body: VoidIn):
    """Void an issued receipt, with the reason (admins): its number is never used again, and its
    gifts may be receipted again (or their import rolled back). A 409 if it is not live."""
    found = _receipt_or_404(receipt_id)
    try:
        issuing.void(found, body.reason)
    except issuing.VoidError as exc:
        db.session.rollback()
        raise fail(409, str(exc)) from None
    audit.record(
        "receipt.voided", found, detail=f"Receipt {found.number}: {found.void_reason} (API)", commit=False
    )
    db.session.commit()
    return receipts_out([found])[0]
