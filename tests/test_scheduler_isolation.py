"""The scheduler keeps every duty going when one schedule, run or duty fails (the incident: one
user's schedule "once, 9999-12-31" made every pass fail with OverflowError, so dead-worker runs
were never failed, timed runs never fired and retention never ran). Checked in-process with one
pass of the loop, and with the real scheduler process."""

import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import export_job
from webapp.engine import scheduler_loop
from webapp.engine.runs import new_run, schedule_run, start_run
from webapp.extensions import db
from webapp.models import Job, JobSchedule, Run
from webapp.models.base import utcnow
from webapp.rules.states import RunState

ROOT = Path(__file__).resolve().parents[1]


def run_by_id(run_id: int) -> Run:
    """Re-read a run (the loop ends its pass by removing the session: objects are detached)."""
    db.session.expire_all()
    return db.session.get(Run, run_id)


def poisoned(job: Job) -> JobSchedule:
    """A once schedule at 9999-12-31, written straight to the database (an old form let it in)."""
    schedule = JobSchedule(
        job_id=job.id,
        kind="once",
        start_date=date(2026, 1, 1),
        once_at=datetime(9999, 12, 31, 23, 30),
        enabled=True,
    )
    db.session.add(schedule)
    db.session.commit()
    return schedule


def raising(owner) -> JobSchedule:
    """A schedule whose planning raises: its group job's stored definition is not a mapping."""
    job = Job(owner_id=owner.id, job_type="job_group", name="Broken group", params=["broken"])
    db.session.add(job)
    db.session.commit()
    schedule = JobSchedule(
        job_id=job.id,
        kind="days_of_week",
        start_date=date(2026, 1, 1),
        time=datetime(2026, 1, 1, 9).time(),
        weekdays=[0],
        enabled=True,
    )
    db.session.add(schedule)
    db.session.commit()
    return schedule


def dead_worker_run(owner) -> Run:
    """A processing run whose worker stopped sending heartbeats two minutes ago."""
    run = start_run(export_job(owner, name="Export on a lost machine"), owner)
    run.state, run.progress_done, run.progress_total = RunState.PROCESSING, 40, 100
    run.started_at = utcnow() - timedelta(minutes=5)
    run.heartbeat_at = utcnow() - timedelta(minutes=2)
    db.session.commit()
    return run


def expired_result(owner, tmp_path) -> tuple[Run, Path]:
    """A completed run whose result file is past any retention period."""
    path = tmp_path / "old-result.csv"
    path.write_text("email\nann@example.org\n")
    run = new_run(
        export_job(owner, name="Old export"),
        owner,
        RunState.COMPLETED,
        trigger="manual",
        result_path=str(path),
        finished_at=utcnow() - timedelta(days=400),
    )
    db.session.commit()
    return run, path


@pytest.fixture
def scene(app, users, tmp_path):
    """Two poisoned schedules next to a dead worker's run, a due timed run and an old result."""
    owner = users["user"]
    result, result_path = expired_result(owner, tmp_path)
    return {
        "poisoned": poisoned(export_job(owner, name="Far future export")).id,
        "raising": raising(owner).id,
        "dead": dead_worker_run(owner).id,
        "due": schedule_run(export_job(owner, name="Due export"), None, utcnow() - timedelta(seconds=1)).id,
        "result": result.id,
        "result_path": result_path,
    }


def test_one_pass_with_poisoned_schedules_still_does_every_other_duty(app, scene):
    scheduler_loop.loop(once=True)
    dead = run_by_id(scene["dead"])
    assert dead.state is RunState.FAILED
    assert dead.error.startswith("the worker running this job stopped at ")
    assert run_by_id(scene["due"]).state is RunState.QUEUED  # fired by rq-scheduler's timed job
    result = run_by_id(scene["result"])
    assert result.result_deleted_at is not None and not scene["result_path"].exists()
    poisoned, broken = (db.session.get(JobSchedule, scene[k]) for k in ("poisoned", "raising"))
    assert "9999-12-31 is after Dec 31, 2100, the last day Conveyor can plan" in poisoned.problem
    assert poisoned.problem_at is not None and poisoned.next_run_at is None
    assert broken.problem.startswith("planning it failed unexpectedly (AttributeError")
    assert Run.query.filter(Run.job_id.in_([poisoned.job_id, broken.job_id])).count() == 0


def test_a_poisoned_schedule_shows_its_problem_on_its_page(app, client, auth, users, scene):
    scheduler_loop.loop(once=True)
    auth.login("user@example.org")  # the pass detached the fixture's objects
    for key, reason in [
        ("poisoned", "the date 9999-12-31 is after Dec 31, 2100"),
        ("raising", "planning it failed unexpectedly"),
    ]:
        job_id = db.session.get(JobSchedule, scene[key]).job_id
        response = client.get(f"/jobs/{job_id}/schedule")
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "This schedule could not be planned: " in html and reason in html
        assert "Edit it to fix it." in html
    poisoned_job = db.session.get(JobSchedule, scene["poisoned"]).job_id
    assert client.get(f"/jobs/{poisoned_job}").status_code == 200


