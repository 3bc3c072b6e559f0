"""What happens when scheduled runs come due, decided in one pass for all the runs due together:
each is queued, skipped (a blackout, the overlap policy) or recorded as missed when the scheduler
was down at its time. The scheduler process calls `fire` from rq-scheduler's loop. A run whose
firing raises is skipped with a plain reason (and logged); the others fire."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from webapp.engine import queueing
from webapp.engine.followups import after_run_ended
from webapp.engine.planner import covering, unexpected
from webapp.engine.runs import dispatch, new_run, take_number
from webapp.engine.transitions import move
from webapp.extensions import db
from webapp.jobtypes import REGISTRY
from webapp.models.base import utcnow
from webapp.models.runs import Run
from webapp.models.schedules import Blackout, JobSchedule
from webapp.rules.clock import format_duration, format_local, to_local
from webapp.rules.recurrence import ScheduleError, next_run
from webapp.rules.states import RunState

ON_TIME = timedelta(seconds=60)  # later than this, the scheduler was not running at the time
MAX_MISSED_ROWS = 100  # occurrences recorded as missed after one outage, at most
LOST_AFTER = timedelta(minutes=2)
BUSY = (RunState.QUEUED, RunState.INITIALIZING, RunState.PROCESSING, RunState.PAUSED)
log = logging.getLogger("conveyor.scheduler")


class _NotFired(Exception):
    """Deciding one run raised: the pass is rolled back and made again without it."""

    def __init__(self, run_id: int) -> None:
        super().__init__(run_id)
        self.run_id = run_id


@dataclass
class _Pass:
    """What one firing pass looks up once for all its runs."""

    now: datetime
    tz: str
    schedules: dict[int, JobSchedule]
    blackouts: list[Blackout]
    busy: dict[int | None, list[Run]]  # by job id (None: runs whose job was deleted)
    missed: list[Run] = field(default_factory=list)

    @classmethod
    def load(cls, runs: list[Run]) -> _Pass:
        job_ids = {run.job_id for run in runs}
        schedules = db.session.execute(select(JobSchedule).where(JobSchedule.job_id.in_(job_ids))).scalars()
        busy: dict[int | None, list[Run]] = defaultdict(list)
        for run in db.session.execute(
            select(Run).where(Run.job_id.in_(job_ids), Run.state.in_(BUSY)).order_by(Run.id)
        ).scalars():
            busy[run.job_id].append(run)
        return cls(
            now=utcnow(),
            tz=current_app.config["TIMEZONE"],
            schedules={s.job_id: s for s in schedules},
            blackouts=list(db.session.execute(select(Blackout)).scalars()),
            busy=busy,
        )


def fire(timed: Mapping[int, str | None]) -> dict[str, str]:
    """Decide the scheduled runs that came due ({run id: its timed RQ job id, or None when that
    job was lost}). Returns the timed job ids that go onto the queue now, each with its lane;
    runs that must wait for a free slot, or whose timed job was lost, are dispatched later under
    a fresh job id. A run whose decision raises is skipped with a plain reason and the others
    are decided."""
    pending = dict(timed)
    while True:
        try:
            return _fire(pending)
        except _NotFired as failure:
            db.session.rollback()
            log.exception("run %s could not be fired; skipped", failure.run_id)
            _not_fired(failure.run_id, failure.__cause__)
            del pending[failure.run_id]


def _fire(timed: Mapping[int, str | None]) -> dict[str, str]:
    """One firing pass over `timed`; raises _NotFired (nothing committed) for a run that fails."""
    runs = (
        db.session.execute(
            select(Run)
            .where(Run.id.in_(list(timed)), Run.state == RunState.SCHEDULED)
            .order_by(Run.scheduled_for, Run.id)
        )
        .scalars()
        .all()
    )
    if not runs:
        return {}
    now_pass = _Pass.load(list(runs))
    ended: list[tuple[Run, str]] = []
    for run in runs:
        try:
            take_number(run)  # queued or skipped, it happened: a planned occurrence counts now
            reason = _decide(run, now_pass)
            if reason is None:
                move(run, RunState.QUEUED, note=_queued_note(run, now_pass))
                run.rq_job_id = None
                now_pass.busy[run.job_id].append(run)
            else:
                move(run, RunState.SKIPPED, note=reason)
                run.error, run.rq_job_id = reason, None
                ended.append((run, "missed" if reason.startswith("Missed") else "ended"))
        except Exception as exc:
            raise _NotFired(run.id) from exc
    db.session.commit()
    for run, why in ended:
        after_run_ended(run, why)
    return dispatch({run_id: job_id for run_id, job_id in timed.items() if job_id})


def _not_fired(run_id: int, cause: BaseException | None) -> None:
    """Skip a run whose firing raised, saying so in plain words (left scheduled if even that
    fails: the overdue check tries it again)."""
    try:
        run = db.session.get(Run, run_id)
        if run is None or run.state is not RunState.SCHEDULED:
            return
        why = f" ({unexpected(cause)})" if cause is not None else ""
        reason = (
            f"Skipped: the scheduler could not fire this run{why}. Check the job's "
            "schedule; the scheduler log has the details."
        )
        take_number(run)
        move(run, RunState.SKIPPED, note=reason)
        run.error, run.rq_job_id = reason, None
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("run %s could not be marked as skipped", run_id)
        return
    after_run_ended(run, "ended")


def fire_overdue() -> int:
    """Scheduled runs well past their time whose timed job was lost (Redis forgot it) fire now."""
    overdue = (
        db.session.execute(
            select(Run).where(Run.state == RunState.SCHEDULED, Run.scheduled_for <= utcnow() - LOST_AFTER)
        )
        .scalars()
        .all()
    )
    for run in overdue:
        queueing.cancel_scheduled(run.rq_job_id)
    fire({run.id: None for run in overdue})
    return len(overdue)


def _queued_note(run: Run, now_pass: _Pass) -> str:
    late = now_pass.now - (run.scheduled_for or now_pass.now)
    if late <= ON_TIME:
        return "Scheduled time reached; queued."
    at = format_local(run.scheduled_for, now_pass.tz)
    return (
        f"Queued {format_duration(late.total_seconds())} late: the scheduler or the job queue "
        f"(Redis) was not running at {at} (misfire policy: run once now)."
    )


def _decide(run: Run, now_pass: _Pass) -> str | None:
    """None to queue the run, or why it is skipped (its job type's refusal, e.g. a campaign
    launch that was replaced; a deleted job's; then a schedule's occurrences only)."""
    if run.job is not None and not run.job.active:
        return f"Skipped: the job “{run.job_name}” was deleted."
    job_type = REGISTRY.get(run.job_type)
    refusal = job_type.fire_refusal(run) if job_type else None
    if refusal:
        return refusal
    if run.trigger != "schedule":
        return None
    schedule = now_pass.schedules.get(run.job_id) if run.job_id is not None else None
    return _missed(run, schedule, now_pass) or _blackout(run, now_pass) or _overlap(run, schedule, now_pass)


def _missed(run: Run, schedule: JobSchedule | None, now_pass: _Pass) -> str | None:
    """When the scheduler was down at the run's time: every occurrence since is recorded as
    missed, and the latest one runs once now if the misfire policy allows (never a burst)."""
    planned = run.scheduled_for or run.planned_for
    if planned is None or now_pass.now - planned <= ON_TIME:
        return None
    later = _occurrences_since(schedule, planned, now_pass) if schedule else []
    grace = timedelta(minutes=schedule.misfire_grace_minutes if schedule else 60)
    policy = schedule.misfire_policy if schedule else "run_once"
    runs_now = policy == "run_once" and now_pass.now - (later[-1] if later else planned) <= grace
    latest = later.pop() if runs_now and later else None  # it runs instead of this one
    for occurrence in later:  # numbered in the order they came due, after this run
        missed = new_run(
            run.job,
            None,
            RunState.SCHEDULED,
            trigger="schedule",
            scheduled_for=occurrence,
            planned_for=occurrence,
        )
        reason = _missed_reason(missed, policy, now_pass)
        move(missed, RunState.SKIPPED, note=reason)
        missed.error = reason
    if latest is not None:
        caught_up = new_run(
            run.job, None, RunState.SCHEDULED, trigger="schedule", scheduled_for=latest, planned_for=latest
        )
        move(caught_up, RunState.QUEUED, note=_queued_note(caught_up, now_pass))
        now_pass.busy[run.job_id].append(caught_up)
    if runs_now and latest is None:  # no later occurrence: this one runs now
        return None
    return _missed_reason(run, policy, now_pass)


def _missed_reason(run: Run, policy: str, now_pass: _Pass) -> str:
    at = format_local(run.scheduled_for, now_pass.tz)
    why = "misfire policy: skip" if policy == "skip" else "too late to run it once now"
    return f"Missed: the scheduler or the job queue (Redis) was not running at {at}; skipped ({why})."


def _occurrences_since(schedule: JobSchedule, planned: datetime, now_pass: _Pass) -> list[datetime]:
    """The schedule's occurrences after `planned` up to now (those an outage swallowed) that
    have no run yet."""
    found: list[datetime] = []
    try:
        pure = schedule.as_schedule(now_pass.tz)
        at = next_run(pure, planned)
        while at is not None and at <= now_pass.now and len(found) < MAX_MISSED_ROWS:
            found.append(at)
            at = next_run(pure, at)
    except ScheduleError:
        return []
    if found:
        recorded = set(
            db.session.execute(
                select(Run.planned_for).where(
                    Run.job_id == schedule.job_id, Run.planned_for.between(found[0], found[-1])
                )
            ).scalars()
        )
        found = [at for at in found if at not in recorded]
    return found


def _blackout(run: Run, now_pass: _Pass) -> str | None:
    day = to_local(run.planned_for or run.scheduled_for or now_pass.now, now_pass.tz).date()
    blackout = covering(now_pass.blackouts, run.job_id, day)
    if blackout is None:
        return None
    scope = "account" if blackout.job_id is None else "schedule"
    return f"Skipped for the blackout: {blackout.reason} ({scope} blackout)."


def _overlap(run: Run, schedule: JobSchedule | None, now_pass: _Pass) -> str | None:
    """None to queue the occurrence, or why the overlap policy skips it."""
    busy = [r for r in now_pass.busy.get(run.job_id, []) if r.id != run.id]
    if not busy:
        return None
    policy = schedule.overlap_policy if schedule else "skip"
    if policy == "queue" and not any(r.state is RunState.QUEUED for r in busy):
        return None
    return (
        f"Skipped: {busy[0].label} was still {busy[0].state.value} "
        f"(overlap policy: {'skip' if policy == 'skip' else 'at most one waiting'})."
    )
