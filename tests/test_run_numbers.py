"""Run numbers count what happened (issue 13): a planned occurrence takes no number until it
fires (queued or skipped), so editing or pausing a schedule leaves History without gaps; a run
of a person takes its number at once; the monitor's "Job #" is the job's own number."""

from __future__ import annotations

import email
import email.policy
import os
import re
from datetime import date, time, timedelta

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from tests.conftest import export_job, fresh, work
from tests.test_firing import fire_at_firing_now
from webapp import create_app
from webapp.engine.firing import fire
from webapp.engine.followups import send_run_notification
from webapp.engine.planner import plan, unplan
from webapp.engine.runs import request_stop, start_run, take_number
from webapp.extensions import db
from webapp.jobtypes.job_group import GroupDefinition
from webapp.models import Job, JobSchedule, Run, RunLogLine
from webapp.models.base import utcnow
from webapp.models.schedules import Blackout
from webapp.rules.clock import to_local
from webapp.rules.states import RunState
from webapp.web import stop_question


@pytest.fixture
def job(users):
    return export_job(users["user"], name="Nightly export")


def daily(job: Job, **extra) -> JobSchedule:
    schedule = JobSchedule(
        job_id=job.id,
        kind="days_of_week",
        start_date=date.today(),
        time=time(3, 0),
        weekdays=list(range(7)),
        enabled=True,
        **extra,
    )
    db.session.add(schedule)
    db.session.commit()
    return schedule


def save_schedule(client, job: Job, at: str) -> None:
    data = {
        "enabled": "y",
        "kind": "days_of_week",
        "start_date": date.today().isoformat(),
        "time": at,
        "weekdays": [str(d) for d in range(7)],
        "overlap_policy": "skip",
    }
    assert client.post(f"/jobs/{job.id}/schedule", data=data).status_code == 302


def last_number(job: Job) -> int:
    """The job's count of numbered runs, as stored."""
    db.session.refresh(job)
    return job.last_run_number


def numbers_in_history(client) -> list[int]:
    page = client.get("/history").get_data(as_text=True)
    return sorted(int(n) for n in re.findall(r'<span class="muted small">run #(\d+)</span>', page))


def test_a_planned_occurrence_has_no_number_and_reads_planned(app, client, auth, users, job):
    planned = plan(daily(job))
    assert planned.number is None and planned.label == "planned run" and planned.short_label == "planned"
    assert last_number(job) == 0
    lines = [line.message for line in RunLogLine.query.filter_by(run_id=planned.id)]
    at = to_local(planned.planned_for, app.config["TIMEZONE"])
    assert lines[0].startswith(f"Planned for {at:%b} {at.day}, {at.year} ") and lines[0].endswith(
        " by the schedule."
    )
    assert "#" not in lines[0]
    auth.login(users["user"].email)
    with app.test_request_context():
        assert stop_question(planned) == "Cancel the planned run of “Nightly export”?"
    monitor = client.get("/").get_data(as_text=True)
    run_page = client.get(f"/runs/{planned.id}").get_data(as_text=True)
    for page in (monitor, run_page):
        assert "None" not in page and "planned run" in page
    assert 'aria-label="Stop Nightly export planned run"' in monitor
    assert f"Job #{job.id} · planned run of this job" in run_page
    assert "Nightly export" not in client.get("/history").get_data(as_text=True)  # not happened yet


def test_firing_gives_the_occurrence_the_next_number(app, users, job):
    first = start_run(job, users["user"])
    work(app)
    planned = plan(daily(job))
    assert first.number == 1 and planned.number is None
    fire({planned.id: None})
    fired = fresh(planned)
    assert fired.state is RunState.QUEUED and fired.number == 2
    assert last_number(job) == 2
    assert start_run(job, users["user"]).number == 3


