"""Moving a Run between states: the checks in states.py plus the bookkeeping that goes with it."""

from __future__ import annotations

from datetime import datetime

from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.runs import Run, RunLogLine
from webapp.rules.states import RunState, check_transition


def move(run: Run, target: RunState, *, note: str | None = None, at: datetime | None = None) -> None:
    """Move `run` to `target` (refusing illegal moves) and keep its times and monitor flag
    (`at`: when the move happened, if not now)."""
    check_transition(run.state, target)
    now = at or utcnow()
    if target in (RunState.INITIALIZING, RunState.PROCESSING) and run.started_at is None:
        run.started_at = run.sort_at = now
    if target.is_finished:
        run.finished_at = now
    if target is RunState.QUEUED:
        run.finished_at = None
    run.state = target
    run.in_monitor = stays_in_monitor(run)
    if note:
        log(run, note, level="error" if target is RunState.FAILED else "info")


def stays_in_monitor(run: Run) -> bool:
    """Active and pending runs, failed ones, and results not yet downloaded stay in the monitor."""
    if not run.state.is_finished:
        return True
    if run.state is RunState.FAILED:
        return True
    return run.has_result and run.downloaded_at is None


def log(run: Run, message: str, *, level: str = "info") -> None:
    """Add a line to the run's log (written with the next commit)."""
    db.session.add(RunLogLine(run_id=run.id, message=message, level=level))
