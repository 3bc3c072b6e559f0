"""Ends the collecting window of email runs (the scheduler process calls it)."""

from __future__ import annotations

from sqlalchemy import select

from webapp.engine.transitions import move
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.runs import Run
from webapp.rules.states import RunState


def finish_collecting() -> int:
    """Collecting runs whose window is over become completed."""
    due = (
        db.session.execute(select(Run).where(Run.state == RunState.COLLECTING, Run.collect_until <= utcnow()))
        .scalars()
        .all()
    )
    for run in due:
        move(run, RunState.COMPLETED, note="The collecting window is over: results are final.")
    db.session.commit()
    return len(due)
