"""Schedules on jobs: the form, planning one run per occurrence, overlap and missed runs."""

import re
from datetime import date, time, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from tests.conftest import export_job, fresh
from webapp.engine.firing import fire
from webapp.engine.planner import plan, plan_due
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.jobs import scheduling
from webapp.models import JobSchedule, Run
from webapp.models.base import utcnow
from webapp.rules.clock import to_local
from webapp.rules.states import RunState


def tomorrow_local(app):
    return (to_local(utcnow(), app.config["TIMEZONE"]) + timedelta(days=1)).date()


@pytest.fixture
def job(users):
    return export_job(users["user"], name="Nightly export")


@pytest.fixture
def logged_in(auth, users):
    auth.login("user@example.org")


def save(client, job, **fields):
    data = {
        "enabled": "y",
        "kind": "days_of_week",
        "start_date": date.today().isoformat(),
        "time": "01:30",
        "overlap_policy": "skip",
        **fields,
    }
    return client.post(f"/jobs/{job.id}/schedule", data=data)


def test_days_of_week_schedule_plans_its_next_run(app, client, logged_in, job):
    response = save(client, job, weekdays=["0", "4"])
    assert response.status_code == 302
    schedule = db.session.execute(db.select(JobSchedule)).scalar_one()
    assert schedule.weekdays == [0, 4] and schedule.time == time(1, 30)
    run = Run.query.filter_by(job_id=job.id).one()
    assert run.state is RunState.SCHEDULED and run.trigger == "schedule"
    assert run.planned_for == schedule.next_run_at == run.scheduled_for
    local = to_local(run.planned_for, app.config["TIMEZONE"])
    assert local.weekday() in (0, 4) and (local.hour, local.minute) == (1, 30)
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "<strong>Next</strong>" in page and "every Monday and Friday at 1:30 AM, New York time" in page


def test_editing_withdraws_the_planned_run_and_plans_again(app, client, logged_in, job):
    save(client, job, weekdays=["0"])
    first_planned = Run.query.filter_by(job_id=job.id).one().planned_for
    save(client, job, weekdays=["2"], time="07:00")
    runs = Run.query.filter_by(job_id=job.id).all()
    assert len(runs) == 1 and runs[0].planned_for != first_planned
    assert to_local(runs[0].planned_for, app.config["TIMEZONE"]).weekday() == 2
    assert runs[0].number is None  # a planned occurrence takes its number when it fires


def test_switching_off_plans_nothing(app, client, logged_in, job):
    save(client, job, weekdays=["0"])
    save(client, job, weekdays=["0"], enabled="")
    assert Run.query.filter_by(job_id=job.id).count() == 0
    assert db.session.execute(db.select(JobSchedule)).scalar_one().next_run_at is None


def test_times_per_day_switched_on_starts_the_first_run_now(app, client, logged_in, job):
    save(client, job, kind="times_per_day", times_per_day="4", time="00:00")
    runs = Run.query.filter_by(job_id=job.id).order_by(Run.id).all()
    assert [r.trigger for r in runs] == ["schedule", "schedule"]
    assert {r.state for r in runs} == {RunState.QUEUED, RunState.SCHEDULED}


