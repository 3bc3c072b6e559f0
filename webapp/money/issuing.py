"""Issuing receipts: which gifts are eligible, single receipts for a batch of gifts, annual
receipts (and their replacements) for a batch of supporters, each batch numbered in its own
transaction (webapp/money/numbering.py), and voiding.

Eligible gift: a one-off or recurring gift (never a refund) of a supporter who still exists,
whose eligible amount — its tax-deductible amount, or its whole amount when the import gave no
tax-deductible amount (a gift with no benefit in return) — is positive. A gift on a live
receipt (status "issued") is not receipted again; a voided receipt gives its gifts back. An
annual receipt nets the year's refunds of the same currency (listed on it, negative): it never
counts what was given back."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, exists, func, insert, select, update

from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.money import Receipt, ReceiptItem, ReceiptTemplate, Transaction
from webapp.models.people import Supporter
from webapp.money import numbering
from webapp.money.pdf import DEFAULT_WORDING, Gift, Letterhead, ReceiptText
from webapp.rules.clock import to_local

LIVE = "issued"
ELIGIBLE_KINDS = ("one_off", "recurring")


def eligible_amount() -> ColumnElement[Decimal]:
    """A gift's eligible amount: its tax-deductible amount, else its amount."""
    return func.coalesce(Transaction.tax_deductible, Transaction.amount)


def on_live_receipt(kind: str | None = None) -> ColumnElement[bool]:
    """The gift is on a live receipt (of `kind` only, when given)."""
    conditions = [ReceiptItem.transaction_id == Transaction.id, Receipt.status == LIVE]
    if kind:
        conditions.append(Receipt.kind == kind)
    return exists(
        select(ReceiptItem.id).join(Receipt, Receipt.id == ReceiptItem.receipt_id).where(*conditions)
    )


def eligible() -> list[ColumnElement[bool]]:
    """Conditions on Transaction (joined to Supporter) for a gift that may be receipted."""
    return [Transaction.kind.in_(ELIGIBLE_KINDS), eligible_amount() > 0]


def single_conditions(*, start: date | None = None, end: date | None = None, run_id: int | None = None):
    """The gifts a Batch Receipt Generator run receipts: eligible, not on any live receipt,
    received in [start, end] or created by import run `run_id`."""
    conditions = [*eligible(), ~on_live_receipt()]
    if run_id is not None:
        conditions.append(Transaction.run_id == run_id)
    if start is not None:
        conditions.append(Transaction.received_on >= start)
    if end is not None:
        conditions.append(Transaction.received_on <= end)
    return conditions


def count_gifts(conditions: list[ColumnElement[bool]]) -> int:
    """How many gifts meet `conditions` now."""
    query = (
        select(func.count())
        .select_from(Transaction)
        .join(Supporter, Supporter.id == Transaction.supporter_id)
    )
    return db.session.execute(query.where(*conditions)).scalar_one()


def donor_name(supporter: Any) -> str:
    """A supporter's name as a receipt prints it (the email when no name is stored)."""
    name = " ".join(part for part in (supporter.first_name, supporter.last_name) if part)
    return name or supporter.email


def donor_address(supporter: Any) -> str:
    """A supporter's postal address as lines."""
    town = " ".join(part for part in (supporter.city, supporter.state, supporter.zip) if part)
    return "\n".join(part for part in (supporter.address1, town, supporter.country) if part)


def _receipt_row(
    number: int, kind: str, supporter: Any, amount: Decimal, currency: str, run_id: int, now
) -> dict:
    return {
        "number": number,
        "kind": kind,
        "supporter_id": supporter.id,
        "donor_name": donor_name(supporter)[:255],
        "donor_address": donor_address(supporter),
        "donor_email": supporter.email,
        "amount": amount,
        "currency": currency,
        "issued_at": now,
        "run_id": run_id,
        "status": LIVE,
    }


