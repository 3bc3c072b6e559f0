"""Starting, dispatching, stopping, killing and retrying runs: what the web asks of the engine."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, Row, Select, Update, bindparam, exists, func, select, text, update
from sqlalchemy.orm.attributes import set_committed_value

from webapp.engine import handoff, queueing
from webapp.engine.followups import after_run_ended
from webapp.engine.transitions import log, move
from webapp.extensions import db
from webapp.jobtypes import job_type_for, lane_of, lane_types, types_where
from webapp.models.base import utcnow
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.models.users import User
from webapp.rules.clock import format_local
from webapp.rules.states import FINISHED, RunState

HOLDING = [s for s in RunState if s.holds_job]
DISPATCH_LOCK = 7_406_101  # the PostgreSQL advisory lock dispatchers take turns on


class RunActionError(ValueError):
    """An action that does not apply to the run as it is now (shown to the user)."""


@cache
def _next_run_number() -> Update:
    job = Job.__table__
    return (
        update(job)
        .where(job.c.id == bindparam("of_job"))
        .values(last_run_number=job.c.last_run_number + 1)
        .returning(job.c.last_run_number)
    )


def _next_number(job_id: int, job: Job | None) -> int | None:
    """The job's next run number, counted up in one UPDATE … RETURNING: two runs of a job
    numbered at once never get the same one (None when the job is gone)."""
    number = db.session.execute(_next_run_number(), {"of_job": job_id}).scalar()
    if number is not None and job is not None:
        set_committed_value(job, "last_run_number", number)
    return number


def take_number(run: Run) -> int | None:
    """Give a run its job's next number if it has none yet (flushed, not committed): a
    schedule's planned occurrence takes it when it fires, queued or skipped. None when the
    run's job was deleted."""
    if run.number is None and run.job_id is not None:
        run.number = _next_number(run.job_id, run.job)
    return run.number


def new_run(
    job: Job, user: User | int | None, state: RunState, *, trigger: str, numbered: bool = True, **fields
) -> Run:
    """A new Run row of `job` (flushed, not committed); `user` who asked for it (or their id).
    It takes the job's next number now, unless `numbered` is False: a schedule's planned
    occurrence is numbered only when it fires (take_number)."""
    run = Run(
        job_id=job.id,
        owner_id=job.owner_id,
        started_by_id=user.id if isinstance(user, User) else user,
        job_type=job.job_type,
        job_name=job.name,
        number=_next_number(job.id, job) if numbered else None,
        state=state,
        trigger=trigger,
        checkpoint={},
        **fields,
    )
    db.session.add(run)
    db.session.flush()
    return run


def start_run(job: Job, user: User | None, *, trigger: str = "manual") -> Run:
    """Create a queued run of `job` and hand it to a worker when a slot and the job are free."""
    run = new_run(job, user, RunState.QUEUED, trigger=trigger)
    who = user.display_name if user else "the scheduler"
    log(run, f"{run.label.capitalize()} requested by {who} ({trigger}).")
    db.session.commit()
    dispatch()
    return run


def _in_lane(run_table, lane: str):
    """Runs of the job types that wait in `lane` (a group run is in none: it holds its group
    but no slot, and its steps take the slots)."""
    email_types = lane_types("email")
    if lane == "email":
        return run_table.c.job_type.in_(email_types)
    return run_table.c.job_type.not_in([*email_types, *types_where("drives_chain")])


def _taking_a_slot(run_table, lane: str = "data"):
    """Runs that use one of a lane's slots (CONVEYOR_CONCURRENCY for data jobs,
    CONVEYOR_EMAIL_CONCURRENCY for sends): executing, or handed to a worker."""
    return _in_lane(run_table, lane) & (
        run_table.c.state.in_([RunState.INITIALIZING.value, RunState.PROCESSING.value])
        | ((run_table.c.state == RunState.QUEUED.value) & run_table.c.rq_job_id.is_not(None))
    )