def test_hourly_slot_in_the_past_is_refused(app, client, logged_in, job, monkeypatch):
    now_local = to_local(utcnow(), app.config["TIMEZONE"])
    # the slot checked at the same moment (the current slot of 11:59 PM must not become tomorrow's)
    monkeypatch.setattr(scheduling, "local_now", lambda: now_local.replace(tzinfo=None))
    response = save(
        client,
        job,
        kind="hourly_slot",
        hour=str(now_local.hour),
        slot=str(now_local.minute // 15),
        start_date=now_local.date().isoformat(),
    )
    html = response.get_data(as_text=True)
    assert "The time selected occurs in the past" in html and "The next free slot is " in html
    assert db.session.execute(db.select(JobSchedule)).scalar() is None


def test_hourly_slot_picks_and_shows_a_random_minute_inside_the_slot(app, client, logged_in, job):
    response = save(
        client, job, kind="hourly_slot", hour="14", slot="2", start_date=tomorrow_local(app).isoformat()
    )
    assert response.status_code == 302
    schedule = db.session.execute(db.select(JobSchedule)).scalar_one()
    assert 30 <= schedule.minute <= 44
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert f"daily at 2:{schedule.minute:02d} PM (its minute picked in 2:30–2:44 PM), New York time" in page
    assert f"It runs daily at 2:{schedule.minute:02d} PM, New York time" in page  # the flash


def test_one_run_per_occurrence_even_with_two_planners(app, users, job):
    schedule = JobSchedule(
        job_id=job.id,
        kind="days_of_week",
        start_date=date.today(),
        time=time(3, 0),
        weekdays=[0, 1, 2, 3, 4, 5, 6],
        enabled=True,
    )
    db.session.add(schedule)
    db.session.commit()
    first = plan(schedule)
    assert plan(schedule).id == first.id
    assert plan_due() == 0  # already planned
    duplicate = Run(
        job_id=job.id,
        owner_id=job.owner_id,
        job_type=job.job_type,
        job_name="x",
        number=99,
        planned_for=first.planned_for,
        checkpoint={},
    )
    db.session.add(duplicate)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


@pytest.mark.parametrize("policy,expected", [("skip", RunState.SKIPPED), ("queue", RunState.QUEUED)])
def test_overlap_policy_when_the_previous_run_is_still_going(app, users, job, policy, expected):
    running = start_run(job, users["user"])
    running.state = RunState.PROCESSING
    schedule = JobSchedule(
        job_id=job.id,
        kind="days_of_week",
        start_date=date.today(),
        time=time(3, 0),
        weekdays=list(range(7)),
        enabled=True,
        overlap_policy=policy,
    )
    db.session.add(schedule)
    db.session.commit()
    planned = plan(schedule)
    fire({planned.id: None})
    planned = fresh(planned)
    assert planned.state is expected
    if expected is RunState.SKIPPED:
        assert f"run #{running.number} was still processing" in planned.error


def test_missed_occurrence_more_than_an_hour_late_is_recorded_not_run(app, users, job):
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
    planned.scheduled_for = utcnow() - timedelta(hours=3)
    db.session.commit()
    fire({planned.id: None})
    planned = fresh(planned)
    assert planned.state is RunState.SKIPPED and planned.error.startswith("Missed:")


def test_preview_lists_the_next_ten_runs_and_marks_dst_moves(app, client, logged_in, job):
    args = {
        "kind": "days_of_week",
        "start_date": "2099-03-07",  # far ahead: a start date that has passed previews from today
        "time": "02:30",
        "weekdays": ["6"],
        "enabled": "y",
    }
    html = client.get(f"/jobs/{job.id}/schedule/preview", query_string=args).get_data(as_text=True)
    assert html.count("<li>") == 10
    assert "Mar 8, 2099 3:00 AM EDT" in html and "moved by DST" in html  # clocks spring forward
    assert "Mar 15, 2099 2:30 AM EDT" in html


def test_kind_change_swaps_in_that_kinds_fields(app, client, logged_in, job):
    html = client.get(
        f"/jobs/{job.id}/schedule/fields",
        query_string={"kind": "weekday_of_month", "start_date": "2027-01-01"},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert "Which" in html and "Weekday" in html and "Days" not in html
    assert 'hx-swap-oob="true"' in html  # the preview is refreshed with it


def test_schedule_warns_when_runs_come_faster_than_the_job_takes(app, client, logged_in, users, job):
    done = start_run(job, users["user"])
    done.state, done.started_at = RunState.COMPLETED, utcnow() - timedelta(hours=5)
    done.finished_at = utcnow()
    db.session.commit()
    html = client.get(
        f"/jobs/{job.id}/schedule/preview",
        query_string={
            "kind": "times_per_day",
            "times_per_day": "24",
            "time": "00:00",
            "start_date": "2027-01-01",
        },
    ).get_data(as_text=True)
    assert "Runs are planned 60 minutes apart, but this job usually takes 5 h 00 min" in html


def test_other_users_schedules_are_404(client, auth, users):
    job = export_job(users["other"])
    auth.login("user@example.org")
    assert client.get(f"/jobs/{job.id}/schedule").status_code == 404
    assert client.get(f"/jobs/{job.id}/schedule/preview").status_code == 404
    assert save(client, job, weekdays=["0"]).status_code == 404


def daily(job, **extra):
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


def test_pausing_withdraws_the_planned_run_and_shows_who_and_why(app, client, logged_in, users, job):
    schedule = daily(job)
    plan(schedule)
    response = client.post(
        f"/jobs/{job.id}/schedule/pause", data={"reason": "Data cleanup this week", "resume_on": "2030-01-06"}
    )
    assert response.status_code == 302
    assert Run.query.filter_by(job_id=job.id).count() == 0
    assert plan_due() == 0  # a paused schedule plans nothing
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "Schedule paused by User" in page and "Data cleanup this week" in page
    assert "resumes by itself on Jan 6, 2030" in page
    assert "Data cleanup this week" in client.get("/").get_data(as_text=True)
    paused_note = "The schedule is paused: none of these runs happens until it is resumed."
    assert paused_note in client.get(f"/jobs/{job.id}/schedule").get_data(as_text=True)
    client.post(f"/jobs/{job.id}/schedule/resume")
    assert paused_note not in client.get(f"/jobs/{job.id}/schedule").get_data(as_text=True)
    assert Run.query.filter_by(job_id=job.id, state=RunState.SCHEDULED).count() == 1


def test_pause_needs_a_reason(app, client, logged_in, job):
    daily(job)
    client.post(f"/jobs/{job.id}/schedule/pause", data={"reason": ""})
    assert db.session.execute(db.select(JobSchedule)).scalar_one().paused_at is None


def test_pause_ends_by_itself_on_its_resume_date(app, users, job):
    from webapp.engine.planner import pause_schedule

    schedule = daily(job)
    pause_schedule(schedule, users["user"].id, "holiday", date(2020, 1, 1))
    plan_due()  # the resume date is past: resumed and planned again
    assert db.session.get(JobSchedule, schedule.id).paused_at is None
    assert Run.query.filter_by(job_id=job.id, state=RunState.SCHEDULED).count() == 1


@pytest.mark.parametrize("scope", ["account", "job"])
def test_occurrences_in_a_blackout_are_skipped_and_say_so(app, client, auth, users, job, scope):
    schedule = daily(job)
    planned = plan(schedule)
    day = to_local(planned.planned_for, app.config["TIMEZONE"]).date()
    auth.login("admin@example.org" if scope == "account" else "user@example.org")
    url = "/admin/blackouts" if scope == "account" else f"/jobs/{job.id}/blackouts"
    response = client.post(
        url, data={"start_date": day.isoformat(), "end_date": day.isoformat(), "reason": "Giving Tuesday"}
    )
    assert response.status_code == 302
    fire({planned.id: None})
    planned = fresh(planned)
    assert planned.state is RunState.SKIPPED
    label = "account" if scope == "account" else "schedule"
    assert planned.error == f"Skipped for the blackout: Giving Tuesday ({label} blackout)."


@pytest.mark.parametrize("scope", ["account", "job"])
def test_blackout_dates_sent_twice_are_saved_once_and_a_refusal_names_its_fields(
    app, client, auth, users, job, scope
):
    from webapp.models import Blackout

    auth.login("admin@example.org" if scope == "account" else "user@example.org")
    url = "/admin/blackouts" if scope == "account" else f"/jobs/{job.id}/blackouts"
    dates = {"start_date": "2030-12-24", "end_date": "2030-12-26", "reason": "Holidays"}
    assert client.post(url, data=dates).status_code == 302
    again = client.post(url, data=dates, follow_redirects=True)  # a Resend
    assert "blackout dates are saved already." in again.get_data(as_text=True)
    assert Blackout.query.count() == 1
    assert client.post(url, data={**dates, "reason": "Closed"}).status_code == 302  # other ones
    assert Blackout.query.count() == 2
    refused = client.post(url, data={"reason": "x" * 201}, follow_redirects=True).get_data(as_text=True)
    assert "From: This field is required." in refused and "To: This field is required." in refused
    assert "Reason: Field cannot be longer than 200 characters." in refused


def test_blackout_dates_must_be_in_order(app, client, logged_in, job):
    client.post(
        f"/jobs/{job.id}/blackouts",
        data={"start_date": "2030-05-02", "end_date": "2030-05-01", "reason": "x"},
    )
    from webapp.models import Blackout

    assert Blackout.query.count() == 0


def test_preview_marks_runs_that_fall_in_a_blackout(app, client, logged_in, job):
    from webapp.models import Blackout

    db.session.add(
        Blackout(
            job_id=None, start_date=date(2030, 12, 3), end_date=date(2030, 12, 3), reason="Giving Tuesday"
        )
    )
    db.session.commit()
    html = client.get(
        f"/jobs/{job.id}/schedule/preview",
        query_string={
            "kind": "days_of_week",
            "start_date": "2030-12-01",
            "time": "09:00",
            "weekdays": ["0", "1", "2"],
        },
    ).get_data(as_text=True)
    assert "skipped: blackout (Giving Tuesday)" in html


def test_pages_have_plain_titles(app, client, auth, users, job):
    daily(job)
    auth.login("admin@example.org")
    job.owner_id = users["admin"].id
    db.session.commit()
    for url in (
        f"/jobs/{job.id}",
        f"/jobs/{job.id}/schedule",
        "/admin/settings",
        "/",
        "/history",
        "/campaigns/",
        "/jobs/",
        "/admin/users",
    ):
        html = client.get(url).get_data(as_text=True)
        title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
        assert "<" not in title and len(title) < 120, (url, title)


LATER_THAN_PLANNABLE = "Choose a date on or before Dec 31, 2100: Conveyor cannot plan later dates."


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "once", "once_at": "9999-12-31T23:30"},
        {"kind": "once", "once_at": "2101-01-01T00:00"},
        {"weekdays": ["0"], "start_date": "2101-01-01"},
    ],
)
def test_the_form_refuses_dates_after_2100_with_a_field_message(app, client, logged_in, job, fields):
    response = save(client, job, **fields)
    assert response.status_code == 200
    assert LATER_THAN_PLANNABLE in response.get_data(as_text=True)
    assert JobSchedule.query.count() == 0


