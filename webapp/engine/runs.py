"""Starting, dispatching, stopping, killing and retrying runs: what the web asks of the engine."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, select, update

from webapp.engine import queueing
from webapp.engine.followups import after_run_ended
from webapp.engine.states import RunState
from webapp.engine.transitions import log, move
from webapp.extensions import db
from webapp.jobtypes import REGISTRY
from webapp.models.base import utcnow
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.models.users import User

HOLDING = [s for s in RunState if s.holds_job]


class RunActionError(ValueError):
    """An action that does not apply to the run as it is now (shown to the user)."""


def start_run(job: Job, user: User | None, *, trigger: str = "manual") -> Run:
    """Create a queued run of `job` and hand it to a worker when the job is free."""
    locked = db.session.execute(
        select(Job).where(Job.id == job.id).with_for_update()
    ).scalar_one()
    locked.last_run_number += 1
    run = Run(
        job_id=job.id,
        owner_id=job.owner_id,
        started_by_id=user.id if user else None,
        job_type=job.job_type,
        job_name=job.name,
        number=locked.last_run_number,
        state=RunState.QUEUED,
        trigger=trigger,
        checkpoint={},
    )
    db.session.add(run)
    db.session.flush()
    who = user.display_name if user else "the scheduler"
    log(run, f"Run #{run.number} requested by {who} ({trigger}).")
    db.session.commit()
    dispatch_next(job.id)
    return run


def dispatch_next(job_id: int | None) -> Run | None:
    """Enqueue the oldest waiting run of a job unless another run of it is busy."""
    if job_id is None:
        return None
    db.session.execute(select(Job.id).where(Job.id == job_id).with_for_update())
    candidate = db.session.execute(
        select(Run.id)
        .where(Run.job_id == job_id, Run.state == RunState.QUEUED, Run.rq_job_id.is_(None))
        .order_by(Run.id)
        .limit(1)
    ).scalar()
    if candidate is None:
        db.session.commit()
        return None
    other = Run.__table__.alias("other")
    busy = exists().where(
        other.c.job_id == job_id,
        (other.c.state.in_([s.value for s in HOLDING]))
        | ((other.c.state == RunState.QUEUED.value) & other.c.rq_job_id.is_not(None)),
    )
    rq_job_id = f"run-{candidate}-{uuid.uuid4().hex[:8]}"
    claimed = db.session.execute(
        update(Run)
        .where(Run.id == candidate, Run.rq_job_id.is_(None), ~busy)
        .values(rq_job_id=rq_job_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not claimed:
        return None
    try:
        queueing.enqueue_run(candidate, rq_job_id)
    except Exception:
        # Redis is unreachable: leave the run waiting; the reconciler dispatches it later.
        db.session.execute(update(Run).where(Run.id == candidate).values(rq_job_id=None))
        db.session.commit()
        current_app.logger.exception("could not enqueue run %s", candidate)
        return None
    run = db.session.get(Run, candidate)
    db.session.refresh(run)
    return run


def queue_position(run: Run) -> tuple[int, Run | None]:
    """(place in the job's waiting line, the run it waits for) for a queued run."""
    ahead = db.session.execute(
        select(Run)
        .where(Run.job_id == run.job_id, Run.id < run.id,
               Run.state.in_([RunState.QUEUED, *HOLDING]))
        .order_by(Run.id)
    ).scalars().all()
    blocking = next((r for r in ahead if r.state.holds_job), ahead[0] if ahead else None)
    return len(ahead) + 1, blocking


def schedule_run(job: Job, user: User | None, when: datetime, *,
                 trigger: str = "manual", planned_for: datetime | None = None) -> Run:
    """Create a run that waits, scheduled, until `when` (naive UTC), then joins the queue."""
    locked = db.session.execute(
        select(Job).where(Job.id == job.id).with_for_update()
    ).scalar_one()
    locked.last_run_number += 1
    run = Run(job_id=job.id, owner_id=job.owner_id, started_by_id=user.id if user else None,
              job_type=job.job_type, job_name=job.name, number=locked.last_run_number,
              state=RunState.SCHEDULED, trigger=trigger, checkpoint={}, scheduled_for=when,
              planned_for=planned_for)
    db.session.add(run)
    db.session.flush()
    log(run, f"Run #{run.number} scheduled by {user.display_name if user else 'the scheduler'}.")
    db.session.commit()
    run.rq_job_id = queueing.schedule_promotion(run.id, when)
    db.session.commit()
    return run


def _after_cancel(run: Run, phase: str) -> None:
    job_type = REGISTRY.get(run.job_type)
    if job_type is not None:
        job_type.after_cancel(run, phase)


def request_stop(run: Run, user: User) -> str:
    """Stop a run: cancel it if it has not started, else ask it to stop at the next batch."""
    if run.state in (RunState.SCHEDULED, RunState.QUEUED):
        if run.state is RunState.SCHEDULED:
            queueing.cancel_scheduled(run.rq_job_id)
        else:
            queueing.cancel_rq_job(run.rq_job_id)
        move(run, RunState.CANCELLED, note=f"Cancelled by {user.display_name} before it started.")
        _after_cancel(run, "before_start")
        db.session.commit()
        dispatch_next(run.job_id)
        after_run_ended(run)
        return "The run was cancelled before it started."
    if run.state is RunState.PAUSED:
        move(run, RunState.CANCELLED, note=f"Cancelled by {user.display_name} while paused.")
        _after_cancel(run, "processing")
        db.session.commit()
        dispatch_next(run.job_id)
        after_run_ended(run)
        return "The paused run was cancelled."
    if run.state.is_running:
        if run.control != "stop":
            run.control, run.control_at = "stop", utcnow()
            log(run, f"Stop requested by {user.display_name}; stopping at the next batch.")
            db.session.commit()
        if run.state is RunState.INITIALIZING:
            return "Cancelling during extraction: nothing has been processed yet."
        return "Stopping at the next batch boundary; what was already saved stays."
    raise RunActionError(f"A {run.state.value} run cannot be stopped.")


def request_pause(run: Run, user: User) -> str:
    """Pause a processing run: the batch in flight finishes, then it waits, paused."""
    job_type = REGISTRY.get(run.job_type)
    if job_type is None or not job_type.can_pause:
        raise RunActionError("This kind of run cannot be paused.")
    if run.state is not RunState.PROCESSING:
        raise RunActionError(f"Only a processing run can be paused (this one is {run.state.value}).")
    if run.control is None:
        run.control, run.control_at = "pause", utcnow()
        log(run, f"Pause requested by {user.display_name}; pausing after the batch in flight.")
        db.session.commit()
    return "Pausing after the batch in flight."


def resume_run(run: Run, user: User) -> str:
    """Resume a paused run with the records not processed yet."""
    if run.state is not RunState.PAUSED:
        raise RunActionError("Only a paused run can be resumed.")
    move(run, RunState.QUEUED, note=f"Resumed by {user.display_name}.")
    run.rq_job_id, run.control = None, None
    db.session.commit()
    dispatch_next(run.job_id)
    return "Resumed: it continues with the records not processed yet."


def cancel_paused(run: Run, user: User) -> str:
    """Cancel a paused run (a processing run must be paused first)."""
    if run.state is not RunState.PAUSED:
        raise RunActionError("Pause the run first: only a paused run can be cancelled.")
    return request_stop(run, user)


def can_kill(run: Run) -> bool:
    """A stop was asked for long enough ago and the run is still executing."""
    if run.control != "stop" or not run.state.is_running or run.control_at is None:
        return False
    waited = utcnow() - run.control_at
    return waited >= timedelta(seconds=current_app.config["KILL_AFTER_SECONDS"])


def kill_run(run: Run, user: User) -> str:
    """Hard-stop the work horse of a run that did not stop in time, and mark it cancelled."""
    if not user.is_admin:
        raise RunActionError("Only an admin can kill a run.")
    if not can_kill(run):
        raise RunActionError("Kill is offered only when a run has not stopped 30 seconds after Stop.")
    if run.rq_job_id:
        queueing.kill_work_horse(run.rq_job_id)
    reason = (
        f"Killed by {user.display_name}: it had not stopped "
        f"{current_app.config['KILL_AFTER_SECONDS']} seconds after Stop."
    )
    phase = "extraction" if run.state is RunState.INITIALIZING else "processing"
    if run.state is RunState.PROCESSING:
        move(run, RunState.PAUSED)
    run.error = reason
    move(run, RunState.CANCELLED, note=reason + f" {run.progress_done:,} records were done.")
    run.control = None
    _after_cancel(run, phase)
    db.session.commit()
    dispatch_next(run.job_id)
    after_run_ended(run)
    return "The run was killed."


def retry_run(run: Run, user: User) -> str:
    """Queue a failed run again; it continues from its checkpoint."""
    if run.state is not RunState.FAILED:
        raise RunActionError("Only a failed run can be retried.")
    move(run, RunState.QUEUED, note=f"Retry requested by {user.display_name}.")
    run.rq_job_id = None
    run.control = None
    run.error = None
    run.heartbeat_at = None
    db.session.commit()
    dispatch_next(run.job_id)
    return "The run was queued again and will continue from where it stopped."


def dismiss(run: Run) -> None:
    """Remove a finished run from the monitor (it stays in History)."""
    if not run.state.is_finished:
        raise RunActionError("Only a finished run can be removed from the monitor.")
    run.in_monitor = False
    db.session.commit()


def mark_downloaded(run: Run) -> None:
    """Record the first download of a result; the run leaves the monitor."""
    if run.downloaded_at is None:
        run.downloaded_at = utcnow()
    run.in_monitor = False
    db.session.commit()
