"""The supporters list: search by email or name, a page at a time."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_login import login_required
from sqlalchemy import Select, func, or_, select

from webapp.extensions import db
from webapp.models.people import Supporter
from webapp.paging import Keyset, KeysetPage

bp = Blueprint("supporters", __name__, url_prefix="/supporters")


def matching(q: str) -> Select:
    """Supporters whose email or name contains `q` (any case); every supporter for an empty `q`."""
    query = select(Supporter)
    if q:
        like = f"%{q.lower()}%"
        query = query.where(
            or_(
                Supporter.email.like(like),
                func.lower(Supporter.last_name).like(like),
                func.lower(Supporter.first_name).like(like),
            )
        )
    return query


def supporters_page(q: str, keyset: Keyset) -> KeysetPage[Supporter]:
    """One page of the supporters matching `q`, newest first."""
    return keyset.page(db.session.execute(keyset.narrow(matching(q), Supporter.id)).scalars().all())


@bp.route("/")
@login_required
def index():
    """Supporters, newest first, with search."""
    q = request.args.get("q", "").strip()
    page = supporters_page(q, Keyset.from_request(current_app.config["PAGE_SIZE"]))
    total = db.session.execute(select(func.count()).select_from(Supporter)).scalar_one()
    return render_template("supporters/index.html", supporters=page.items, page=page, q=q, total=total)
