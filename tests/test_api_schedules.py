"""Schedules through the API: set with the schedule page's own checks, previewed (the next 10
runs, as the planner plans them), paused and resumed (the planned run withdrawn and planned
again), blackout dates, each audited as on the page with "(API)"; another user's job is a 404."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from tests.conftest import export_job
from tests.test_api_tokens import api, make_token
from tests.test_email_campaign import campaign_for
from webapp.api.v1 import schedules as api_schedules
from webapp.api.v1.core import iso
from webapp.api.v1.schedules import BlackoutOut, NextRuns, ScheduleOut, ScheduleSet
from webapp.engine import planner
from webapp.extensions import db
from webapp.jobs import scheduling
from webapp.models import AuditEntry, Job, JobSchedule, Run
from webapp.models.base import utcnow
from webapp.rules.clock import to_local
from webapp.rules.recurrence import ScheduleKind, next_runs
from webapp.rules.states import RunState

WEEKLY = {"kind": "days_of_week", "weekdays": [0, 2, 4], "time": "06:30", "start_date": "2030-01-01"}


@pytest.fixture
def job(users):
    return export_job(users["user"], name="Weekly export")


@pytest.fixture
def secret(client, auth, users):
    return make_token(client, auth, "user@example.org", access="write")


def planned(job: Job) -> list[Run]:
    """The job's scheduled runs waiting for their time."""
    return Run.query.filter_by(job_id=job.id, state=RunState.SCHEDULED).all()


def put(client, job, secret, **body):
    return api(client, f"/api/v1/jobs/{job.id}/schedule", secret, method="PUT", json=body)


def test_a_schedule_set_is_planned_and_its_preview_is_the_planners_next_10(app, client, job, secret):
    assert api(client, f"/api/v1/jobs/{job.id}/schedule", secret).status_code == 404  # none yet
    saved = put(client, job, secret, **WEEKLY)
    assert saved.status_code == 200, saved.json
    answer = ScheduleSet.model_validate(saved.json)
    assert answer.message == "Schedule saved."
    assert answer.schedule.description == "every Monday and Wednesday and Friday at 6:30 AM"
    assert (answer.schedule.kind, answer.schedule.weekdays, answer.schedule.time) == (
        "days_of_week",
        [0, 2, 4],
        "06:30",
    )
    db.session.expire_all()
    schedule = db.session.get(Job, job.id).schedule
    (run,) = planned(job)
    assert answer.schedule.next_run_at == iso(schedule.next_run_at) == iso(run.planned_for)
    preview = NextRuns.model_validate(api(client, f"/api/v1/jobs/{job.id}/schedule/preview", secret).json)
    expected = next_runs(schedule.as_schedule(app.config["TIMEZONE"]), utcnow(), 10)
    assert [found.at for found in preview.runs] == [iso(at) for at in expected]
    assert preview.runs[0].at == iso(planner.next_occurrence(schedule)) == iso(run.planned_for)
    assert preview.runs[0].local == "Jan 2, 2030 6:30 AM EST"  # 2030-01-02 is a Wednesday
    read = ScheduleOut.model_validate(api(client, f"/api/v1/jobs/{job.id}/schedule", secret).json)
    assert read == answer.schedule
    entry = AuditEntry.query.filter_by(action="schedule.set").one()
    assert entry.detail == "every Monday and Wednesday and Friday at 6:30 AM (on) (API)"


def test_setting_it_again_replans_and_an_hourly_slot_keeps_its_picked_minute(client, job, secret):
    put(client, job, secret, **WEEKLY)
    first = planned(job)[0].planned_for
    slot = {"kind": "hourly_slot", "hour": 9, "slot": 2, "start_date": "2030-01-01"}
    saved = put(client, job, secret, **slot).json
    minute = saved["schedule"]["minute"]
    assert 30 <= minute <= 44 and f":{minute:02d} was picked at random" in saved["message"]
    (run,) = planned(job)  # the weekly run withdrawn, the slot's planned
    assert run.planned_for != first and to_local(run.planned_for, "America/New_York").minute == minute
    assert put(client, job, secret, **slot, misfire_grace_minutes=30).json["schedule"]["minute"] == minute
    off = put(client, job, secret, **WEEKLY, enabled=False)
    assert "It is off" in off.json["message"] and off.json["schedule"]["next_run_at"] is None
    assert planned(job) == []


def test_a_proposed_schedule_is_previewed_without_being_saved(client, job, secret):
    url = f"/api/v1/jobs/{job.id}/schedule/preview"
    shown = api(
        client, url, secret, method="POST", json={**WEEKLY, "kind": "day_of_month", "day_of_month": 31}
    )
    assert shown.status_code == 200
    days = [found["local"].split(",")[0] for found in shown.json["runs"]]
    assert len(days) == 10 and "Feb 31" not in days and days[:3] == ["Jan 31", "Mar 31", "May 31"]
    assert job.schedule is None and planned(job) == []