def lane_limit(lane: str) -> int:
    """How many runs of a lane execute at once."""
    key = "EMAIL_CONCURRENCY" if lane == "email" else "CONCURRENCY"
    return max(1, int(current_app.config.get(key, 1)))


def _job_busy(run_table, job_id_column):
    """Another run of the same job holds it (running or paused) or was handed to a worker."""
    return exists().where(
        run_table.c.job_id == job_id_column,
        run_table.c.state.in_([s.value for s in HOLDING])
        | ((run_table.c.state == RunState.QUEUED.value) & run_table.c.rq_job_id.is_not(None)),
    )


@cache
def _job_busy_statement() -> Select:
    other = Run.__table__.alias("other")
    return select(_job_busy(other, bindparam("job_id")).where(other.c.id != bindparam("besides")))


def job_busy(job_id: int, *, besides: int) -> bool:
    """Whether a run of the job other than run `besides` holds it or was handed to a worker."""
    return bool(db.session.execute(_job_busy_statement(), {"job_id": job_id, "besides": besides}).scalar())


def _lock_dispatching() -> None:
    """Dispatchers in other processes wait here (PostgreSQL); SQLite serialises writers and
    every claim below is one conditional UPDATE."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DISPATCH_LOCK})


def dispatch(timed: Mapping[int, str] | None = None) -> dict[str, str]:
    """Hand waiting runs to workers, oldest first, while fewer runs than its lane's concurrency
    hold a slot of that lane, and never two runs of one job at once.

    `timed` maps runs whose timed RQ job just came due to that job's id: such a run goes out
    under its own job id, which is returned (with its lane) for rq-scheduler to put on that
    lane's queue; any other run is enqueued here under a fresh id."""
    timed = timed or {}
    other = Run.__table__.alias("other")
    _start_waiting_groups(other)
    going: dict[str, str] = {}
    for lane in queueing.LANES:
        _dispatch_lane(lane, timed, going, other)
    return going


def _dispatch_lane(lane: str, timed: Mapping[int, str], going: dict[str, str], other) -> None:
    """dispatch() for one lane: its waiting runs into its free slots."""
    limit = lane_limit(lane)
    in_use = select(func.count()).select_from(other).where(_taking_a_slot(other, lane))
    waiting = Run.__table__.alias("waiting")
    for _attempt in range(limit + 10):  # a lost race is retried; nothing loops forever
        _lock_dispatching()
        used = db.session.execute(in_use).scalar_one()  # a count: always one row
        if used >= limit:
            break
        candidate = db.session.execute(
            select(waiting.c.id)
            .where(
                waiting.c.state == RunState.QUEUED.value,
                waiting.c.rq_job_id.is_(None),
                _in_lane(waiting, lane),
                ~_job_busy(other, waiting.c.job_id),
            )
            .order_by(waiting.c.id)
            .limit(1)
        ).scalar()
        if candidate is None:
            break
        rq_job_id = timed.get(candidate) or queueing.new_run_job_id(candidate)
        # an UPDATE's result is a CursorResult (Session.execute is typed as returning a Result)
        claimed = cast(
            CursorResult[Any],
            db.session.execute(
                update(Run)
                .where(
                    Run.id == candidate,
                    Run.rq_job_id.is_(None),
                    ~_job_busy(other, Run.job_id),
                    in_use.scalar_subquery() < limit,
                )
                .values(rq_job_id=rq_job_id)
                .execution_options(synchronize_session=False)
            ),
        ).rowcount
        db.session.commit()
        if not claimed:
            continue
        if candidate in timed:
            going[rq_job_id] = lane
        elif not enqueue_or_release(candidate, rq_job_id, lane):
            break
        if used + 1 >= limit:
            break  # that was the last free slot
    db.session.commit()


