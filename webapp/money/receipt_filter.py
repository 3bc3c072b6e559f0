"""Which receipts a list shows: the Receipts page's filters and the API's, one meaning."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, or_

from webapp.models.money import RECEIPT_STATUSES, Receipt

RECEIPT_KINDS = ("single", "annual")


@dataclass(frozen=True)
class ReceiptFilter:
    """What a receipts list is narrowed to (each part optional; an unknown status or kind
    narrows nothing, as "Any" does)."""

    number: int | None = None
    status: str = ""
    kind: str = ""
    year: int | None = None
    donor: str = ""  # part of the donor's email or name, in any case

    def apply(self, query: Select) -> Select:
        """`query` narrowed to the receipts that match."""
        if self.number is not None:
            query = query.where(Receipt.number == self.number)
        if self.status in RECEIPT_STATUSES:
            query = query.where(Receipt.status == self.status)
        if self.kind in RECEIPT_KINDS:
            query = query.where(Receipt.kind == self.kind)
        if self.year is not None:
            query = query.where(Receipt.tax_year == self.year)
        if donor := self.donor.strip().lower():
            # % and _ are the words typed, not wildcards ("100%" or "ann_lee" find what they say)
            query = query.where(
                or_(
                    func.lower(Receipt.donor_email).contains(donor, autoescape=True),
                    func.lower(Receipt.donor_name).contains(donor, autoescape=True),
                )
            )
        return query