@pytest.mark.parametrize(
    "body,field,words",
    [
        ({"kind": "days_of_week", "time": "06:30"}, "weekdays", "Required for this kind of schedule."),
        ({**WEEKLY, "start_date": "1 Jan"}, "start_date", "This field is required."),
        (
            {**WEEKLY, "day_of_month": 32, "kind": "day_of_month"},
            "day_of_month",
            "Number must be between 1 and 31.",
        ),
        ({**WEEKLY, "times_per_day": 5, "kind": "times_per_day"}, "times_per_day", "Not a valid choice."),
        ({**WEEKLY, "misfire_grace_minutes": 1441}, "misfire_grace_minutes", "Between 1 and 1440 minutes."),
        ({"kind": "once", "once_at": "2001-01-01T09:00"}, "once_at", "This date and time has passed"),
        (
            {"kind": "once", "start_date": "2099-06-02", "once_at": "2099-06-01T09:00"},
            "once_at",
            "This is before the start date (Jun 2, 2099)",
        ),
    ],
)
def test_the_schedule_forms_own_checks_answer_a_422_naming_the_field(client, job, secret, body, field, words):
    refused = put(client, job, secret, **body)
    assert refused.status_code == 422, refused.json
    assert any(words in said for said in refused.json["error"]["problems"][field]), refused.json
    assert job.schedule is None


def test_a_slot_that_has_begun_today_is_refused_as_the_page_refuses_it(app, client, job, secret, monkeypatch):
    # mid-morning today, whatever the clock says (late at night the next slot would be tomorrow's;
    # early in the morning 10:15 would not have begun): the clock the slot check itself reads
    now = datetime.combine(to_local(utcnow(), app.config["TIMEZONE"]).date(), time(10, 20))
    monkeypatch.setattr(scheduling, "local_now", lambda: now)
    begun = {
        "kind": "hourly_slot",
        "hour": now.hour,
        "slot": now.minute // 15,
        "start_date": now.date().isoformat(),
    }
    refused = put(client, job, secret, **begun)
    assert refused.status_code == 422
    assert "The time selected occurs in the past" in " ".join(refused.json["error"]["problems"]["hour"])


def test_pause_withdraws_the_planned_run_and_resume_plans_it_again(client, users, job, secret):
    put(client, job, secret, **WEEKLY)
    (before,) = planned(job)
    url = f"/api/v1/jobs/{job.id}/schedule"
    assert api(client, f"{url}/resume", secret, method="POST").status_code == 409  # not paused
    paused = api(
        client, f"{url}/pause", secret, method="POST", json={"reason": "Audit", "resume_on": "2030-03-01"}
    )
    assert paused.status_code == 200, paused.json
    assert paused.json["next_run_at"] is None and planned(job) == []
    assert paused.json["paused"]["reason"] == "Audit" and paused.json["paused"]["resume_on"] == "2030-03-01"
    assert paused.json["paused"]["paused_by"] == "user@example.org"
    entry = AuditEntry.query.filter_by(action="schedule.paused").one()
    assert (
        entry.detail == "Reason: Audit; resumes on Mar 1, 2030 (API)" and entry.actor_id == users["user"].id
    )
    resumed = api(client, f"{url}/resume", secret, method="POST")
    assert resumed.status_code == 200 and resumed.json["paused"] is None
    (after,) = planned(job)
    assert after.planned_for == before.planned_for and resumed.json["next_run_at"] == iso(after.planned_for)
    assert AuditEntry.query.filter_by(action="schedule.resumed").one().detail == "(API)"
    no_reason = api(client, f"{url}/pause", secret, method="POST", json={"reason": " "})
    assert no_reason.status_code == 422 and no_reason.json["error"]["problems"]["reason"]


def test_blackout_dates_are_added_marked_in_the_preview_and_removed(client, job, secret):
    put(client, job, secret, **WEEKLY)
    url = f"/api/v1/jobs/{job.id}/blackouts"
    added = api(
        client,
        url,
        secret,
        method="POST",
        json={"start_date": "2030-01-02", "end_date": "2030-01-03", "reason": "Office closed"},
    )
    assert added.status_code == 201, added.json
    blackout = BlackoutOut.model_validate(added.json)
    retried = api(client, url, secret, method="POST", json=blackout.model_dump(exclude={"id"}))
    assert retried.json["id"] == blackout.id  # the same dates sent again: no twin
    preview = api(client, f"/api/v1/jobs/{job.id}/schedule/preview", secret).json["runs"]
    assert preview[0]["blackout"] == "Office closed" and preview[1]["blackout"] is None
    assert [b["id"] for b in api(client, url, secret).json["blackouts"]] == [blackout.id]
    assert api(client, f"/api/v1/jobs/{job.id}/schedule", secret).json["blackouts"] == [added.json]
    backwards = api(
        client,
        url,
        secret,
        method="POST",
        json={"start_date": "2030-01-03", "end_date": "2030-01-02", "reason": "x"},
    )
    assert backwards.status_code == 422
    assert backwards.json["error"]["problems"]["end_date"] == ["The end date is before the start date."]
    assert "(API)" in AuditEntry.query.filter_by(action="blackout.added").one().detail
    removed = api(client, f"{url}/{blackout.id}", secret, method="DELETE")
    assert removed.status_code == 200 and removed.json == {"deleted": blackout.id}
    assert api(client, f"{url}/{blackout.id}", secret, method="DELETE").status_code == 404
    assert api(client, url, secret).json["blackouts"] == []
    assert "(API)" in AuditEntry.query.filter_by(action="blackout.removed").one().detail


