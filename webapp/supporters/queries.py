"""Supporters found by a search, a page at a time (the Supporters page and the API)."""

from __future__ import annotations

from sqlalchemy import Select, func, or_, select

from webapp.extensions import db
from webapp.models.people import Supporter
from webapp.paging import Keyset, KeysetPage


def matching(q: str) -> Select:
    """Supporters whose email or name contains `q` (any case, `%` and `_` taken as themselves);
    every supporter for an empty `q`."""
    query = select(Supporter)
    if q:
        text = q.lower()
        query = query.where(
            or_(
                Supporter.email.contains(text, autoescape=True),
                func.lower(Supporter.last_name).contains(text, autoescape=True),
                func.lower(Supporter.first_name).contains(text, autoescape=True),
            )
        )
    return query


def supporters_page(q: str, keyset: Keyset) -> KeysetPage[Supporter]:
    """One page of the supporters matching `q`, newest first."""
    return keyset.page(db.session.execute(keyset.narrow(matching(q), Supporter.id)).scalars().all())
