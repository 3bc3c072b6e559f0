"""Email Bounces: bounce data of a campaign send or a date range, as a CSV job."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("bounces", __name__, url_prefix="/bounce-exports")