def test_another_users_job_and_its_blackouts_are_a_404_except_to_a_super_admin(client, auth, users, secret):
    theirs = export_job(users["other"], name="Secret list of other")
    calls = [
        ("GET", "/schedule", None),
        ("PUT", "/schedule", WEEKLY),
        ("GET", "/schedule/preview", None),
        ("POST", "/schedule/preview", WEEKLY),
        ("POST", "/schedule/pause", {"reason": "x"}),
        ("POST", "/schedule/resume", None),
        ("GET", "/blackouts", None),
        ("POST", "/blackouts", {"start_date": "2030-01-02", "end_date": "2030-01-02", "reason": "x"}),
    ]
    for method, path, body in calls:
        hidden = api(client, f"/api/v1/jobs/{theirs.id}{path}", secret, method=method, json=body)
        assert hidden.status_code == 404, (method, path)
        assert "Secret" not in hidden.get_data(as_text=True)
    assert (
        theirs.schedule is None and AuditEntry.query.filter(AuditEntry.action.like("blackout%")).count() == 0
    )
    boss = make_token(client, auth, "super@example.org", access="write")
    assert put(client, theirs, boss, **WEEKLY).status_code == 200
    own = export_job(users["user"])
    made = api(client, f"/api/v1/jobs/{theirs.id}/blackouts", boss, method="POST", json=calls[-1][2]).json
    assert (
        api(client, f"/api/v1/jobs/{own.id}/blackouts/{made['id']}", secret, method="DELETE").status_code
        == 404
    )


def test_a_campaign_has_no_schedule_of_its_own_and_bodies_are_checked(client, users, job, secret):
    campaign = campaign_for(users["user"])
    assert api(client, f"/api/v1/jobs/{campaign.job_id}/schedule", secret).status_code == 404
    url = f"/api/v1/jobs/{job.id}/schedule"
    assert api(client, url, secret, method="PUT", data="kind=once").status_code == 415
    assert (
        api(client, url, secret, method="PUT", data="{", content_type="application/json").status_code == 400
    )
    for body in ({"kind": "fortnightly"}, {**WEEKLY, "colour": "red"}, {**WEEKLY, "hour": "nine"}):
        assert put(client, job, secret, **body).status_code == 422, body
    no_schedule = api(client, f"{url}/pause", secret, method="POST", json={"reason": "x"})
    assert no_schedule.status_code == 409 and "no schedule to pause" in no_schedule.json["error"]["message"]


def test_a_read_only_token_reads_a_schedule_but_may_not_change_it(client, auth, users, job, secret):
    put(client, job, secret, **WEEKLY)
    reader = make_token(client, auth, "user@example.org", name="Reader")
    assert api(client, f"/api/v1/jobs/{job.id}/schedule", reader).status_code == 200
    assert put(client, job, reader, **WEEKLY, enabled=False).status_code == 403
    assert (
        api(
            client, f"/api/v1/jobs/{job.id}/schedule/pause", reader, method="POST", json={"reason": "x"}
        ).status_code
        == 403
    )
    assert db.session.get(Job, job.id).schedule.enabled and not db.session.get(Job, job.id).schedule.paused


def test_switching_on_times_per_day_starts_a_run_now_as_on_the_page(client, job, secret):
    saved = put(
        client,
        job,
        secret,
        kind="times_per_day",
        times_per_day=2,
        time="00:00",
        start_date=(utcnow() + timedelta(days=400)).date().isoformat(),
    )
    assert (
        saved.status_code == 200 and "started now, as the schedule was switched on" in saved.json["message"]
    )
    assert "(API)" in AuditEntry.query.filter_by(action="run.started").one().detail
    assert ScheduleKind(saved.json["schedule"]["kind"]) is ScheduleKind.TIMES_PER_DAY


def test_a_first_schedule_saved_meanwhile_by_another_request_is_updated_not_a_500(
    client, job, secret, monkeypatch
):
    """Two first saves at once: both read "no schedule"; the one that commits second finds the
    other's row (the job's one schedule) and saves over it, rather than failing on the key."""
    real = api_schedules.set_schedule

    def racing(job, existing, form, minute, note=""):
        assert existing is None
        db.session.add(
            JobSchedule(
                job_id=job.id, kind="days_of_week", weekdays=[3], time=time(7), start_date=date(2030, 1, 1)
            )
        )
        db.session.commit()  # the other request's, between this one's read and its write
        return real(job, existing, form, minute, note)

    monkeypatch.setattr(api_schedules, "set_schedule", racing)
    saved = put(client, job, secret, **WEEKLY)
    assert saved.status_code == 200, saved.json
    db.session.expire_all()
    (schedule,) = JobSchedule.query.filter_by(job_id=job.id).all()
    assert (schedule.weekdays, schedule.time) == ([0, 2, 4], time(6, 30))
    assert len(planned(job)) == 1