def test_editing_and_pausing_a_schedule_leaves_history_without_gaps(app, client, auth, users, job):
    auth.login(users["user"].email)
    client.post(f"/jobs/{job.id}/run")
    work(app)
    save_schedule(client, job, "01:30")
    save_schedule(client, job, "02:00")  # edited twice: planned, withdrawn, planned again
    save_schedule(client, job, "02:30")
    client.post(f"/jobs/{job.id}/schedule/pause", data={"reason": "Data cleanup"})
    client.post(f"/jobs/{job.id}/schedule/resume")
    client.post(f"/jobs/{job.id}/run")
    work(app)
    planned = Run.query.filter_by(job_id=job.id, state=RunState.SCHEDULED).one()
    assert planned.number is None
    fire({planned.id: None})
    work(app)
    runs = Run.query.filter_by(job_id=job.id).order_by(Run.number).all()
    assert [(run.number, run.trigger) for run in runs] == [(1, "manual"), (2, "manual"), (3, "schedule")]
    assert numbers_in_history(client) == [1, 2, 3]


@pytest.mark.parametrize("why", ["overlap", "blackout"])
def test_a_skipped_occurrence_takes_a_number(app, users, job, why):
    running = start_run(job, users["user"])
    schedule = daily(job)
    if why == "overlap":
        running.state = RunState.PROCESSING
    else:
        work(app)
        day = to_local(utcnow(), app.config["TIMEZONE"]).date()
        db.session.add(Blackout(start_date=day, end_date=day + timedelta(days=2), reason="Closed"))
    db.session.commit()
    planned = plan(schedule)
    fire({planned.id: None})
    skipped = fresh(planned)
    assert skipped.state is RunState.SKIPPED and skipped.number == 2
    if why == "overlap":
        assert skipped.error.startswith("Skipped: run #1 was still processing")


def test_occurrences_missed_in_an_outage_are_numbered_in_the_order_they_came_due(
    app, users, job, monkeypatch
):
    now = fire_at_firing_now(monkeypatch)  # the hours missed must not depend on when the test runs
    schedule = JobSchedule(
        job_id=job.id,
        kind="times_per_day",
        times_per_day=24,
        start_date=now.date() - timedelta(days=2),
        time=time(0, 0),
        enabled=True,
    )
    db.session.add(schedule)
    db.session.commit()
    planned = plan(schedule)
    at = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    planned.scheduled_for = planned.planned_for = at
    db.session.commit()
    fire({planned.id: None})
    runs = Run.query.filter_by(job_id=job.id).order_by(Run.planned_for).all()
    assert [run.number for run in runs] == [1, 2, 3, 4]
    assert [run.state for run in runs] == [RunState.SKIPPED] * 3 + [RunState.QUEUED]


def test_a_planned_occurrence_cancelled_by_a_person_takes_a_number(app, users, job):
    planned = plan(daily(job))
    request_stop(planned, users["user"])
    assert fresh(planned).state is RunState.CANCELLED and fresh(planned).number == 1


def test_take_number_keeps_a_number_already_taken(app, users, job):
    run = start_run(job, users["user"])
    assert take_number(run) == 1 and last_number(job) == 1


def test_withdrawing_a_planned_occurrence_gives_back_no_number(app, users, job):
    schedule = daily(job)
    plan(schedule)
    assert unplan(job) == 1
    plan(schedule)
    assert start_run(job, users["user"]).number == 1


def test_a_groups_first_manual_run_is_run_1_even_with_a_planned_occurrence(app, client, auth, users):
    steps = [
        export_job(users["user"], name="Alpha export").id,
        export_job(users["user"], name="Beta export").id,
    ]
    group = Job(owner_id=users["user"].id, job_type="job_group", name="Nightly chain", params={})
    GroupDefinition(steps=steps, activated=True, never_expires=True).save_to(group)
    db.session.add(group)
    db.session.commit()
    planned = plan(daily(group))
    assert planned is not None and planned.number is None
    auth.login(users["user"].email)
    response = client.post(f"/groups/{group.id}/run", follow_redirects=True)
    assert "Group run #1 " in response.get_data(as_text=True)
    manual = Run.query.filter_by(job_id=group.id, trigger="manual").one()
    assert manual.number == 1