def test_the_form_refuses_a_once_date_in_the_past_while_the_schedule_is_on(app, client, logged_in, job):
    yesterday = to_local(utcnow(), app.config["TIMEZONE"]).date() - timedelta(days=1)
    response = save(client, job, kind="once", once_at=f"{yesterday.isoformat()}T09:00")
    assert "This date and time has passed (it is now " in response.get_data(as_text=True)
    assert JobSchedule.query.count() == 0
    off = {
        "kind": "once",
        "once_at": f"{yesterday.isoformat()}T09:00",
        "start_date": yesterday.isoformat(),
        "overlap_policy": "skip",
        "misfire_policy": "run_once",
        "misfire_grace_minutes": "60",
    }  # no "enabled"
    assert client.post(f"/jobs/{job.id}/schedule", data=off).status_code == 302  # switched off


@pytest.mark.parametrize("scope", ["account", "job"])
def test_blackout_dates_after_2100_are_refused(app, client, auth, users, job, scope):
    from webapp.models import Blackout

    auth.login("admin@example.org" if scope == "account" else "user@example.org")
    url = "/admin/blackouts" if scope == "account" else f"/jobs/{job.id}/blackouts"
    response = client.post(
        url,
        data={"start_date": "2100-12-30", "end_date": "9999-12-31", "reason": "Forever"},
        follow_redirects=True,
    )
    assert LATER_THAN_PLANNABLE in response.get_data(as_text=True)
    assert Blackout.query.count() == 0


