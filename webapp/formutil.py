"""Small helpers shared by the forms of every area."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

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


def form_problems(form: Any) -> str:
    """A refused form's errors in one sentence each, named by their field's label ("From: This
    field is required."), for a message shown after a redirect, away from the fields."""
    return " ".join(f"{field.label.text}: {error}" for field in form for error in field.errors)