def _start_waiting_groups(other) -> None:
    """Group runs whose group is free start their chain here: they need no worker."""
    waiting = (
        db.session.execute(
            select(Run.id)
            .where(
                Run.state == RunState.QUEUED,
                Run.job_type.in_(types_where("drives_chain")),
                Run.rq_job_id.is_(None),
                ~_job_busy(other, Run.job_id),
            )
            .order_by(Run.id)
        )
        .scalars()
        .all()
    )
    for run_id in waiting:
        claimed = cast(
            CursorResult[Any],
            db.session.execute(
                update(Run)
                .where(Run.id == run_id, Run.rq_job_id.is_(None), ~_job_busy(other, Run.job_id))
                .values(rq_job_id=f"group-{run_id}")
                .execution_options(synchronize_session=False)
            ),
        ).rowcount
        db.session.commit()
        if claimed:
            run = db.session.get(Run, run_id)
            assert run is not None  # the row just claimed: queued runs are never deleted
            db.session.refresh(run)
            handoff.group_due(run)


def enqueue_or_release(run_id: int, rq_job_id: str, lane: str = "data") -> bool:
    """Put a run that holds a slot on its lane's queue; if Redis is unreachable it waits again."""
    try:
        queueing.enqueue_run(run_id, rq_job_id, lane)
        return True
    except Exception as problem:
        # Redis is unreachable: leave the run waiting; the reconciler dispatches it later.
        db.session.execute(update(Run).where(Run.id == run_id).values(rq_job_id=None))
        db.session.commit()
        if isinstance(problem, queueing.REDIS_DOWN):
            current_app.logger.warning("job queue unreachable: run %s waits (%s)", run_id, problem)
        else:
            current_app.logger.exception("could not enqueue run %s", run_id)
        return False


def _waiting_in_line(run_table, lane: str):
    """Runs waiting in `lane`'s line: queued and not yet handed to a worker (a run holding a
    slot, or handed to a worker, is no longer in line)."""
    queued = run_table.c.state == RunState.QUEUED.value
    return queued & run_table.c.rq_job_id.is_(None) & _in_lane(run_table, lane)


def queue_position(run: Run) -> tuple[int, Run | None]:
    """(place in line, the run it waits for) for a queued run. Its place counts only the runs
    waiting ahead of it (queued before it, not yet handed to a worker): the first one waiting
    is #1, whatever runs now; it waits for a run of its own job, or else for the slot holder
    that started first."""
    line = Run.__table__.alias("line")
    lane = lane_of(run.job_type)
    ahead = db.session.execute(
        select(func.count())
        .select_from(line)
        .where(line.c.id != run.id, line.c.id < run.id, _waiting_in_line(line, lane))
    ).scalar_one()  # a count: always one row
    blocking = db.session.execute(
        select(Run)
        .where(
            Run.job_id == run.job_id,
            Run.id != run.id,
            Run.state.in_(HOLDING) | ((Run.state == RunState.QUEUED) & (Run.id < run.id)),
        )
        .order_by(Run.id)
        .limit(1)
    ).scalar()
    if blocking is None:
        blocking = db.session.execute(
            select(Run)
            .where(Run.id.in_(select(line.c.id).where(_taking_a_slot(line, lane))), Run.id != run.id)
            .order_by(Run.started_at.is_(None), Run.started_at, Run.id)
            .limit(1)
        ).scalar()
    return ahead + 1, blocking


def schedule_run(
    job: Job,
    user: User | None,
    when: datetime,
    *,
    trigger: str = "manual",
    planned_for: datetime | None = None,
) -> Run:
    """Create a run that waits, scheduled, until `when` (naive UTC): its own timed RQ job. A
    person's run takes its number now; a schedule's occurrence (`planned_for`) when it fires."""
    planned = planned_for is not None and trigger == "schedule"
    run = new_run(
        job,
        user,
        RunState.SCHEDULED,
        trigger=trigger,
        numbered=not planned,
        scheduled_for=when,
        planned_for=planned_for,
    )
    if planned:
        at = format_local(when, current_app.config["TIMEZONE"])
        log(run, f"Planned for {at} by the schedule.")
    else:
        log(run, f"{run.label.capitalize()} scheduled by {user.display_name if user else 'the scheduler'}.")
    db.session.commit()
    arm_timed_job(run)
    return run


