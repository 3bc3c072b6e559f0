"""The RQ job function: executes one run on a worker, id in, context free."""

from __future__ import annotations

import os
import threading
import traceback

from flask import current_app
from sqlalchemy import Engine, update

from webapp.engine.context import RunContext, RunPaused, RunStopped
from webapp.engine.followups import after_run_ended
from webapp.engine.planner import blackout_decision, missed_decision, overlap_decision
from webapp.engine.runs import dispatch_next
from webapp.engine.states import RunState
from webapp.engine.transitions import move
from webapp.extensions import db
from webapp.jobtypes import JobType, get_job_type
from webapp.models.base import utcnow
from webapp.models.runs import Run

_engine_pid: int | None = None


def _fresh_connections_after_fork() -> None:
    """A forked work horse must not reuse its parent's database connections."""
    global _engine_pid
    if _engine_pid is not None and _engine_pid != os.getpid():
        db.engine.dispose(close=False)
    _engine_pid = os.getpid()


class Heartbeat(threading.Thread):
    """Writes the run's heartbeat while it executes, so the reconciler can tell it is alive."""

    def __init__(self, engine: Engine, run_id: int, every: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{run_id}")
        self.engine, self.run_id, self.every = engine, run_id, every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        update(Run).where(Run.id == self.run_id).values(heartbeat_at=utcnow())
                    )
            except Exception:  # a missed beat is retried at the next tick
                continue


def execute_run(run_id: int) -> str:
    """Execute run `run_id` through its job type; the Run row records everything."""
    _fresh_connections_after_fork()
    run = db.session.get(Run, run_id)
    if run is None or run.state is not RunState.QUEUED:
        return "not queued"  # cancelled or taken over while it waited on the queue
    job_type = get_job_type(run.job_type)
    move(run, RunState.PROCESSING if run.request_id else RunState.INITIALIZING)
    run.heartbeat_at = utcnow()
    db.session.commit()
    heartbeat = Heartbeat(db.engine, run.id, current_app.config["HEARTBEAT_SECONDS"])
    heartbeat.start()
    try:
        job_type.run(RunContext(run))
        move(run, job_type.final_state)
        run.progress_done = run.progress_total or run.progress_done
        RunContext(run).log(job_type.summary(run))
        db.session.commit()
        return run.state.value
    except RunStopped:
        db.session.rollback()
        _stopped(run, job_type)
        return run.state.value
    except RunPaused:
        db.session.rollback()
        move(run, RunState.PAUSED, note="Paused; resume continues with the records not done yet.")
        run.control = None
        db.session.commit()
        return run.state.value
    except Exception as exc:
        db.session.rollback()
        run = db.session.get(Run, run_id)
        run.error = f"{type(exc).__name__}: {exc}"
        move(run, RunState.FAILED, note=f"Failed: {run.error}")
        RunContext(run).log(traceback.format_exc(limit=8), level="debug")
        db.session.commit()
        raise
    finally:
        heartbeat.stopped.set()
        dispatch_next(run.job_id)
        if run.state.is_finished or run.state is RunState.COLLECTING:
            after_run_ended(run)


def _stopped(run: Run, job_type: JobType) -> None:
    """Record a stop at a batch boundary: what was committed stays, and the log says how much."""
    db.session.refresh(run)
    noun_past = job_type.noun_past
    done = run.progress_done
    total = run.progress_total
    phase = "processing"
    if run.state is RunState.INITIALIZING:
        note = "Cancelled during extraction: nothing was processed"
        note += " and nobody was contacted." if noun_past == "sent" else "."
        phase = "extraction"
    else:
        move(run, RunState.PAUSED)
        of_total = f" of {total:,}" if total else ""
        note = f"Stopped at a batch boundary: {done:,}{of_total} records were {noun_past} and stay so."
    move(run, RunState.CANCELLED, note=note)
    run.control = None
    job_type.after_cancel(run, phase)
    db.session.commit()


def promote_scheduled(run_id: int) -> str:
    """rq-scheduler calls this at a scheduled run's time: it joins its job's queue."""
    _fresh_connections_after_fork()
    run = db.session.get(Run, run_id)
    if run is None or run.state is not RunState.SCHEDULED:
        return "not scheduled"
    if run.trigger == "schedule":
        reason = missed_decision(run) or blackout_decision(run) or overlap_decision(run)
        if reason:
            move(run, RunState.SKIPPED, note=reason)
            run.error = reason
            db.session.commit()
            after_run_ended(run, "missed" if reason.startswith("Missed") else "ended")
            return "skipped"
    move(run, RunState.QUEUED, note="Scheduled time reached; queued.")
    run.rq_job_id = None
    db.session.commit()
    dispatch_next(run.job_id)
    return "queued"
