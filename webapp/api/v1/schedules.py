"""Schedules by the API: read a job's (or group's) schedule, set it, preview its next 10 runs,
pause and resume it, and its blackout dates. A body fills the schedule page's own forms, so the
same checks apply with the same messages, and the page's own functions save, plan and audit."""

from __future__ import annotations

from typing import Literal

from flask import current_app
from pydantic import BaseModel, Field

from webapp.api.v1.core import fail, iso
from webapp.api.v1.forms import form_data, refuse_if_invalid, validated
from webapp.api.v1.schemas import Body, Deleted
from webapp.api.v1.spec import operation
from webapp.engine import planner
from webapp.extensions import db
from webapp.jobs.schedule_forms import BlackoutForm, PauseForm, ScheduleForm, describe_schedule, local_now
from webapp.jobs.scheduling import (
    add_blackout_dates,
    blackouts_of,
    pause_job_schedule,
    preview_runs,
    remove_blackout_dates,
    resume_job_schedule,
    savable,
    set_schedule,
    slot_minute,
)
from webapp.models.jobs import Job
from webapp.models.schedules import Blackout, JobSchedule
from webapp.permissions import schedulable_job_or_404
from webapp.rules.clock import format_local

TAG = "Schedules"
NOTE = " (API)"  # added to the audit entries, which otherwise read as the page's


class ScheduleIn(Body):
    """A schedule, as the schedule page's form takes it: `kind` and the fields it needs.

    times_per_day: `time` (the first run) and `times_per_day`; days_of_week: `weekdays` and
    `time`; day_of_month: `day_of_month` and `time`; weekday_of_month: `week_of_month`,
    `weekday` and `time`; hourly_slot: `hour` and `slot` (its minute is picked at random);
    once: `once_at`. Times are wall-clock times in the account's time zone."""

    enabled: bool = Field(default=True, description="on: it runs by itself; off: saved, nothing runs")
    kind: Literal["times_per_day", "days_of_week", "day_of_month", "weekday_of_month", "hourly_slot", "once"]
    start_date: str | None = Field(default=None, max_length=40, description="YYYY-MM-DD; today when left out")
    time: str | None = Field(default=None, max_length=40, description="HH:MM, 24-hour")
    times_per_day: int | None = Field(
        default=None, description="runs a day, evenly spaced: 1, 2, 3, 4, 6, 8, 12 or 24"
    )
    weekdays: list[int] | None = Field(default=None, max_length=7, description="0 Monday … 6 Sunday")
    day_of_month: int | None = Field(default=None, description="1-31 (a month without it is skipped)")
    week_of_month: int | None = Field(default=None, description="1-4, or -1 for the last")
    weekday: int | None = Field(default=None, description="0 Monday … 6 Sunday")
    hour: int | None = Field(default=None, description="0-23")
    slot: int | None = Field(default=None, description="the quarter of the hour: 0 (:00-:14) … 3 (:45-:59)")
    once_at: str | None = Field(default=None, max_length=40, description="YYYY-MM-DDTHH:MM")
    overlap_policy: Literal["skip", "queue"] | None = Field(default=None, description="skip when left out")
    misfire_policy: Literal["run_once", "skip"] | None = Field(
        default=None, description="run_once when left out"
    )
    misfire_grace_minutes: int | None = Field(default=None, description="1-1440; 60 when left out")


class PauseIn(Body):
    """Why the schedule is paused, and maybe the day it resumes by itself."""

    reason: str = Field(max_length=300)
    resume_on: str | None = Field(default=None, max_length=40, description="YYYY-MM-DD")


class BlackoutIn(Body):
    """Days on which the schedule's runs are skipped."""

    start_date: str = Field(max_length=40, description="YYYY-MM-DD")
    end_date: str = Field(max_length=40, description="YYYY-MM-DD, the last day skipped")
    reason: str = Field(max_length=200, description="e.g. Giving Tuesday, office closed")


class BlackoutOut(BaseModel):
    """Blackout dates of a job's schedule."""

    id: int
    start_date: str
    end_date: str
    reason: str


class Paused(BaseModel):
    """A pause: why, since when, by whom, and the day it ends by itself."""

    reason: str | None
    paused_at: str | None
    paused_by: str | None
    resume_on: str | None


class ScheduleOut(BaseModel):
    """A job's schedule: what it is, in words too, and its next planned run."""

    job_id: int
    enabled: bool
    kind: str
    description: str = Field(description="in words, as the job's page says it")
    start_date: str
    time: str | None
    times_per_day: int | None
    weekdays: list[int] | None
    day_of_month: int | None
    week_of_month: int | None
    weekday: int | None
    hour: int | None
    slot: int | None
    minute: int | None = Field(description="an hourly slot's minute, picked at random when saved")
    once_at: str | None
    overlap_policy: str
    misfire_policy: str
    misfire_grace_minutes: int
    next_run_at: str | None = Field(description="the planned next run; null when off, paused or done")
    paused: Paused | None
    problem: str | None = Field(description="why it cannot be planned, if it cannot")
    blackouts: list[BlackoutOut]