def arm_timed_job(run: Run) -> bool:
    """Give a committed scheduled run its timed RQ job (derived from the row, which is the
    record). If Redis is unreachable the run keeps none, and the reconciler arms it later."""
    # a scheduled run is always created with its time (schedule_run, launches, the planner)
    assert run.scheduled_for is not None, f"scheduled run {run.id} has no time"
    try:
        run.rq_job_id = queueing.schedule_run_job(run.id, run.scheduled_for)
    except queueing.UNREACHABLE:
        current_app.logger.warning("job queue unreachable: run %s armed later", run.id)
        return False
    db.session.commit()
    return True


def _after_cancel(run: Run, phase: str) -> None:
    job_type_for(run.job_type).after_cancel(run, phase)


def _not_a_chain(run: Run, action: str) -> None:
    """Refuse a plain-run action on a group run: engine.control sends those to its chain."""
    if job_type_for(run.job_type).drives_chain:
        raise RunActionError(f"A group run is {action} through its chain (engine.control).")


def request_stop(run: Run, user: User) -> str:
    """Stop a run: cancel it if it has not started, else ask it to stop at the next batch."""
    if not run.state.is_pending:
        _not_a_chain(run, "stopped")
    if run.state in (RunState.SCHEDULED, RunState.QUEUED):
        if run.state is RunState.SCHEDULED:
            queueing.cancel_scheduled(run.rq_job_id)
            take_number(run)  # a planned occurrence cancelled is in History: it counts
        else:
            queueing.cancel_rq_job(run.rq_job_id)
        move(run, RunState.CANCELLED, note=f"Cancelled by {user.display_name} before it started.")
        _after_cancel(run, "before_start")
        db.session.commit()
        dispatch()
        after_run_ended(run)
        return "The run was cancelled before it started."
    if run.state is RunState.PAUSED:
        move(run, RunState.CANCELLED, note=f"Cancelled by {user.display_name} while paused.")
        _after_cancel(run, "processing")
        db.session.commit()
        dispatch()
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
    if run.state.is_finished:  # e.g. Stop (or Cancel scheduled launch) sent twice
        raise RunActionError(f"This run is {run.state.label.lower()} already: there is nothing to stop.")
    raise RunActionError(f"A {run.state.value} run cannot be stopped.")


def request_pause(run: Run, user: User) -> str:
    """Pause a processing run: the batch in flight finishes, then it waits, paused."""
    _not_a_chain(run, "paused")
    if not job_type_for(run.job_type).can_pause:
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
    _not_a_chain(run, "resumed")
    if run.state is not RunState.PAUSED:
        raise RunActionError("Only a paused run can be resumed.")
    move(run, RunState.QUEUED, note=f"Resumed by {user.display_name}.")
    run.rq_job_id, run.control = None, None
    db.session.commit()
    dispatch()
    return "Resumed: it continues with the records not processed yet."


def cancel_paused(run: Run, user: User) -> str:
    """Cancel a paused run (a processing run must be paused first)."""
    if run.state is not RunState.PAUSED:
        raise RunActionError("Pause the run first: only a paused run can be cancelled.")
    return request_stop(run, user)


def can_kill(run: Run) -> bool:
    """A stop was asked for long enough ago and the run is still executing."""
    if (
        run.control != "stop"
        or not run.state.is_running
        or run.control_at is None
        or job_type_for(run.job_type).drives_chain
    ):  # a group run has no work horse: its step can be killed
        return False
    waited = utcnow() - run.control_at
    return waited >= timedelta(seconds=current_app.config["KILL_AFTER_SECONDS"])