def test_the_page_of_an_unplannable_schedule_answers_before_any_scheduler_pass(app, client, auth, users):
    schedule = poisoned(export_job(users["user"], name="Far future export"))
    auth.login(users["user"].email)
    response = client.get(f"/jobs/{schedule.job_id}/schedule")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "This schedule could not be planned: the date 9999-12-31 is after Dec 31, 2100" in html
    preview = client.get(
        f"/jobs/{schedule.job_id}/schedule/preview",
        query_string={"kind": "once", "start_date": "2026-01-01", "once_at": "9999-12-31T23:30"},
    )
    assert preview.status_code == 200
    assert "9999-12-31 is after Dec 31, 2100" in preview.get_data(as_text=True)


def test_a_fixed_schedule_plans_again_and_its_problem_is_cleared(app, client, auth, users, scene):
    scheduler_loop.loop(once=True)
    schedule = db.session.get(JobSchedule, scene["poisoned"])
    schedule.once_at = datetime(2099, 6, 1, 9, 0)
    db.session.commit()
    scheduler_loop.loop(once=True)
    schedule = db.session.get(JobSchedule, scene["poisoned"])
    assert schedule.problem is None and schedule.next_run_at is not None
    assert Run.query.filter_by(job_id=schedule.job_id, state=RunState.SCHEDULED).count() == 1


@pytest.mark.parametrize(
    "duty",
    [
        "finish_collecting",
        "plan_due",
        "fire_overdue",
        "notice_long_runs",
        "sweep_results",
        "sweep_expired_groups",
    ],
)
def test_a_duty_that_raises_does_not_stop_the_reconciler(app, users, monkeypatch, duty):
    def broken():
        raise RuntimeError(f"{duty} is broken")

    monkeypatch.setattr(scheduler_loop, duty, broken)
    dead = dead_worker_run(users["user"]).id
    scheduler_loop.loop(once=True)
    assert run_by_id(dead).state is RunState.FAILED


def test_a_reconciler_that_raises_does_not_stop_firing_or_retention(app, users, tmp_path, monkeypatch):
    def broken():
        raise RuntimeError("the reconciler is broken")

    monkeypatch.setattr(scheduler_loop, "reconcile", broken)
    result, path = expired_result(users["user"], tmp_path)
    due = schedule_run(export_job(users["user"], name="Due export"), None, utcnow() - timedelta(seconds=1))
    result_id, due_id = result.id, due.id
    scheduler_loop.loop(once=True)
    assert run_by_id(due_id).state is RunState.QUEUED
    assert run_by_id(result_id).result_deleted_at is not None and not path.exists()


def test_a_result_file_that_cannot_be_deleted_does_not_stop_the_sweep(app, users, tmp_path):
    stuck, _ = expired_result(users["user"], tmp_path)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    stuck.result_path = str(folder)  # os.remove refuses a directory
    db.session.commit()
    other_path = tmp_path / "other.csv"
    other_path.write_text("x\n")
    other = new_run(
        export_job(users["user"], name="Other"),
        users["user"],
        RunState.COMPLETED,
        trigger="manual",
        result_path=str(other_path),
        finished_at=utcnow() - timedelta(days=400),
    )
    db.session.commit()
    stuck_id, other_id = stuck.id, other.id
    scheduler_loop.loop(once=True)
    assert run_by_id(stuck_id).result_deleted_at is None  # tried again at the next sweep
    assert run_by_id(other_id).result_deleted_at is not None and not other_path.exists()


def start_scheduler(app, tmp_path) -> subprocess.Popen:
    """The real scheduler process (`flask --app app scheduler`) on the test's database and Redis."""
    env = {
        **os.environ,
        "CONVEYOR_VAR_DIR": app.config["VAR_DIR"],
        "CONVEYOR_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "CONVEYOR_REDIS_URL": app.config["REDIS_URL"],
        "CONVEYOR_QUEUE": app.config["QUEUE_NAME"],
        "CONVEYOR_SECRET_KEY": "test",
        "CONVEYOR_BOUNCE_TOKEN": "test-bounce-token",  # both needed off the embedded default
        "CONVEYOR_DEAD_AFTER_SECONDS": "2",
        "CONVEYOR_RECONCILE_EVERY_SECONDS": "1",
    }
    log = open(tmp_path / "scheduler.log", "ab")
    flask = Path(sys.executable).with_name("flask")
    return subprocess.Popen(
        [str(flask), "--app", "app", "scheduler"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_a_poisoned_schedule_plus_a_dead_worker_the_run_is_still_failed_within_a_minute(app, users, tmp_path):
    poisoned(export_job(users["user"], name="Far future export"))
    raising(users["user"])
    dead = dead_worker_run(users["user"]).id
    scheduler = start_scheduler(app, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while run_by_id(dead).state is not RunState.FAILED:
            assert scheduler.poll() is None, (tmp_path / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the run was not failed within a minute"
            time.sleep(0.2)
    finally:
        scheduler.terminate()
        scheduler.wait(10)
    assert run_by_id(dead).error.startswith("the worker running this job stopped at ")