def test_a_pause_cannot_resume_after_2100(app, client, logged_in, job):
    daily(job)
    response = client.post(
        f"/jobs/{job.id}/schedule/pause",
        follow_redirects=True,
        data={"reason": "Until further notice", "resume_on": "9999-12-31"},
    )
    assert LATER_THAN_PLANNABLE in response.get_data(as_text=True)
    assert db.session.execute(db.select(JobSchedule)).scalar_one().paused_at is None


@pytest.mark.parametrize("resume_on", ["2000-01-01", "today"])
def test_a_pause_cannot_resume_on_a_day_that_has_come(app, client, logged_in, job, resume_on):
    """It would resume at the scheduler's next look: a pause of a minute, not what was meant."""
    daily(job)
    if resume_on == "today":
        resume_on = to_local(utcnow(), app.config["TIMEZONE"]).date().isoformat()
    response = client.post(
        f"/jobs/{job.id}/schedule/pause",
        follow_redirects=True,
        data={"reason": "Audit", "resume_on": resume_on},
    )
    assert "Choose a day after today, or leave it empty to resume by hand." in response.get_data(as_text=True)
    assert db.session.execute(db.select(JobSchedule)).scalar_one().paused_at is None


@pytest.mark.parametrize("field", ["start_date", "blackout"])
def test_a_day_before_1970_is_refused_for_a_schedule_and_a_blackout(app, client, logged_in, job, field):
    """Year 1 was saved, then shown as no date at all (a browser's date field wants four digits)."""
    from webapp.models import Blackout

    if field == "start_date":
        page = save(client, job, weekdays=["0"], start_date="0001-01-01")
        assert JobSchedule.query.count() == 0
    else:
        daily(job)
        page = client.post(
            f"/jobs/{job.id}/blackouts",
            data={"start_date": "0001-01-01", "end_date": "0001-01-02", "reason": "Old"},
            follow_redirects=True,
        )
        assert Blackout.query.count() == 0
    assert "Choose a date on or after Jan 1, 1970." in page.get_data(as_text=True)
