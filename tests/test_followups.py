"""Job notifications: after every run or only failures, missed runs, runs that take too long."""

import email
import email.policy
import os
from datetime import date, time, timedelta

import pytest

from tests.conftest import export_job, fresh, import_job, work
from webapp.engine.firing import fire
from webapp.engine.followups import notice_long_runs, wants_notification
from webapp.engine.planner import plan
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.jobtypes.job_group import GroupDefinition
from webapp.models import Job, JobSchedule, Run
from webapp.models.base import utcnow
from webapp.rules.states import RunState


def outbox(app):
    folder = app.config["OUTBOX_DIR"]
    found = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as raw:
            found.append(email.message_from_binary_file(raw, policy=email.policy.default))
    return found


def configure(job, **settings):
    for key, value in {"notify_emails": "ops@example.org, lead@example.org", **settings}.items():
        setattr(job, key, value)
    db.session.commit()


def test_every_run_notifies_every_address_with_job_run_state_counts_and_link(app, users):
    job = export_job(users["user"], name="Weekly donors")
    configure(job, notify_on="every")
    run = start_run(job, users["user"])
    work(app)  # the run, then its notification follow-up job
    messages = outbox(app)
    assert sorted(str(m["To"]) for m in messages) == ["lead@example.org", "ops@example.org"]
    body = messages[0].get_content()
    assert str(messages[0]["Subject"]) == "[Conveyor] Weekly donors #1 ended: completed"
    assert "State: completed" in body and "Counts: 0 exported" in body  # in the export's own words
    assert f"http://conveyor.test/runs/{fresh(run).id}" in body


@pytest.mark.parametrize("fails,expected", [(False, 0), (True, 2)])
def test_failure_only(app, users, tmp_path, fails, expected):
    path = tmp_path / ("missing.csv" if fails else "p.csv")
    if not fails:
        path.write_text("email\nann@example.org\n")
    job = import_job(users["user"], path, ["email"])
    configure(job, notify_on="failure")
    start_run(job, users["user"])
    work(app)
    messages = outbox(app)
    assert len(messages) == expected
    if fails:
        assert (
            "Reason: The file missing.csv is no longer there (FileNotFoundError)" in messages[0].get_content()
        )


def test_never_sends_nothing(app, users):
    job = export_job(users["user"])
    configure(job, notify_on="never")
    start_run(job, users["user"])
    work(app)
    assert outbox(app) == []


def test_missed_run_notifies_when_asked(app, users):
    job = export_job(users["user"], name="Nightly")
    configure(job, notify_on="never", notify_missed=True)
    schedule = JobSchedule(
        job_id=job.id,
        kind="days_of_week",
        start_date=date.today(),
        time=time(3, 0),
        weekdays=list(range(7)),
        enabled=True,
    )
    db.session.add(schedule)
    db.session.commit()
    planned = plan(schedule)
    planned.scheduled_for = utcnow() - timedelta(hours=2)
    db.session.commit()
    fire({planned.id: None})
    work(app)
    messages = outbox(app)
    assert len(messages) == 2 and "was missed" in str(messages[0]["Subject"])


def test_long_running_run_notifies_once(app, users):
    job = export_job(users["user"], name="Slow")
    configure(job, notify_on="never", notify_long=True)
    for minutes in (10, 12, 11):
        done = start_run(job, users["user"])
        done.state, done.started_at = RunState.COMPLETED, utcnow() - timedelta(minutes=minutes)
        done.finished_at = utcnow()
    running = start_run(job, users["user"])
    running.state, running.started_at = RunState.PROCESSING, utcnow() - timedelta(minutes=30)
    running.heartbeat_at = utcnow()
    db.session.commit()
    assert notice_long_runs() == 1
    assert notice_long_runs() == 0  # once
    work(app)
    messages = outbox(app)
    assert len(messages) == 2
    assert "is running much longer than usual" in str(messages[0]["Subject"])


def test_notification_form_validates_addresses(client, auth, users):
    job = export_job(users["user"])
    auth.login("user@example.org")
    response = client.post(
        f"/jobs/{job.id}/notifications", data={"notify_emails": "ops@example.org, nope", "notify_on": "every"}
    )
    assert response.status_code == 400
    assert "&#39;nope&#39; is not an email address." in response.get_data(as_text=True)
    response = client.post(
        f"/jobs/{job.id}/notifications", data={"notify_emails": "", "notify_on": "failure"}
    )
    assert "Add at least one address" in response.get_data(as_text=True)
    response = client.post(
        f"/jobs/{job.id}/notifications",
        data={
            "notify_emails": " ops@example.org ,lead@example.org",
            "notify_on": "failure",
            "notify_missed": "y",
        },
    )
    assert response.status_code == 302
    job = db.session.get(type(job), job.id)
    assert (job.notify_emails, job.notify_on, job.notify_missed, job.notify_long) == (
        "ops@example.org, lead@example.org",
        "failure",
        True,
        False,
    )
    assert client.post(f"/jobs/{export_job(users['other']).id}/notifications").status_code == 404


def first_step_of_a_group(user, job) -> Run:
    """Start a group whose first step is `job`: its step 1 run (queued)."""
    group = Job(owner_id=user.id, job_type="job_group", name="Chain", params={})
    GroupDefinition(steps=[job.id, export_job(user).id]).save_to(group)
    db.session.add(group)
    db.session.commit()
    group_run = start_run(group, user)
    return db.session.execute(db.select(Run).where(Run.parent_run_id == group_run.id)).scalar_one()


@pytest.mark.parametrize("reason", ["ended", "missed", "long"])
def test_a_group_step_run_never_sends_its_jobs_own_notification(app, users, reason):
    job = export_job(users["user"], name="Step export")
    configure(job, notify_on="every", notify_missed=True, notify_long=True)
    step = first_step_of_a_group(users["user"], job)
    assert wants_notification(step, reason) is False  # the group notifies, once, at its end
    alone = start_run(job, users["user"])
    assert wants_notification(alone, reason) is True  # the job run by itself still does


def test_a_long_running_step_sends_nothing(app, users):
    job = export_job(users["user"], name="Slow step")
    configure(job, notify_on="never", notify_long=True)
    for minutes in (10, 12, 11):
        done = start_run(job, users["user"])
        done.state, done.started_at = RunState.COMPLETED, utcnow() - timedelta(minutes=minutes)
        done.finished_at = utcnow()
    db.session.commit()
    step = first_step_of_a_group(users["user"], job)
    step.state, step.started_at = RunState.PROCESSING, utcnow() - timedelta(minutes=30)
    step.heartbeat_at = utcnow()
    db.session.commit()
    notice_long_runs()
    work(app)
    assert outbox(app) == []
