"""A job's typical run time: the median of its latest completed runs, other runs left out."""

from datetime import timedelta

from tests.conftest import export_job
from webapp.engine.durations import RECENT_RUNS, typical_run_seconds
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.rules.states import RunState


def ran(job, user, minutes, state=RunState.COMPLETED):
    run = start_run(job, user)
    run.state, run.started_at = state, utcnow() - timedelta(minutes=minutes)
    run.finished_at = utcnow()
    db.session.commit()
    return run


def test_a_job_without_a_completed_run_has_no_typical_time(app, users):
    job = export_job(users["user"], name="New")
    ran(job, users["user"], 5, RunState.FAILED)
    assert typical_run_seconds(job.id) is None


def test_the_typical_time_is_the_median_of_completed_runs_only(app, users):
    job = export_job(users["user"], name="Steady")
    for minutes in (10, 12, 11):
        ran(job, users["user"], minutes)
    ran(job, users["user"], 90, RunState.FAILED)
    other = export_job(users["user"], name="Other")
    ran(other, users["user"], 60)
    assert round(typical_run_seconds(job.id)) == 11 * 60


def test_only_the_latest_runs_count(app, users):
    job = export_job(users["user"], name="Faster now")
    for _ in range(RECENT_RUNS):
        ran(job, users["user"], 60)
    for _ in range(RECENT_RUNS // 2 + 1):
        ran(job, users["user"], 2)
    assert round(typical_run_seconds(job.id)) == 2 * 60