class ScheduleSet(BaseModel):
    """What saving did, and the schedule as it is now."""

    message: str
    schedule: ScheduleOut


class NextRun(BaseModel):
    at: str = Field(description="UTC, with its zone")
    local: str = Field(description="in the account's time zone, as the page shows it")
    moved_by_dst: bool = Field(description="the time does not exist that day: it runs at the end of the gap")
    blackout: str | None = Field(description="the blackout's reason when the run is skipped for it")


class NextRuns(BaseModel):
    """The next 10 runs, as the schedule page's preview lists them, or why there are none."""

    runs: list[NextRun]
    warning: str | None = Field(description="e.g. runs come faster than the job usually takes")
    note: str | None
    problem: str | None


def _blackout_out(blackout: Blackout) -> BlackoutOut:
    return BlackoutOut(
        id=blackout.id,
        start_date=blackout.start_date.isoformat(),
        end_date=blackout.end_date.isoformat(),
        reason=blackout.reason,
    )


def schedule_out(job: Job) -> ScheduleOut:
    """A job's saved schedule as the API shows it."""
    schedule = _schedule_of(job)
    paused = None
    if schedule.paused:
        paused = Paused(
            reason=schedule.paused_reason,
            paused_at=iso(schedule.paused_at),
            paused_by=schedule.paused_by.email if schedule.paused_by else None,
            resume_on=schedule.resume_on.isoformat() if schedule.resume_on else None,
        )
    return ScheduleOut(
        job_id=job.id,
        enabled=schedule.enabled,
        kind=schedule.kind,
        description=describe_schedule(schedule),
        start_date=schedule.start_date.isoformat(),
        time=schedule.time.strftime("%H:%M") if schedule.time else None,
        times_per_day=schedule.times_per_day,
        weekdays=sorted(schedule.weekdays) if schedule.weekdays else None,
        day_of_month=schedule.day_of_month,
        week_of_month=schedule.week_of_month,
        weekday=schedule.weekday,
        hour=schedule.hour,
        slot=schedule.slot,
        minute=schedule.minute,
        once_at=schedule.once_at.strftime("%Y-%m-%dT%H:%M") if schedule.once_at else None,
        overlap_policy=schedule.overlap_policy,
        misfire_policy=schedule.misfire_policy,
        misfire_grace_minutes=schedule.misfire_grace_minutes,
        next_run_at=iso(schedule.next_run_at),
        paused=paused,
        problem=planner.problem_of(schedule),
        blackouts=[_blackout_out(found) for found in blackouts_of(job)],
    )


def _schedule_form(body: ScheduleIn) -> ScheduleForm:
    """The schedule form filled from the body, checked as the page checks it (a 422 naming
    each problem)."""
    values = body.model_dump()
    if values["start_date"] is None:
        values["start_date"] = local_now().date().isoformat()  # the page's own first value
    form = ScheduleForm(formdata=form_data(values), meta={"csrf": False})
    validated(form, "schedule")
    return form


def _schedule_of(job: Job) -> JobSchedule:
    """The job's schedule; a 404 saying so when it has none."""
    if job.schedule is None:
        raise fail(404, "this job has no schedule yet: set one with PUT")
    return job.schedule


def _scheduled_job_or_404(job_id: int) -> Job:
    """A job the token's user may see that has a schedule (a 404 saying so when it has none)."""
    job = schedulable_job_or_404(job_id)
    _schedule_of(job)
    return job


@operation("GET", "/jobs/<int:job_id>/schedule", tag=TAG, answers={200: ScheduleOut}, errors=(404,))
def schedule(job_id: int):
    """A job's (or group's) schedule, its next planned run, pause and blackout dates.

    404 when the job has none (or is a campaign: its launch time is its schedule)."""
    return schedule_out(_scheduled_job_or_404(job_id))


@operation(
    "PUT",
    "/jobs/<int:job_id>/schedule",
    tag=TAG,
    answers={200: ScheduleSet},
    body=ScheduleIn,
    errors=(400, 403, 404, 415),
    found=schedulable_job_or_404,
)
def save_schedule(job_id: int, body: ScheduleIn):
    """Set a job's schedule, as saving the schedule page does: its next run is planned again.

    The page's checks apply, each problem named in a 422 (e.g. a slot that has begun today:
    "the time selected occurs in the past"). Switching on a times-per-day schedule starts a run
    now, as on the page."""
    job = schedulable_job_or_404(job_id)
    existing = job.schedule
    form = _schedule_form(body)
    minute = slot_minute(form, existing)
    if not savable(form, existing, minute):
        refuse_if_invalid(form, "schedule")
    message = set_schedule(job, existing, form, minute, note=NOTE)  # runs wait if the queue is down
    return ScheduleSet(message=message, schedule=schedule_out(job))


