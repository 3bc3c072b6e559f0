"""Transactions: the Transaction Data Import's upload and mapping, and the list of all transactions."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("transactions", __name__, url_prefix="/transactions")


@bp.route("/")
@login_required
def index():
    return render_template("transactions/index.html")
