"""How long a job's runs usually take: the one query behind "twice as long as usual" notices
and the schedule page's "runs come faster than the job takes" warning."""

from __future__ import annotations

import statistics

from sqlalchemy import select

from webapp.extensions import db
from webapp.models.runs import Run
from webapp.rules.states import RunState

RECENT_RUNS = 15  # the typical duration is the median of this many latest completed runs


def typical_run_seconds(job_id: int) -> float | None:
    """The median run time, in seconds, of the job's latest completed runs (None without one)."""
    rows = db.session.execute(
        select(Run.started_at, Run.finished_at)
        .where(
            Run.job_id == job_id,
            Run.state == RunState.COMPLETED,
            Run.started_at.is_not(None),
            Run.finished_at.is_not(None),
        )
        .order_by(Run.id.desc())
        .limit(RECENT_RUNS)
    ).all()
    # the query keeps only runs with both times; the `is not None` checks narrow the types
    seconds = [(f - s).total_seconds() for s, f in rows if s is not None and f is not None]
    return statistics.median(seconds) if seconds else None
