"""The RQ job function: executes one run on a worker, id in, context free."""

from __future__ import annotations

import gc
import os
import threading

from flask import current_app
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import configure_mappers

from webapp.engine import queueing
from webapp.engine.chains import hand_over
from webapp.engine.context import RunContext, RunPaused, RunStopped
from webapp.engine.followups import after_run_ended
from webapp.engine.runs import dispatch, enqueue_or_release, new_run
from webapp.engine.transitions import db_now, move
from webapp.errors import JobError
from webapp.extensions import db
from webapp.jobtypes import JobType, get_job_type
from webapp.jobtypes.job_group import GroupDefinition, JobGroup
from webapp.jobtypes.user_data_export import UserDataExport
from webapp.models.base import utcnow
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.models.users import User
from webapp.rules.states import RunState

_engine_pid: int | None = None


def _fresh_connections_after_fork() -> None:
    """A forked work horse must not reuse its parent's database connections."""
    global _engine_pid
    if _engine_pid is not None and _engine_pid != os.getpid():
        db.engine.dispose(close=False)
    _engine_pid = os.getpid()


def warm_up() -> None:
    """Before a worker forks its first work horse: configure the ORM mappers and compile the
    engine's common statements once, so each horse inherits them instead of redoing them."""
    configure_mappers()
    db.session.get(Run, 0)
    db.session.get(Job, 0)
    _rehearse_a_hand_over()
    dispatch()  # also hands out any run that waited for a worker
    db.session.remove()
    _fresh_connections_after_fork()  # marks the worker's own: each horse opens its own connections
    # what the worker holds now (modules, mappers, compiled statements) moves out of the
    # collector's reach: a full collection in a horse would touch, and so copy, every page of
    # it after the fork (tens of ms, between two steps of a chain); see gc.freeze's docs.
    # What it buys: bench/chain_bench.py's step gap p50 22 ms instead of 84 ms (the next step's
    # run made 3 ms instead of 64 ms after the step's end) (2026-11-30, 2 cores, loaded box)
    gc.collect()
    gc.freeze()


def _rehearse_a_hand_over() -> None:
    """Go once through a group step's end (_finish, as execute_run does) on a throw-away group
    run and step, inside a SAVEPOINT that is rolled back, and the outer transaction too.
    SQLAlchemy compiles a statement the first time a process runs it: done here, before the
    worker forks, every work horse inherits these compiled instead of compiling them again
    between two steps of a chain. What it buys: bench/chain_bench.py's step gap p50 22 ms
    instead of 32 ms (the next step's run made 3 ms instead of 12 ms after the step's end)
    (2026-11-30, 2 cores, loaded box)."""
    owner = db.session.execute(select(User).limit(1)).scalar()
    if owner is None:
        return
    try:
        savepoint = db.session.begin_nested()
        try:
            steps = [Job(owner_id=owner.id, job_type=UserDataExport.key, name="warm-up") for _ in range(2)]
            group = Job(owner_id=owner.id, job_type=JobGroup.key, name="warm-up")
            db.session.add_all([*steps, group])
            db.session.flush()
            GroupDefinition(steps=[job.id for job in steps]).save_to(group)
            group_run = new_run(group, owner, RunState.PROCESSING, trigger="group", progress_total=len(steps))
            step = new_run(
                steps[0], owner, RunState.PROCESSING, trigger="group", parent_run_id=group_run.id, step=1
            )
            step_id = step.id
            db.session.expunge_all()  # what follows reads the rows as a work horse does
            ending = db.session.get_one(Run, step_id)
            RunContext(ending).set_result("warm-up", "warm-up")  # as exports and imports end
            _finish(ending, get_job_type(UserDataExport.key))
            db.session.flush()
        finally:
            savepoint.rollback()
    finally:
        db.session.rollback()


