"""Which transactions a user sees, narrowed by a filter, and their totals by currency (the
Transactions page, a supporter's page, the API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select

from webapp.extensions import db
from webapp.models.money import Transaction
from webapp.models.people import Supporter
from webapp.models.runs import Run
from webapp.models.users import User


def visible_transactions(user: User) -> Select:
    """Transactions `user` may see, as runs go (permissions.visible_runs_of_viewer): every
    user's for a super admin, else those of the user's own imports (Transaction.owner_id)."""
    query = select(Transaction)
    return query if user.is_super_admin else query.where(Transaction.owner_id == user.id)


def totals_by_currency(query: Select) -> list[tuple[str, Decimal, int]]:
    """(currency, sum of amounts, number of transactions) of the transactions `query` selects,
    by currency code."""
    matched = query.order_by(None).limit(None).subquery()
    totals = select(matched.c.currency, func.sum(matched.c.amount), func.count()).group_by(matched.c.currency)
    return [
        (currency, Decimal(total or 0).quantize(Decimal("0.01")), count)
        for currency, total, count in db.session.execute(totals.order_by(matched.c.currency))
    ]


@dataclass(frozen=True)
class TransactionFilter:
    """What the Transactions page is narrowed to (each part optional)."""

    date_from: date | None = None
    date_to: date | None = None
    appeal: str = ""
    payment_method: str = ""
    kind: str = ""
    email: str = ""
    run_id: int | None = None

    def args(self) -> dict[str, Any]:
        """The filter as query values, for the pager."""
        values = {
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "appeal": self.appeal,
            "method": self.payment_method,
            "type": self.kind,
            "email": self.email,
            "run": self.run_id or "",
        }
        return {name: value for name, value in values.items() if value}

    def apply(self, query: Select) -> Select:
        """`query` narrowed to the transactions that match."""
        if self.date_from is not None:
            query = query.where(Transaction.received_on >= self.date_from)
        if self.date_to is not None:
            query = query.where(Transaction.received_on <= self.date_to)
        if self.appeal:
            query = query.where(Transaction.appeal == self.appeal)
        if self.payment_method:
            query = query.where(Transaction.payment_method == self.payment_method)
        if self.kind:
            query = query.where(Transaction.kind == self.kind)
        if self.run_id is not None:
            query = query.where(Transaction.run_id == self.run_id)
        if self.email:
            matching = select(Supporter.id).where(Supporter.email.contains(self.email, autoescape=True))
            query = query.where(Transaction.supporter_id.in_(matching))
        return query


def page_links(transactions: list[Transaction]) -> tuple[dict[int, str], dict[int, Run]]:
    """The supporters' emails and the import runs of a page of transactions, by id."""
    supporter_ids = {t.supporter_id for t in transactions if t.supporter_id is not None}
    run_ids = {t.run_id for t in transactions if t.run_id is not None}
    emails = {
        supporter_id: email
        for supporter_id, email in db.session.execute(
            select(Supporter.id, Supporter.email).where(Supporter.id.in_(supporter_ids))
        )
    }
    runs = {run.id: run for run in db.session.execute(select(Run).where(Run.id.in_(run_ids))).scalars()}
    return emails, runs
