"""Supporter Delete: preview, confirm and delete supporters on request."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("erasure", __name__, url_prefix="/supporter-deletes")
