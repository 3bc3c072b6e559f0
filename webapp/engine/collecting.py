"""Ends the collecting window of email runs, and promotes scheduled runs whose timed enqueue
was lost (the scheduler process calls these)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from webapp.engine.runner import promote_scheduled
from webapp.engine.states import RunState
from webapp.engine.transitions import move
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.runs import Run

LOST_AFTER = timedelta(minutes=2)


def finish_collecting() -> int:
    """Collecting runs whose window is over become completed."""
    due = db.session.execute(
        select(Run).where(Run.state == RunState.COLLECTING, Run.collect_until <= utcnow())
    ).scalars().all()
    for run in due:
        move(run, RunState.COMPLETED, note="The collecting window is over: results are final.")
    db.session.commit()
    return len(due)


def promote_overdue() -> int:
    """Scheduled runs well past their time (their timed enqueue was lost) are queued now."""
    overdue = db.session.execute(
        select(Run.id).where(Run.state == RunState.SCHEDULED,
                             Run.scheduled_for <= utcnow() - LOST_AFTER)
    ).scalars().all()
    for run_id in overdue:
        promote_scheduled(run_id)
    return len(overdue)
