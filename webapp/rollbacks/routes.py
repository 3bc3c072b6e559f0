"""Rollback Transaction Data Import: the preview and confirmation that undo one import."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("rollbacks", __name__, url_prefix="/rollbacks")
