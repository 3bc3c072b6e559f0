"""The supporters list: search by email or name, a page at a time."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_login import login_required
from sqlalchemy import func, or_, select

from webapp.extensions import db
from webapp.models.people import Supporter
from webapp.request_args import int_arg

bp = Blueprint("supporters", __name__, url_prefix="/supporters")


@bp.route("/")
@login_required
def index():
    """Supporters, newest first, with search."""
    q = request.args.get("q", "").strip()
    before = int_arg("before")
    per_page = current_app.config["PAGE_SIZE"]
    query = select(Supporter).order_by(Supporter.id.desc()).limit(per_page + 1)
    if q:
        like = f"%{q.lower()}%"
        query = query.where(or_(Supporter.email.like(like),
                                func.lower(Supporter.last_name).like(like),
                                func.lower(Supporter.first_name).like(like)))
    if before is not None:
        query = query.where(Supporter.id < before)
    rows = db.session.execute(query).scalars().all()
    total = db.session.execute(select(func.count()).select_from(Supporter)).scalar_one()
    return render_template("supporters/index.html", supporters=rows[:per_page],
                           has_more=len(rows) > per_page, q=q, total=total)
