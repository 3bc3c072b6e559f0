"""The supporters list (search by email or name, a page at a time) and a supporter's page with
their transactions."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models.money import TRANSACTION_KINDS, Transaction
from webapp.models.people import SUPPORTER_FIELDS, Supporter
from webapp.models.runs import Run
from webapp.money.transactions import totals_by_currency, visible_transactions
from webapp.paging import Keyset
from webapp.supporters.queries import supporters_page

bp = Blueprint("supporters", __name__, url_prefix="/supporters")


@bp.route("/")
@login_required
def index():
    """Supporters, newest first, with search."""
    q = request.args.get("q", "").strip()
    page = supporters_page(q, Keyset.from_request(current_app.config["PAGE_SIZE"]))
    total = db.session.execute(select(func.count()).select_from(Supporter)).scalar_one()
    return render_template("supporters/index.html", supporters=page.items, page=page, q=q, total=total)


@bp.route("/<int:supporter_id>")
@login_required
def detail(supporter_id: int):
    """A supporter's fields and the transactions of theirs the user may see, with totals."""
    supporter = db.session.get(Supporter, supporter_id)
    if supporter is None:
        abort(404)
    query = visible_transactions(current_user).where(Transaction.supporter_id == supporter.id)
    keyset = Keyset.from_request(current_app.config["PAGE_SIZE"])
    page = keyset.page(db.session.execute(keyset.narrow(query, Transaction.id)).scalars().all())
    run_ids = {t.run_id for t in page.items if t.run_id is not None}
    runs = {run.id: run for run in db.session.execute(select(Run).where(Run.id.in_(run_ids))).scalars()}
    return render_template(
        "supporters/detail.html",
        supporter=supporter,
        fields=[(field.label, getattr(supporter, field.name)) for field in SUPPORTER_FIELDS],
        transactions=page.items,
        page=page,
        totals=totals_by_currency(query),
        runs=runs,
        kinds=TRANSACTION_KINDS,
    )
