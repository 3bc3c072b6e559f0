"""A job's schedule apart from the request: check a schedule form, preview its next runs, save
it (re-planning the next occurrence), pause and resume it, and its blackout dates. The schedule
page (schedule_routes.py) and the API (webapp/api/v1/schedules.py) both call these."""

from __future__ import annotations

from datetime import date, time

from flask import current_app
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp import audit
from webapp.engine import planner
from webapp.engine import runs as engine
from webapp.engine.durations import typical_run_seconds
from webapp.engine.planner import blackout_for, plan, unplan
from webapp.extensions import db
from webapp.jobs.schedule_forms import (
    NEEDED_WORDS,
    BlackoutForm,
    ScheduleForm,
    blackout_text,
    clock_text,
    counted,
    describe_schedule,
    local_now,
    once_before_start_message,
    once_past_message,
    past_slot_message,
    wall_text,
    zone_words,
)
from webapp.jobtypes import job_type_for
from webapp.models.base import utcnow
from webapp.models.schedules import Blackout, JobSchedule
from webapp.rules.clock import format_day, format_duration
from webapp.rules.recurrence import (
    SLOT_MINUTES,
    Schedule,
    ScheduleError,
    ScheduleKind,
    moved_by_dst,
    next_runs,
    pick_slot_minute,
    slot_in_past,
)

PREVIEW_COUNT = 10


def account_zone() -> str:
    """The account time zone schedules are set in."""
    return current_app.config["TIMEZONE"]


def _kind(job) -> str:
    """What the audit log calls the job a schedule belongs to."""
    return "group" if job_type_for(job.job_type).drives_chain else "job"


def _pure(form: ScheduleForm, minute: int | None) -> Schedule:
    """The schedule the form describes (raises ScheduleError when it makes no sense)."""
    kind = ScheduleKind(form.kind.data)
    return Schedule(
        kind=kind,
        tz=account_zone(),
        start_date=form.start_date.data,
        time=form.time.data.replace(second=0, microsecond=0) if form.time.data else None,
        times_per_day=form.times_per_day.data,
        weekdays=frozenset(form.weekdays.data or ()),
        day_of_month=form.day_of_month.data,
        week_of_month=form.week_of_month.data,
        weekday=form.weekday.data,
        hour=form.hour.data,
        slot=form.slot.data,
        minute=minute,
        once_at=form.once_at.data,
    )


def slot_minute(form: ScheduleForm, existing: JobSchedule | None) -> int | None:
    """Keep the random minute already chosen for the same hour and slot; else pick one."""
    if form.kind.data != ScheduleKind.HOURLY_SLOT:
        return None
    if (
        existing
        and existing.kind == ScheduleKind.HOURLY_SLOT
        and existing.hour == form.hour.data
        and existing.slot == form.slot.data
        and existing.minute is not None
    ):
        return existing.minute
    return pick_slot_minute(form.slot.data)