def _insert_receipts(rows: list[dict], items: list[list[tuple[int, Decimal]]]) -> dict[int, int]:
    """Insert receipts and their items (transaction id, amount); number -> receipt id."""
    db.session.execute(insert(Receipt), rows)
    numbers = [row["number"] for row in rows]
    ids = dict(
        db.session.execute(select(Receipt.number, Receipt.id).where(Receipt.number.in_(numbers))).all()
    )
    item_rows = [
        {"receipt_id": ids[row["number"]], "transaction_id": transaction_id, "amount": amount}
        for row, gifts in zip(rows, items, strict=True)
        for transaction_id, amount in gifts
    ]
    if item_rows:
        db.session.execute(insert(ReceiptItem), item_rows)
    return ids


_SUPPORTER_COLUMNS = (
    Supporter.id,
    Supporter.email,
    Supporter.first_name,
    Supporter.last_name,
    Supporter.address1,
    Supporter.city,
    Supporter.state,
    Supporter.zip,
    Supporter.country,
)


def issue_single_batch(conditions: list[ColumnElement[bool]], run_id: int, limit: int) -> int:
    """Receipt up to `limit` gifts meeting `conditions`, one receipt each, numbered in the
    current transaction (the caller commits); how many were issued. Locks the counter first,
    so a parallel run's committed receipts are seen and its gifts not receipted twice."""
    first = numbering.lock_counter()
    gifts = db.session.execute(
        select(
            Transaction.id.label("transaction_id"),  # (`id` is the supporter's: _receipt_row)
            Transaction.currency,
            eligible_amount().label("eligible"),
            *_SUPPORTER_COLUMNS,
        )
        .join(Supporter, Supporter.id == Transaction.supporter_id)
        .where(*conditions)
        .order_by(Transaction.received_on, Transaction.id)
        .limit(limit)
    ).all()
    if not gifts:
        return 0
    now = utcnow()
    rows = [
        _receipt_row(first + i, "single", g, g.eligible, g.currency, run_id, now) for i, g in enumerate(gifts)
    ]
    _insert_receipts(rows, [[(g.transaction_id, g.eligible)] for g in gifts])
    numbering.take(first, len(gifts))
    return len(gifts)


@dataclass
class AnnualOutcome:
    """What one batch of an annual run did."""

    supporters: int = 0  # supporters looked at
    issued: int = 0  # new receipts (first ones and replacements)
    replaced: int = 0  # of which replacements
    unchanged: int = 0  # supporters whose live receipt still matches their gifts
    withdrawn: int = 0  # live receipts voided: their gifts were refunded as much as given
    last_supporter_id: int = 0


def annual_conditions(year: int) -> list[ColumnElement[bool]]:
    """The gifts an annual receipt for `year` covers: eligible, received that year, not on a
    live single receipt (gifts on the supporter's live annual receipt are counted again)."""
    return [*eligible(), *_in_year(year), ~on_live_receipt("single")]


def _in_year(year: int) -> list[ColumnElement[bool]]:
    """Received in `year`."""
    return [Transaction.received_on >= date(year, 1, 1), Transaction.received_on <= date(year, 12, 31)]


def count_annual_supporters(year: int, after_supporter: int = 0) -> int:
    """How many supporters (after `after_supporter`, by id) have gifts an annual receipt for
    `year` covers."""
    query = (
        select(func.count(func.distinct(Transaction.supporter_id)))
        .join(Supporter, Supporter.id == Transaction.supporter_id)
        .where(*annual_conditions(year), Transaction.supporter_id > after_supporter)
    )
    return db.session.execute(query).scalar_one()


