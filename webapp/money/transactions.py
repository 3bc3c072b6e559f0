"""Which transactions a user sees, and their totals by currency (the Transactions page, a
supporter's page)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Select, func, select

from webapp.extensions import db
from webapp.models.money import Transaction
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
