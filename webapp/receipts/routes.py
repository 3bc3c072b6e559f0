"""Receipts: the receipt template, the receipts issued, and the receipt generators' forms."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("receipts", __name__, url_prefix="/receipts")


@bp.route("/")
@login_required
def index():
    return render_template("receipts/index.html")
