"""Small helpers shared by the forms of every area."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from flask import current_app
from wtforms import SelectChoice

from webapp.models.base import utcnow
from webapp.rules.clock import to_local


def choices(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    """(value, label) pairs as WTForms select choices."""
    return [SelectChoice(value, label) for value, label in pairs]


def local_today() -> date:
    """Today in the account time zone (the day a person picking a date means)."""
    return to_local(utcnow(), current_app.config["TIMEZONE"]).date()