def past_slot(form: ScheduleForm, existing: JobSchedule | None) -> str | None:
    """Why the chosen slot cannot start today (it has begun), with the next free slot; None if it
    can, or when it is the saved schedule's own slot and start date (other settings being edited)."""
    if form.kind.data != ScheduleKind.HOURLY_SLOT or form.start_date.data is None:
        return None
    if form.hour.data not in range(24) or form.slot.data not in range(60 // SLOT_MINUTES):
        return None  # the field itself says what is wrong
    chosen = (form.start_date.data, form.hour.data, form.slot.data)
    if existing and existing.kind == ScheduleKind.HOURLY_SLOT:
        if chosen == (existing.start_date, existing.hour, existing.slot):
            return None
    now_local = local_now()
    if form.start_date.data <= now_local.date() and slot_in_past(form.hour.data, form.slot.data, now_local):
        return past_slot_message(form.hour.data, form.slot.data, now_local, account_zone())
    return None


def saved_slot_time(form: ScheduleForm, existing: JobSchedule | None) -> str | None:
    """'9:07 AM EST', the saved slot's minute, while the form shows that same hour and slot."""
    if (minute := _preview_minute(form, existing)) is None:
        return None
    return wall_text(local_now().date(), time(form.hour.data, minute), account_zone())


def _preview_minute(form: ScheduleForm, existing: JobSchedule | None) -> int | None:
    """The saved minute of an hourly slot while the form shows that same hour and slot (None when
    the minute is still to be picked)."""
    if (
        existing
        and existing.kind == ScheduleKind.HOURLY_SLOT
        and (existing.hour, existing.slot) == (form.hour.data, form.slot.data)
    ):
        return existing.minute
    return None


def preview_runs(form: ScheduleForm, job_id: int, existing: JobSchedule | None) -> dict:
    """The next runs (local times, DST-moved ones marked), or why there are none, plus a
    warning when runs come faster than the job usually takes."""
    if form.start_date.data is None:
        return {"problem": "Choose a start date."}
    if form.kind.data in {k.value for k in ScheduleKind} and (missing := form.missing()):
        # Not an error: nothing has been typed yet (the fields just appeared).
        needed = " and ".join(NEEDED_WORDS[name] for name in missing)
        return {"hint": f"The next runs show here once you choose {needed}."}
    if problem := past_slot(form, existing):
        return {"problem": problem}
    if form.once_in_past():
        return {"problem": once_past_message(account_zone())}
    if form.once_before_start():
        return {"problem": once_before_start_message(form.start_date.data)}
    try:
        saved_minute = _preview_minute(form, existing)
        schedule = _pure(form, (form.slot.data or 0) * SLOT_MINUTES if saved_minute is None else saved_minute)
        upcoming = next_runs(schedule, utcnow(), PREVIEW_COUNT)
    except (ScheduleError, ValueError, ArithmeticError) as exc:  # e.g. a date near year 9999
        return {"problem": str(exc)}
    runs = [
        {"at": at, "moved": moved_by_dst(schedule, at), "blackout": blackout_for(job_id, at)}
        for at in upcoming
    ]
    warning = None
    typical = typical_run_seconds(job_id)
    gaps = [(b - a).total_seconds() for a, b in zip(upcoming, upcoming[1:], strict=False)]
    if typical and gaps and min(gaps) < typical:
        warning = (
            f"Runs are planned {counted(int(min(gaps) // 60), 'minute')} apart, but this job "
            f"usually takes {format_duration(typical)}: runs would be skipped or queued."
        )
    notes = []
    if existing is not None and existing.paused:
        notes.append("The schedule is paused: none of these runs happens until it is resumed.")
    if schedule.kind is ScheduleKind.HOURLY_SLOT and saved_minute is None:
        notes.append(
            "Shown at the slot's first minute: the minute it really runs at is picked when you save."
        )
    return {"runs": runs, "warning": warning, "note": " ".join(notes) or None}


def savable(form: ScheduleForm, existing: JobSchedule | None, minute: int | None) -> bool:
    """Whether a validated form holds a schedule that can be saved; if not, a field's errors say
    why (a slot that has begun today, or values that make no schedule)."""
    if begun := past_slot(form, existing):
        form.hour.errors = [begun]
        return False
    try:
        _pure(form, minute)
    except ScheduleError as exc:
        form.kind.errors = [str(exc)]
        return False
    return True


def set_schedule(
    job, existing: JobSchedule | None, form: ScheduleForm, minute: int | None, note: str = ""
) -> str:
    """Save a savable form as the job's schedule (audited, `note` added to the entry) and plan
    its next run; switching on a times-per-day schedule starts a run now. Says what happened."""
    was_on = bool(existing and existing.enabled)
    target = existing or JobSchedule(job_id=job.id)
    form.populate_obj(target)
    target.weekdays = list(form.weekdays.data or []) or None
    target.minute = minute
    target.time = form.time.data.replace(second=0, microsecond=0) if form.time.data else None
    target.once_at = form.once_at.data  # wall-clock time in the account time zone
    target.next_run_at = None
    target.problem = target.problem_at = None  # planned afresh below
    try:
        db.session.add(target)
        audit.record(
            "schedule.set",
            job,
            kind=_kind(job),
            commit=False,
            detail=f"{describe_schedule(target)} ({'on' if target.enabled else 'off'}){note}",
        )
        db.session.commit()
    except IntegrityError:  # another request saved the job's first schedule meanwhile
        db.session.rollback()
        if existing is not None:
            raise
        saved = db.session.execute(select(JobSchedule).where(JobSchedule.job_id == job.id)).scalar_one()
        return set_schedule(job, saved, form, minute, note)
    unplan(job)
    plan(target)
    message = "Schedule saved."
    if target.enabled and not was_on and target.kind == ScheduleKind.TIMES_PER_DAY:
        run = engine.start_run(job, current_user, trigger="schedule")
        audit.record("run.started", run, detail=f"Run #{run.number}, as the schedule was switched on{note}")
        message += f" Run #{run.number} started now, as the schedule was switched on."
    elif not target.enabled:
        message += " It is off: nothing runs by itself."
    if target.kind == ScheduleKind.HOURLY_SLOT:
        at = clock_text(target.hour or 0, minute or 0)
        message += (
            f" It runs daily at {at}, {zone_words(account_zone())}: the minute :{minute:02d} was "
            "picked at random in its slot."
        )
    return message


def pause_job_schedule(job, reason: str, resume_on: date | None, note: str = "") -> None:
    """Pause the job's schedule (its planned run withdrawn), maybe until `resume_on`; audited."""
    planner.pause_schedule(job.schedule, current_user.id, reason, resume_on)
    until = f"; resumes on {format_day(resume_on)}" if resume_on else ""
    audit.record("schedule.paused", job, kind=_kind(job), detail=f"Reason: {reason}{until}{note}")


def resume_job_schedule(job, note: str = "") -> None:
    """End the pause of the job's schedule and plan its next run again; audited."""
    planner.resume_schedule(job.schedule)
    audit.record("schedule.resumed", job, kind=_kind(job), detail=note.strip())


def same_blackout(job_id: int | None, form: BlackoutForm) -> Blackout | None:
    """The blackout dates of the job (None: account-wide) already saved with the form's days and
    reason: the form sent again (a Resend, a retried request) answers them, not a twin."""
    return db.session.execute(
        select(Blackout)
        .where(
            Blackout.job_id.is_(None) if job_id is None else Blackout.job_id == job_id,
            Blackout.start_date == form.start_date.data,
            Blackout.end_date == form.end_date.data,
            Blackout.reason == form.reason.data.strip(),
        )
        .limit(1)
    ).scalar()


def add_blackout_dates(job, form: BlackoutForm, note: str = "") -> tuple[Blackout, bool]:
    """Blackout dates from a validated form, added to the job's schedule, and True; the same
    ones saved before, as they are, and False. Audited when added."""
    if (saved := same_blackout(job.id, form)) is not None:
        return saved, False
    blackout = Blackout(
        job_id=job.id,
        start_date=form.start_date.data,
        end_date=form.end_date.data,
        reason=form.reason.data.strip(),
    )
    db.session.add(blackout)
    audit.record("blackout.added", job, kind=_kind(job), commit=False, detail=blackout_text(blackout) + note)
    db.session.commit()
    return blackout, True


def remove_blackout_dates(job, blackout: Blackout, note: str = "") -> None:
    """Remove blackout dates of the job's schedule; audited."""
    db.session.delete(blackout)
    audit.record(
        "blackout.removed", job, kind=_kind(job), commit=False, detail=blackout_text(blackout) + note
    )
    db.session.commit()


def blackouts_of(job) -> list[Blackout]:
    """The job's own blackout dates, by start date."""
    query = select(Blackout).where(Blackout.job_id == job.id).order_by(Blackout.start_date)
    return list(db.session.execute(query).scalars())