def test_the_monitor_job_number_is_the_jobs_own_and_links_to_its_page(app, client, auth, users, job):
    for _ in range(3):  # other runs first, so that run ids and job ids differ
        start_run(export_job(users["user"], name="Other export"), users["user"])
    run = start_run(job, users["user"])
    run.state, run.progress_total = RunState.PROCESSING, 10
    db.session.commit()
    assert run.id != job.id
    auth.login(users["user"].email)
    page = client.get("/").get_data(as_text=True)
    row = page.split(f'<tr id="run-{run.id}"', 1)[1].split("</tr>", 1)[0]
    job_cell = re.findall(r'<td class="num">(.*?)</td>', row)[0]
    assert job_cell == f'<a href="/jobs/{job.id}">{job.id}</a>'
    assert '<span class="muted small">run #1</span>' in row
    assert 'aria-label="Stop Nightly export run #1"' in row
    assert "Job #" not in row
    history = client.get("/history").get_data(as_text=True)
    assert f'<td class="num"><a href="/jobs/{job.id}">{job.id}</a></td>' in history


def test_the_run_page_names_the_job_number_and_the_run_number(app, client, auth, users, job):
    start_run(export_job(users["user"], name="Other export"), users["user"])
    start_run(job, users["user"])
    run = start_run(job, users["user"])
    auth.login(users["user"].email)
    page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert "<title>Nightly export · run #2" in page
    assert f"Job #{job.id} · run #2 of this job" in page
    assert f"Job # {run.id}" not in page and f"Job #{run.id} " not in page
    answer = client.get(f"/runs/{run.id}/log.txt")
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"  # (it said its charset twice)
    assert answer.get_data(as_text=True).startswith(f"Nightly export — run #2 of Job #{job.id}, queued\n")


def test_a_notification_names_the_run_by_its_number(app, users, job):
    job.notify_emails = "ops@example.org"
    db.session.commit()
    planned = plan(daily(job))
    request_stop(planned, users["user"])
    assert send_run_notification(planned.id) == 1
    folder = app.config["OUTBOX_DIR"]
    (name,) = os.listdir(folder)
    with open(os.path.join(folder, name), "rb") as raw:
        message = email.message_from_binary_file(raw, policy=email.policy.default)
    assert str(message["Subject"]) == "[Conveyor] Nightly export #1 ended: cancelled"
    body = message.get_content()
    assert "“Nightly export”, run #1 ended: cancelled." in body and "None" not in body


def test_the_migration_takes_back_the_numbers_of_planned_runs_and_gives_them_again(tmp_path):
    app = create_app(
        {"VAR_DIR": str(tmp_path / "var"), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'n.db'}"}
    )
    with app.app_context():
        upgrade(revision="9b3e5d2c7f14")  # the head before planned runs went unnumbered
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO user (id, email, name, password_hash, role, active, created_at) "
                    "VALUES (1, 'u@example.org', 'U', 'x', 'user', 1, '2026-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO job (id, owner_id, job_type, name, params, active, last_run_number, "
                    "created_at, updated_at) VALUES (1, 1, 'user_data_export', 'J', '{}', 1, 3, "
                    "'2026-01-01', '2026-01-01')"
                )
            )
            for number, state, trigger, planned_for in [
                (1, "completed", "manual", None),
                (2, "skipped", "schedule", "2026-01-02 08:00:00"),
                (3, "scheduled", "schedule", "2026-01-03 08:00:00"),
            ]:
                conn.execute(
                    text(
                        "INSERT INTO run (owner_id, job_id, job_type, job_name, number, state, trigger, "
                        "planned_for, created_at, progress_done, checked, created, updated, unchanged, "
                        "skipped, rejected, checkpoint, in_monitor, sort_at) VALUES (1, 1, "
                        "'user_data_export', 'J', :number, :state, :trigger, :planned_for, '2026-01-01', "
                        "0, 0, 0, 0, 0, 0, 0, '{}', 1, '2026-01-01')"
                    ),
                    {"number": number, "state": state, "trigger": trigger, "planned_for": planned_for},
                )
        upgrade()

        def numbers():
            with db.engine.connect() as conn:
                runs = conn.execute(text("SELECT number FROM run ORDER BY id")).scalars().all()
                return runs, conn.execute(text("SELECT last_run_number FROM job")).scalar()

        assert numbers() == ([1, 2, None], 2)
        downgrade(revision="9b3e5d2c7f14")
        assert numbers() == ([1, 2, 3], 3)
        db.engine.dispose()