def issue_annual_batch(year: int, run_id: int, after_supporter: int, limit: int) -> AnnualOutcome:
    """Annual receipts for `year` for up to `limit` supporters after `after_supporter` (by id):
    one per supporter and currency; a supporter whose live annual receipt covers exactly the
    same gifts and total gets nothing, one whose gifts changed gets a replacement (the old one
    becomes "replaced"). Numbered in the current transaction; the caller commits."""
    first = numbering.lock_counter()
    conditions = annual_conditions(year)
    supporter_ids: list[int] = list(
        db.session.execute(
            select(Supporter.id)
            .select_from(Transaction)
            .join(Supporter, Supporter.id == Transaction.supporter_id)
            .where(*conditions, Transaction.supporter_id > after_supporter)
            .group_by(Supporter.id)
            .order_by(Supporter.id)
            .limit(limit)
        ).scalars()
    )
    outcome = AnnualOutcome(supporters=len(supporter_ids), last_supporter_id=after_supporter)
    if not supporter_ids:
        return outcome
    outcome.last_supporter_id = supporter_ids[-1]
    wanted: dict[tuple[int, str], list[tuple[int, Decimal]]] = defaultdict(list)
    for gift in _lines(supporter_ids, *conditions):
        wanted[(gift.supporter_id, gift.currency)].append((gift.id, gift.eligible))
    refunds = _lines(supporter_ids, Transaction.kind == "refund", *_in_year(year))
    for refund in refunds:  # netted: a receipt never counts what was given back
        if (refund.supporter_id, refund.currency) in wanted:
            wanted[(refund.supporter_id, refund.currency)].append((refund.id, refund.eligible))
    live = _live_annual(year, supporter_ids)
    supporters = {
        row.id: row
        for row in db.session.execute(
            select(*_SUPPORTER_COLUMNS).where(Supporter.id.in_(supporter_ids))
        ).all()
    }
    now = utcnow()
    rows: list[dict] = []
    items: list[list[tuple[int, Decimal]]] = []
    replacing: list[tuple[int, int]] = []  # (old receipt id, new number)
    withdrawn: list[int] = []  # live receipts whose gifts were all given back since
    for (supporter_id, currency), covered in wanted.items():
        total = sum((amount for _, amount in covered), Decimal("0"))
        old = live.get((supporter_id, currency))
        if old is not None and old[1] == {t for t, _ in covered} and old[2] == total:
            outcome.unchanged += 1
            continue
        if total <= 0:  # refunded as much as was given: nothing to receipt
            if old is not None:
                withdrawn.append(old[0])
            continue
        number = first + len(rows)
        row = _receipt_row(number, "annual", supporters[supporter_id], total, currency, run_id, now)
        row["tax_year"] = year
        if old is not None:
            row["replaces_id"] = old[0]
            replacing.append((old[0], number))
        rows.append(row)
        items.append(covered)
    if withdrawn:
        db.session.execute(
            update(Receipt)
            .where(Receipt.id.in_(withdrawn))
            .values(status="voided", voided_at=now, void_reason="Refunded: nothing is left to receipt")
            .execution_options(synchronize_session=False)
        )
    if rows:
        for old_id, number in replacing:
            db.session.execute(
                update(Receipt)
                .where(Receipt.id == old_id)
                .values(status="replaced", voided_at=now, void_reason=f"Replaced by receipt {number}")
                .execution_options(synchronize_session=False)
            )
        _insert_receipts(rows, items)
        numbering.take(first, len(rows))
    outcome.issued, outcome.replaced, outcome.withdrawn = len(rows), len(replacing), len(withdrawn)
    return outcome


def _lines(supporter_ids: list[int], *where: ColumnElement[bool]) -> list[Any]:
    """The supporters' transactions that meet `where`, each with its eligible amount (a
    refund's negative), by day received."""
    return list(
        db.session.execute(
            select(
                Transaction.id,
                Transaction.currency,
                Transaction.supporter_id,
                eligible_amount().label("eligible"),
            )
            .join(Supporter, Supporter.id == Transaction.supporter_id)
            .where(*where, Transaction.supporter_id.in_(supporter_ids))
            .order_by(Transaction.received_on, Transaction.id)
        ).all()
    )


