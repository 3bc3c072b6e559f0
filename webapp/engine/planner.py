"""Turns schedules into runs: each next occurrence gets its own scheduled Run (unique per job and
planned instant, so two schedulers never plan it twice) and its own timed RQ enqueue. A schedule
that cannot be planned gets a plain `problem` (shown on its page) and is skipped: the others, and
the rest of the scheduler, go on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from webapp.engine import queueing
from webapp.engine.runs import schedule_run
from webapp.extensions import db
from webapp.jobtypes import job_type_for
from webapp.models.base import utcnow
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.models.schedules import Blackout, JobSchedule
from webapp.rules.clock import to_local
from webapp.rules.recurrence import ScheduleError, next_run
from webapp.rules.states import RunState

log = logging.getLogger("conveyor.scheduler")
T = TypeVar("T")


def unexpected(exc: BaseException) -> str:
    """An exception nobody foresaw, in a few words for a person ('OverflowError: …')."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def next_occurrence(schedule: JobSchedule) -> datetime | None:
    """The stored schedule's next run (naive UTC), None when none is left; raises ScheduleError
    with a plain reason when its values cannot be planned."""
    try:
        return next_run(schedule.as_schedule(current_app.config["TIMEZONE"]), utcnow())
    except ScheduleError:
        raise
    except (ArithmeticError, ValueError, TypeError) as exc:  # e.g. a date near year 9999
        raise ScheduleError(f"its next run cannot be worked out ({unexpected(exc)})") from exc


def problem_of(schedule: JobSchedule | None) -> str | None:
    """Why a stored schedule cannot be planned: the problem the scheduler recorded, or else
    the one its values show now (a page asks before any scheduler pass has)."""
    if schedule is None:
        return None
    if schedule.problem:
        return schedule.problem
    try:
        next_occurrence(schedule)
    except ScheduleError as exc:
        return str(exc)
    return None


def record_problem(schedule_id: int, reason: str) -> bool:
    """Note on the schedule why it could not be planned (committed); True if the reason is new."""
    schedule = db.session.get(JobSchedule, schedule_id)
    if schedule is None or schedule.problem == reason:
        return False
    schedule.problem, schedule.problem_at = reason[:500], utcnow()
    schedule.next_run_at = None
    db.session.commit()
    return True


def plan(schedule: JobSchedule) -> Run | None:
    """Make sure the schedule's next occurrence has its scheduled run; return it. A schedule
    whose values cannot be planned gets its problem recorded instead."""
    job = schedule.job
    if (
        not schedule.enabled
        or schedule.paused
        or job is None
        or not job.active
        or not _may_run_by_itself(job)
    ):
        schedule.next_run_at = None
        db.session.commit()
        return None
    try:
        occurrence = next_occurrence(schedule)
    except ScheduleError as exc:
        if record_problem(schedule.id, str(exc)):
            log.warning("schedule %s of job %s cannot be planned: %s", schedule.id, job.id, exc)
        return None
    schedule.next_run_at = occurrence
    schedule.problem = schedule.problem_at = None  # it plans fine (again)
    db.session.commit()
    if occurrence is None:
        return None
    existing = db.session.execute(
        select(Run).where(Run.job_id == job.id, Run.planned_for == occurrence)
    ).scalar()
    if existing is not None:
        return existing
    try:
        return schedule_run(job, None, occurrence, trigger="schedule", planned_for=occurrence)
    except IntegrityError:  # another scheduler planned it first
        db.session.rollback()
        return None


def _may_run_by_itself(job: Job) -> bool:
    """Whether the job's schedule may start runs (a group's only once activated)."""
    return job_type_for(job.job_type).may_run_by_itself(job)


