"""Scheduled runs coming due: each occurrence's own timed RQ job goes onto the queue through
rq-scheduler (the scheduler process's loop), outages are recorded occurrence by occurrence and
never fire a burst, and the concurrency limit holds for scheduled runs too."""

from datetime import datetime, time, timedelta

import pytest
from rq import Queue
from rq.job import Job as RQJob

from tests.conftest import embedded_only, export_job, fresh, work
from webapp.engine import firing, queueing
from webapp.engine.firing import fire, fire_overdue
from webapp.engine.planner import plan
from webapp.engine.runs import schedule_run, start_run
from webapp.extensions import db
from webapp.models import JobSchedule, Run, RunLogLine
from webapp.models.base import utcnow
from webapp.rules.clock import to_local
from webapp.rules.states import RunState

# "Now" for the firing pass of the outage tests: the middle of an hour, on a day with no DST change.
# Counted from the real clock, the hours an outage swallowed changed when the hour turned between
# the test and the pass, and on the day clocks fall back (24 a day skips the repeated hour).
FIRING_NOW = datetime(2026, 6, 3, 14, 30)


def fire_at_firing_now(monkeypatch) -> datetime:
    """Make FIRING_NOW the time the firing pass reads; return it."""
    monkeypatch.setattr(firing, "utcnow", lambda: FIRING_NOW)
    return FIRING_NOW


@pytest.fixture
def job(users):
    return export_job(users["user"], name="Hourly export")


def hourly(job, **extra) -> JobSchedule:
    schedule = JobSchedule(
        job_id=job.id,
        kind="times_per_day",
        times_per_day=24,
        start_date=FIRING_NOW.date() - timedelta(days=2),
        time=time(0, 0),
        enabled=True,
        **extra,
    )
    db.session.add(schedule)
    db.session.commit()
    return schedule


def planned_hours_ago(schedule: JobSchedule, hours: int, now: datetime | None = None) -> Run:
    """The schedule's planned run, as if the scheduler had been down since `hours` hours before
    `now` (default: the clock's): its time is that of the occurrence then."""
    run = plan(schedule)
    at = (now or utcnow()).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)
    run.scheduled_for = run.planned_for = at
    db.session.commit()
    return run


def runs_of(job) -> list[Run]:
    return Run.query.filter_by(job_id=job.id).order_by(Run.planned_for).all()


def test_an_outage_records_every_missed_time_and_runs_only_the_latest_once(app, users, job, monkeypatch):
    run = planned_hours_ago(hourly(job), 5, fire_at_firing_now(monkeypatch))
    fire({run.id: None})
    runs = runs_of(job)
    assert len(runs) == 6  # the planned one and the five hours since, the last one is now's
    missed, latest = runs[:-1], runs[-1]
    assert all(
        r.state is RunState.SKIPPED
        and r.error.startswith("Missed: the scheduler or the job queue (Redis) was not running at")
        for r in missed
    )
    assert [r.planned_for for r in runs] == [runs[0].planned_for + timedelta(hours=h) for h in range(6)]
    assert latest.state is RunState.QUEUED and latest.rq_job_id  # dispatched, not a burst
    work(app)
    assert fresh(latest).state is RunState.COMPLETED
    assert Run.query.filter_by(job_id=job.id, state=RunState.COMPLETED).count() == 1


def test_with_the_skip_policy_every_missed_time_is_only_recorded(app, users, job, monkeypatch):
    run = planned_hours_ago(hourly(job, misfire_policy="skip"), 3, fire_at_firing_now(monkeypatch))
    fire({run.id: None})
    runs = runs_of(job)
    assert len(runs) == 4
    assert all(r.state is RunState.SKIPPED and "(misfire policy: skip)" in r.error for r in runs)


@pytest.mark.parametrize("grace,expected", [(30, RunState.SKIPPED), (60, RunState.QUEUED)])
def test_a_time_missed_by_more_than_the_grace_period_is_not_run(app, users, job, grace, expected):
    at = to_local(utcnow() - timedelta(minutes=45), app.config["TIMEZONE"])
    schedule = JobSchedule(
        job_id=job.id,
        kind="once",
        start_date=at.date(),
        enabled=True,
        once_at=at.replace(tzinfo=None, second=0, microsecond=0),
        misfire_grace_minutes=grace,
    )
    db.session.add(schedule)
    db.session.commit()
    run = schedule_run(
        job,
        None,
        utcnow() - timedelta(minutes=45),
        trigger="schedule",
        planned_for=utcnow() - timedelta(minutes=45),
    )
    fire({run.id: None})
    [only] = runs_of(job)
    assert only.state is expected
    if expected is RunState.SKIPPED:
        assert "too late to run it once now" in only.error
    else:
        notes = [line.message for line in RunLogLine.query.filter_by(run_id=only.id)]
        assert any(
            note.startswith("Queued 45 min")
            and "late: the scheduler or the job queue (Redis) was not running" in note
            for note in notes
        ), notes


