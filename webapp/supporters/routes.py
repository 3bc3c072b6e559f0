"""The supporters list: search by email or name, a page at a time."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_login import login_required
from sqlalchemy import func, or_, select

from webapp.extensions import db
from webapp.models.people import Supporter
from webapp.paging import Keyset

bp = Blueprint("supporters", __name__, url_prefix="/supporters")


@bp.route("/")
@login_required
def index():
    """Supporters, newest first, with search."""
    q = request.args.get("q", "").strip()
    keyset = Keyset.from_request(current_app.config["PAGE_SIZE"])
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
    page = keyset.page(db.session.execute(keyset.narrow(query, Supporter.id)).scalars().all())
    total = db.session.execute(select(func.count()).select_from(Supporter)).scalar_one()
    return render_template("supporters/index.html", supporters=page.items, page=page, q=q, total=total)