def unplan(job: Job) -> int:
    """Withdraw a job's planned (not started) scheduled runs, e.g. when its schedule changes
    (they hold no number yet: History keeps no gap)."""
    planned = (
        db.session.execute(
            select(Run).where(
                Run.job_id == job.id, Run.state == RunState.SCHEDULED, Run.trigger == "schedule"
            )
        )
        .scalars()
        .all()
    )
    for run in planned:
        queueing.cancel_scheduled(run.rq_job_id)
        db.session.delete(run)
    db.session.commit()
    return len(planned)


def plan_due() -> int:
    """Plan every enabled schedule whose next occurrence is not planned yet (scheduler loop);
    one that fails is recorded and skipped, and the others are planned."""
    now = utcnow()
    resume_paused(now)
    due = (
        db.session.execute(
            select(JobSchedule.id).where(
                JobSchedule.enabled.is_(True),
                JobSchedule.paused_at.is_(None),
                or_(JobSchedule.next_run_at.is_(None), JobSchedule.next_run_at <= now),
            )
        )
        .scalars()
        .all()
    )
    planned = 0
    for schedule_id in due:
        if _isolated(schedule_id, "planning it failed", plan) is not None:
            planned += 1
    return planned


def _isolated(schedule_id: int, what: str, action: Callable[[JobSchedule], T]) -> T | None:
    """`action(schedule)`; when it raises: roll back, record a plain problem on the schedule
    (logged with its traceback the first time) and return None."""
    try:
        schedule = db.session.get(JobSchedule, schedule_id)
        return None if schedule is None else action(schedule)
    except Exception as exc:
        db.session.rollback()
        reason = f"{what} unexpectedly ({unexpected(exc)}); the scheduler log has the details"
        try:
            new = record_problem(schedule_id, reason)
        except Exception:
            db.session.rollback()
            new = True
        if new:
            log.exception("schedule %s: %s; skipped", schedule_id, what)
        return None


def pause_schedule(schedule: JobSchedule, user_id: int, reason: str, resume_on: date | None) -> None:
    """Pause a schedule (its planned run is withdrawn) until resumed, or until `resume_on`."""
    schedule.paused_reason, schedule.paused_by_id = reason, user_id
    schedule.paused_at, schedule.resume_on = utcnow(), resume_on
    schedule.next_run_at = None
    db.session.commit()
    unplan(schedule.job)


def resume_schedule(schedule: JobSchedule) -> Run | None:
    """End a pause and plan the next run again."""
    schedule.paused_reason = schedule.paused_by_id = None
    schedule.paused_at = schedule.resume_on = None
    db.session.commit()
    return plan(schedule)


def resume_paused(now: datetime) -> int:
    """Pauses whose automatic resume date has come end by themselves."""
    today = to_local(now, current_app.config["TIMEZONE"]).date()
    due = (
        db.session.execute(
            select(JobSchedule.id).where(
                JobSchedule.paused_at.is_not(None),
                JobSchedule.resume_on.is_not(None),
                JobSchedule.resume_on <= today,
            )
        )
        .scalars()
        .all()
    )
    for schedule_id in due:
        _isolated(schedule_id, "resuming it failed", resume_schedule)
    return len(due)


def covering(blackouts: list[Blackout], job_id: int | None, day: date) -> Blackout | None:
    """The blackout of `blackouts` that covers a local date for a job (its own one first)."""
    found = [b for b in blackouts if b.job_id in (None, job_id) and b.start_date <= day <= b.end_date]
    return min(found, key=lambda b: (b.job_id is None, b.id), default=None)


def blackout_for(job_id: int | None, moment: datetime) -> Blackout | None:
    """The blackout (account-wide or the job's own) covering a UTC instant's local date."""
    day = to_local(moment, current_app.config["TIMEZONE"]).date()
    candidates = (
        db.session.execute(
            select(Blackout).where(
                or_(Blackout.job_id.is_(None), Blackout.job_id == job_id),
                Blackout.start_date <= day,
                Blackout.end_date >= day,
            )
        )
        .scalars()
        .all()
    )
    return covering(list(candidates), job_id, day)