class Heartbeat(threading.Thread):
    """Writes the run's heartbeat while it executes, so the reconciler can tell it is alive: the
    database's time, which the reconciler compares with the database's time again (the
    machines' own clocks may disagree)."""

    def __init__(self, engine: Engine, run_id: int, every: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{run_id}")
        self.engine, self.run_id, self.every = engine, run_id, every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                with self.engine.begin() as conn:
                    beat = db_now(conn)
                    conn.execute(update(Run).where(Run.id == self.run_id).values(heartbeat_at=beat))
            except Exception:  # a missed beat is retried at the next tick
                continue


def execute_run(run_id: int) -> str:
    """Execute run `run_id` through its job type; the Run row records everything."""
    entered = utcnow()  # the run starts now, if it is still this job's to run
    _fresh_connections_after_fork()
    run = db.session.get(Run, run_id)
    if run is None or run.state is not RunState.QUEUED:
        return "not queued"  # cancelled or taken over while it waited on the queue
    if run.rq_job_id != (queueing.current_job_id() or run.rq_job_id):
        return "not this run's job"  # a stale job: the run was handed out under another id
    job_type = get_job_type(run.job_type)
    move(run, RunState.PROCESSING if run.request_id else RunState.INITIALIZING, at=entered)
    run.heartbeat_at = db_now()
    db.session.commit()
    heartbeat = Heartbeat(db.engine, run.id, current_app.config["HEARTBEAT_SECONDS"])
    heartbeat.start()
    next_step = None
    try:
        job_type.run(RunContext(run))
        next_step = _finish(run, job_type)
        _commit_keeping_values()  # the horse ends here: what follows reads what it just wrote
        if next_step is not None and next_step.rq_job_id:  # (hand_over gave it this step's slot)
            enqueue_or_release(next_step.id, next_step.rq_job_id, job_type.lane)
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
        run = db.session.get(Run, run_id) or run  # (read again after the rollback)
        run.error = plain_reason(exc)
        move(run, RunState.FAILED, note=f"Failed: {run.error}")
        db.session.commit()
        raise  # RQ writes the traceback (which may quote data from SQL) to the worker's log only
    finally:
        heartbeat.stopped.set()
        if run.state.is_finished or run.state is RunState.COLLECTING:
            # a group step's end starts the next step first (unless it was handed over)
            after_run_ended(run, chain_continued=next_step is not None)
        if next_step is None:  # a handed-over step passed its slot on: nothing was freed
            dispatch()


def _finish(run: Run, job_type: JobType) -> Run | None:
    """A run's work is done: record its end and, for a group step whose chain goes on, create
    the next step's run holding this step's slot (returned, to be enqueued after the commit).
    The worker's warm-up rehearses this same function (_rehearse_a_hand_over)."""
    move(run, job_type.final_state)
    run.progress_done = run.progress_total or run.progress_done
    next_step = hand_over(run)
    # logged after the hand-over: its line goes in with the chain's lines, one INSERT
    RunContext(run).log(job_type.summary(run))
    return next_step


REASON_LIMIT = 200


def plain_reason(exc: BaseException) -> str:
    """A short reason for a person: a job type's own error says what went wrong in words; a
    database or other unexpected error is named without its SQL, parameters or data."""
    if isinstance(exc, JobError) or type(exc).__module__.startswith("webapp."):
        text = " ".join(str(exc).split())  # Conveyor's own errors are worded for people
        return text[: REASON_LIMIT - 1] + "…" if len(text) > REASON_LIMIT else text
    if isinstance(exc, DBAPIError | SQLAlchemyError):
        kind = (
            "the database refused a change"
            if isinstance(exc, IntegrityError)
            else "the database could not be reached or answered with an error"
        )
        return (
            f"{kind} ({type(getattr(exc, 'orig', None) or exc).__name__}); "
            "what was committed before stays, and Retry continues from there."
        )
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return (
            f"the file {os.path.basename(str(exc.filename))} is no longer there "
            "(FileNotFoundError); upload it again in a new job."
        )
    if isinstance(exc, OSError):
        detail = exc.strerror or str(exc)
        return (
            f"a file or network operation failed ({type(exc).__name__}: "
            f"{detail[:120]}); Retry continues from there."
        )
    return (
        f"an unexpected error ({type(exc).__name__}) stopped the run; the details are in "
        "the worker's log. Retry continues from where it stopped."
    )


def _commit_keeping_values() -> None:
    """Commit without expiring the session's objects (they hold what was just written), so
    reading them afterwards costs no query."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


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
        of_total = f" of {total:,}" if total else ""
        note = (
            f"Stopped at a batch boundary: {done:,}{of_total} {job_type.noun} were {noun_past} and stay so."
        )
    move(run, RunState.CANCELLED, note=note)
    run.control = None
    job_type.after_cancel(run, phase)
    db.session.commit()