def _next_runs(preview: dict) -> NextRuns:
    """The page's preview (webapp.jobs.scheduling.preview_runs) as the API answers it."""
    tz = current_app.config["TIMEZONE"]
    return NextRuns(
        runs=[
            NextRun(
                at=iso(run["at"]) or "",
                local=format_local(run["at"], tz),
                moved_by_dst=run["moved"],
                blackout=run["blackout"].reason if run["blackout"] else None,
            )
            for run in preview.get("runs", [])
        ],
        warning=preview.get("warning"),
        note=preview.get("note") or preview.get("hint"),
        problem=preview.get("problem"),
    )


@operation("GET", "/jobs/<int:job_id>/schedule/preview", tag=TAG, answers={200: NextRuns}, errors=(404,))
def schedule_next_runs(job_id: int):
    """The next 10 runs of the job's saved schedule, as its page's preview lists them.

    Runs on blackout dates are marked (they are skipped); `warning` says when runs come faster
    than the job usually takes."""
    job = _scheduled_job_or_404(job_id)
    form = ScheduleForm(formdata=None, obj=job.schedule, meta={"csrf": False})
    return _next_runs(preview_runs(form, job.id, job.schedule))


@operation(
    "POST",
    "/jobs/<int:job_id>/schedule/preview",
    tag=TAG,
    answers={200: NextRuns},
    body=ScheduleIn,
    errors=(400, 403, 404, 415),
    found=schedulable_job_or_404,
)
def preview_schedule(job_id: int, body: ScheduleIn):
    """The next 10 runs a schedule would make, before it is set (nothing is saved).

    The same checks as setting it apply (a 422 naming each problem)."""
    job = schedulable_job_or_404(job_id)
    return _next_runs(preview_runs(_schedule_form(body), job.id, job.schedule))


@operation(
    "POST",
    "/jobs/<int:job_id>/schedule/pause",
    tag=TAG,
    answers={200: ScheduleOut},
    body=PauseIn,
    errors=(400, 403, 404, 409, 415),
    found=schedulable_job_or_404,
)
def pause_schedule(job_id: int, body: PauseIn):
    """Pause the schedule, saying why (and maybe the day it resumes by itself): its planned run
    is withdrawn and nothing runs by itself until it is resumed."""
    job = schedulable_job_or_404(job_id)
    if job.schedule is None:
        raise fail(409, "this job has no schedule to pause")
    form = PauseForm(formdata=form_data(body.model_dump()), meta={"csrf": False})
    validated(form, "pause")
    pause_job_schedule(job, form.reason.data.strip(), form.resume_on.data, note=NOTE)
    return schedule_out(job)


@operation(
    "POST", "/jobs/<int:job_id>/schedule/resume", tag=TAG, answers={200: ScheduleOut}, errors=(403, 404, 409)
)
def resume_schedule(job_id: int):
    """Resume a paused schedule: its next run is planned again."""
    job = schedulable_job_or_404(job_id)
    if job.schedule is None or not job.schedule.paused:
        raise fail(409, "this schedule is not paused")
    resume_job_schedule(job, note=NOTE)
    return schedule_out(job)


class BlackoutList(BaseModel):
    """A job's blackout dates, by start date."""

    blackouts: list[BlackoutOut]


@operation("GET", "/jobs/<int:job_id>/blackouts", tag=TAG, answers={200: BlackoutList}, errors=(404,))
def schedule_blackouts(job_id: int):
    """The job's blackout dates, by start date (account-wide ones are an admin's, on the Settings page)."""
    job = schedulable_job_or_404(job_id)
    return BlackoutList(blackouts=[_blackout_out(found) for found in blackouts_of(job)])


@operation(
    "POST",
    "/jobs/<int:job_id>/blackouts",
    tag=TAG,
    answers={201: BlackoutOut},
    body=BlackoutIn,
    errors=(400, 403, 404, 415),
    found=schedulable_job_or_404,
)
def add_blackout(job_id: int, body: BlackoutIn):
    """Add blackout dates: the schedule's runs on those days (in the account's time zone) are
    skipped. The same days and reason sent again answer the blackout saved before (no twin)."""
    job = schedulable_job_or_404(job_id)
    form = BlackoutForm(formdata=form_data(body.model_dump()), meta={"csrf": False})
    validated(form, "blackout")
    return _blackout_out(add_blackout_dates(job, form, note=NOTE)[0]), 201


@operation(
    "DELETE",
    "/jobs/<int:job_id>/blackouts/<int:blackout_id>",
    tag=TAG,
    answers={200: Deleted},
    errors=(403, 404),
)
def delete_blackout(job_id: int, blackout_id: int):
    """Remove blackout dates of the job's schedule."""
    job = schedulable_job_or_404(job_id)
    found = db.session.get(Blackout, blackout_id)
    if found is None or found.job_id != job.id:
        raise fail(404, "this job has no such blackout dates")
    remove_blackout_dates(job, found, note=NOTE)
    return Deleted(deleted=blackout_id)