def kill_run(run: Run, user: User) -> str:
    """Hard-stop the work horse of a run that did not stop in time, and mark it cancelled."""
    if not user.is_admin:
        raise RunActionError("Only an admin can kill a run.")
    if not can_kill(run):
        raise RunActionError("Kill is offered only when a run has not stopped 30 seconds after Stop.")
    queueing.require_queue()  # the kill goes to the worker through Redis: nothing changes without it
    if run.rq_job_id:
        queueing.kill_work_horse(run.rq_job_id)
    reason = (
        f"Killed by {user.display_name}: it had not stopped "
        f"{current_app.config['KILL_AFTER_SECONDS']} seconds after Stop."
    )
    phase = "extraction" if run.state is RunState.INITIALIZING else "processing"
    run.error = reason
    move(run, RunState.CANCELLED, note=reason + f" {run.progress_done:,} records were done.")
    run.control = None
    _after_cancel(run, phase)
    db.session.commit()
    dispatch()
    after_run_ended(run)
    return "The run was killed."


def retry_run(run: Run, user: User) -> str:
    """Queue a failed run again; it continues from its checkpoint (a group run: from its failed
    step)."""
    _not_a_chain(run, "retried")
    if run.state is not RunState.FAILED:
        raise RunActionError("Only a failed run can be retried.")
    db.session.commit()  # end any read: the UPDATE below opens the transaction
    claimed = cast(
        CursorResult[Any],
        db.session.execute(  # one request retries it (a second click, another tab: refused)
            update(Run)
            .where(Run.id == run.id, Run.state == RunState.FAILED)
            .values(state=RunState.QUEUED)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if not claimed:
        db.session.rollback()
        raise RunActionError("This run was retried already.")
    move(run, RunState.QUEUED, note=f"Retry requested by {user.display_name}.")
    run.rq_job_id = None
    run.control = None
    run.error = None
    run.heartbeat_at = None
    db.session.commit()
    if run.parent_run_id:
        handoff.step_retried(run)
    dispatch()
    return "The run was queued again and will continue from where it stopped."


def dismiss(run: Run) -> list[int]:
    """Take a finished run off the monitor (it stays in History); a group run takes its finished
    step runs with it (they are folded under its row). The ids of the runs that left."""
    if not run.state.is_finished:
        raise RunActionError("Only a finished run can be dismissed from the monitor.")
    run.in_monitor = False
    steps = db.session.execute(
        update(Run)
        .where(Run.parent_run_id == run.id, Run.in_monitor.is_(True), Run.state.in_(sorted(FINISHED)))
        .values(in_monitor=False)
        .returning(Run.id)
        .execution_options(synchronize_session=False)
    )
    left = [run.id, *steps.scalars()]
    db.session.commit()
    return left


def dismiss_finished(ids: list[int], viewer_id: int | None) -> list[Row]:
    """Take the finished runs among `ids` off the monitor in one UPDATE (they stay in History):
    only the viewer's own runs (`viewer_id`), or any run for a super admin (None). Runs still
    waiting or running, and ids the viewer may not touch, are left as they are. The runs that
    left, as rows of id, number, job_name and owner_id (for the audit log); not committed."""
    if not ids:
        return []
    statement = update(Run).where(Run.id.in_(ids), Run.in_monitor.is_(True), Run.state.in_(sorted(FINISHED)))
    if viewer_id is not None:
        statement = statement.where(Run.owner_id == viewer_id)
    returned = db.session.execute(
        statement.values(in_monitor=False)
        .returning(Run.id, Run.number, Run.job_name, Run.owner_id)
        .execution_options(synchronize_session=False)
    )
    return list(returned.all())


def mark_downloaded(run: Run) -> None:
    """Record the first download of a result; the run leaves the monitor."""
    if run.downloaded_at is None:
        run.downloaded_at = utcnow()
    run.in_monitor = False
    db.session.commit()
