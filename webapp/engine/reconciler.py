"""Reconciles runs with their workers: a run whose worker died is failed with a plain reason,
and a queued run that lost its RQ job is dispatched again."""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, select, update

from webapp import metrics
from webapp.engine import queueing
from webapp.engine.followups import after_run_ended
from webapp.engine.runs import arm_timed_job, dispatch
from webapp.engine.transitions import db_now, move
from webapp.extensions import db
from webapp.jobtypes import job_type_for, types_where
from webapp.models.runs import Run
from webapp.rules.clock import format_local
from webapp.rules.states import RunState

log = logging.getLogger("conveyor.scheduler")
LOOK_AGAIN_AFTER = 0.5  # seconds


def worker_died_reason(run: Run, tz_name: str) -> str:
    """'the worker running this job stopped at 2:02 PM EST; 41,200 of 100,000 rows were imported'."""
    at = format_local(run.heartbeat_at or run.started_at, tz_name, with_date=False)
    done = job_type_for(run.job_type).done_so_far(run)
    return f"the worker running this job stopped at {at}; {done}. Retry continues from there."


def reconcile() -> dict[str, int]:
    """One pass: fail runs whose heartbeat stopped, re-dispatch queued runs that lost their job.
    Heartbeats are the database's time, and so is the time they are compared with."""
    now = db_now()
    dead_after = timedelta(seconds=current_app.config["DEAD_AFTER_SECONDS"])
    tz_name = current_app.config["TIMEZONE"]
    failed = redispatched = 0
    running = (
        db.session.execute(
            select(Run).where(
                Run.state.in_([RunState.INITIALIZING, RunState.PROCESSING]),
                Run.job_type.not_in(types_where("drives_chain")),
            )  # a group run has no worker: its steps do
        )
        .scalars()
        .all()
    )
    for run in running:
        last_sign = run.heartbeat_at or run.started_at or run.created_at
        if now - last_sign < dead_after:
            continue
        try:
            run.error = worker_died_reason(run, tz_name)
            move(run, RunState.FAILED, note=f"Failed: {run.error}")
            run.control = None
            db.session.commit()
        except Exception:  # one run that cannot be recorded never stops the others
            db.session.rollback()
            log.exception("could not fail run %s whose worker died", run.id)
            continue
        failed += 1
        after_run_ended(run)
        dispatch()
    waiting = (
        db.session.execute(select(Run).where(Run.state == RunState.QUEUED, Run.rq_job_id.is_not(None)))
        .scalars()
        .all()
    )
    db.session.commit()
    # (read again after that commit: a run a dispatcher released meanwhile has no job to lose)
    lost = [
        (run.id, rq_job_id)
        for run in waiting
        if (rq_job_id := run.rq_job_id) is not None and queueing.never_executed(rq_job_id)
    ]
    if lost:
        # a dispatcher may be between its claim and its enqueue, a worker between taking a job
        # off the queue and starting it
        time.sleep(LOOK_AGAIN_AFTER)
    for run_id, rq_job_id in lost:
        if not queueing.never_executed(rq_job_id):
            continue
        # an UPDATE's result is a CursorResult (Session.execute is typed as returning a Result)
        redispatched += cast(
            CursorResult[Any],
            db.session.execute(
                update(Run)
                .where(Run.id == run_id, Run.state == RunState.QUEUED, Run.rq_job_id == rq_job_id)
                .values(rq_job_id=None)
                .execution_options(synchronize_session=False)
            ),
        ).rowcount
        db.session.commit()
    dispatch()
    outcome = {"failed": failed, "redispatched": redispatched, "armed": _arm_unarmed()}
    with contextlib.suppress(*queueing.UNREACHABLE):  # counted for /metrics while Redis answers
        metrics.count_actions(queueing.redis_connection(), current_app.config["QUEUE_NAME"], outcome)
    return outcome


def _arm_unarmed() -> int:
    """Scheduled runs saved while Redis was unreachable get their timed job now."""
    unarmed = (
        db.session.execute(
            select(Run).where(
                Run.state == RunState.SCHEDULED, Run.rq_job_id.is_(None), Run.scheduled_for.is_not(None)
            )
        )
        .scalars()
        .all()
    )
    return sum(int(arm_timed_job(run)) for run in unarmed)