def test_the_timed_job_of_a_due_run_goes_onto_the_queue_under_its_own_id(app, users, job):
    run = schedule_run(job, None, utcnow() - timedelta(seconds=1))
    timed_id = run.rq_job_id
    scheduler = queueing.scheduler(fire)
    assert timed_id in [j.id for j in scheduler.enqueue_jobs()]
    run = fresh(run)
    assert run.state is RunState.QUEUED and run.rq_job_id == timed_id
    queue = Queue(app.config["QUEUE_NAME"], connection=queueing.redis_connection())
    assert queue.job_ids == [timed_id]
    work(app)
    assert fresh(run).state is RunState.COMPLETED
    assert RQJob.fetch(timed_id, connection=queue.connection).get_status() == "finished"


def test_due_runs_wait_for_a_free_slot_and_a_fresh_job_when_one_is_busy(app, users, job):
    other = export_job(users["user"], name="Busy export")
    busy = start_run(other, users["user"])
    run = schedule_run(job, None, utcnow() - timedelta(seconds=1))
    timed_id = run.rq_job_id
    going = queueing.scheduler(fire).enqueue_jobs()
    run = fresh(run)
    assert run.state is RunState.QUEUED and run.rq_job_id is None  # waits: one slot, taken
    assert RQJob.exists(timed_id, connection=queueing.redis_connection()) is False
    assert [j.id for j in going] == [timed_id]
    work(app)  # the busy run, then the waiting one under a fresh job id
    assert fresh(busy).state is fresh(run).state is RunState.COMPLETED
    assert fresh(run).rq_job_id != timed_id


def test_a_scheduled_run_whose_timed_job_was_lost_fires_anyway(app, users, job):
    run = schedule_run(job, None, utcnow() + timedelta(hours=1))
    queueing.cancel_scheduled(run.rq_job_id)  # Redis forgot it
    run.scheduled_for = utcnow() - timedelta(minutes=5)
    db.session.commit()
    assert fire_overdue() == 1
    run = fresh(run)
    assert run.state is RunState.QUEUED and run.rq_job_id
    work(app)
    assert fresh(run).state is RunState.COMPLETED


def test_times_that_already_have_a_run_are_not_recorded_twice(app, users, job, monkeypatch):
    schedule = hourly(job)
    run = planned_hours_ago(schedule, 3, fire_at_firing_now(monkeypatch))
    already = schedule_run(
        job,
        None,
        run.planned_for + timedelta(hours=1),
        trigger="schedule",
        planned_for=run.planned_for + timedelta(hours=1),
    )
    fire({run.id: None})
    runs = runs_of(job)
    assert len(runs) == 4 and len({r.planned_for for r in runs}) == 4
    assert fresh(already).state is RunState.SCHEDULED  # left to fire at its own time


@embedded_only  # PostgreSQL's integer column cannot even hold the poisoned grace period
def test_a_run_whose_firing_raises_is_skipped_with_a_reason_and_the_others_fire(app, users, job):
    poisoned = hourly(job, misfire_grace_minutes=10**15)  # written straight to the database
    broken = planned_hours_ago(poisoned, 2)  # late: the grace period is worked out, and overflows
    other = schedule_run(
        export_job(users["user"], name="Other export"), None, utcnow() - timedelta(seconds=1)
    )
    fire({broken.id: None, other.id: None})
    broken, other = fresh(broken), fresh(other)
    assert broken.state is RunState.SKIPPED
    assert broken.error.startswith("Skipped: the scheduler could not fire this run (OverflowError: ")
    assert "Check the job's schedule" in broken.error
    assert other.state is RunState.QUEUED and other.rq_job_id
    assert runs_of(job) == [broken]  # nothing of the failed attempt was kept


def test_deleting_a_job_withdraws_its_planned_run_and_switches_its_schedule_off(
    app, users, client, auth, job
):
    schedule = hourly(job)
    run = plan(schedule)
    timed_id = run.rq_job_id
    auth.login(users["user"].email)
    assert client.post(f"/jobs/{job.id}/delete").status_code == 302
    assert db.session.get(Run, run.id) is None  # planned, never numbered: withdrawn
    assert timed_id not in [timed.id for timed in queueing.scheduler(fire).get_jobs()]
    db.session.expire_all()
    assert schedule.enabled is False and schedule.next_run_at is None
    assert plan(schedule) is None and runs_of(job) == []


def test_a_deleted_jobs_scheduled_run_that_comes_due_is_skipped_not_run(app, users, job):
    run = schedule_run(job, None, utcnow() - timedelta(seconds=1))
    job.active = False  # deleted behind the planner's back (an older version, another process)
    db.session.commit()
    fire({run.id: run.rq_job_id})
    run = fresh(run)
    assert run.state is RunState.SKIPPED and run.error == "Skipped: the job “Hourly export” was deleted."
    assert Queue(app.config["QUEUE_NAME"], connection=queueing.redis_connection()).job_ids == []