def _live_annual(year: int, supporter_ids: list[int]) -> dict[tuple[int, str], tuple[int, set[int], Decimal]]:
    """The supporters' live annual receipts for `year`: (supporter, currency) -> (receipt id,
    the gifts it covers, its amount)."""
    rows = db.session.execute(
        select(Receipt.id, Receipt.supporter_id, Receipt.currency, Receipt.amount, ReceiptItem.transaction_id)
        .join(ReceiptItem, ReceiptItem.receipt_id == Receipt.id)
        .where(
            Receipt.kind == "annual",
            Receipt.status == LIVE,
            Receipt.tax_year == year,
            Receipt.supporter_id.in_(supporter_ids),
        )
    ).all()
    live: dict[tuple[int, str], tuple[int, set[int], Decimal]] = {}
    for row in rows:
        key = (row.supporter_id, row.currency)
        entry = live.setdefault(key, (row.id, set(), Decimal(row.amount)))
        entry[1].add(row.transaction_id)
    return live


class VoidError(ValueError):
    """A receipt that cannot be voided (already voided or replaced)."""


def void(receipt: Receipt, reason: str) -> None:
    """Void a live receipt: its number is never used again and its gifts may be receipted
    again. The caller commits (with its audit entry)."""
    reason = reason.strip()
    if not reason:
        raise VoidError("Give the reason the receipt is voided.")
    changed = cast(
        CursorResult[Any],
        db.session.execute(
            update(Receipt)
            .where(and_(Receipt.id == receipt.id, Receipt.status == LIVE))
            .values(status="voided", voided_at=utcnow(), void_reason=reason[:200])
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    db.session.refresh(receipt)  # (voided meanwhile by another request: its status now)
    if not changed:
        raise VoidError(
            f"Receipt {receipt.number} is {receipt.status}: only an issued receipt can be voided."
        )


def letterhead() -> Letterhead:
    """The receipt template as the PDF prints it (a blank one until an admin saves it; not
    made here: parallel runs would each make it)."""
    template = db.session.get(ReceiptTemplate, 1)
    if template is None:
        return Letterhead(organisation_name="")
    return Letterhead(
        organisation_name=template.organisation_name,
        address=template.address,
        charity_number=template.charity_number,
        wording=template.wording or DEFAULT_WORDING,
        signatory=template.signatory,
        signature=template.signature,
    )


def printed(receipt: Receipt, tz_name: str = "UTC") -> ReceiptText:
    """A stored receipt as its PDF prints it (its gifts read from its items; the day it was
    issued in the account time zone `tz_name`)."""
    gifts = db.session.execute(
        select(Transaction.received_on, Transaction.amount, ReceiptItem.amount.label("eligible"))
        .join(Transaction, Transaction.id == ReceiptItem.transaction_id)
        .where(ReceiptItem.receipt_id == receipt.id)
        .order_by(Transaction.received_on, Transaction.id)
    ).all()
    replaces = None
    if receipt.replaces_id:
        replaces = db.session.execute(
            select(Receipt.number).where(Receipt.id == receipt.replaces_id)
        ).scalar()
    voided = None
    if receipt.status != LIVE:
        reason = receipt.void_reason or ""
        # a replaced receipt's reason says so already ("Replaced by receipt 14")
        voided = (
            reason if reason.startswith("Replaced") else f"{receipt.status.title()}: {reason}".strip(": ")
        )
    return ReceiptText(
        number=receipt.number,
        kind=receipt.kind,
        issued_on=to_local(receipt.issued_at, tz_name).date(),
        donor_name=receipt.donor_name,
        donor_address=receipt.donor_address,
        amount=receipt.amount,
        currency=receipt.currency,
        gifts=[Gift(g.received_on, g.amount, g.eligible) for g in gifts],
        tax_year=receipt.tax_year,
        replaces_number=replaces,
        voided=voided,
    )
