"""A job's schedule page: the form (kind fields swapped in with HTMX), the live preview of the
next runs, saving it, pausing and resuming it, and its blackout dates. What the page does apart
from the request is in scheduling.py, which the API calls too."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from webapp.engine import planner
from webapp.extensions import db
from webapp.formutil import form_problems
from webapp.jobs.forms import ConfirmForm
from webapp.jobs.routes import bp
from webapp.jobs.schedule_forms import (
    KIND_LABELS,
    USES_TIME,
    BlackoutForm,
    PauseForm,
    ScheduleForm,
    local_now,
    next_free_slot,
)
from webapp.jobs.scheduling import (
    account_zone,
    add_blackout_dates,
    blackouts_of,
    past_slot,
    pause_job_schedule,
    preview_runs,
    remove_blackout_dates,
    resume_job_schedule,
    savable,
    saved_slot_time,
    set_schedule,
    slot_minute,
)
from webapp.jobtypes import job_type_for
from webapp.models.base import utcnow
from webapp.models.schedules import Blackout, JobSchedule
from webapp.permissions import schedulable_job_or_404
from webapp.rules.clock import to_local
from webapp.rules.recurrence import SLOT_MINUTES


def _form_for(job_schedule: JobSchedule | None, formdata=None) -> ScheduleForm:
    form = ScheduleForm(
        formdata=formdata, obj=job_schedule, meta={"csrf": False} if formdata is request.args else {}
    )
    if formdata is None:
        if job_schedule is None:
            form.start_date.data = to_local(utcnow(), account_zone()).date()
    if request.method == "GET" and "hour" not in (formdata or {}):
        _fresh_slot(form, job_schedule)
    return form


def _fresh_slot(form: ScheduleForm, job_schedule: JobSchedule | None) -> None:
    """Slot fields that have just appeared: the default slot, or the next free one when it has
    begun today (so nothing is refused before anything was chosen)."""
    if form.hour.data is None or form.slot.data is None:
        form.hour.data, form.slot.data = form.hour.default, form.slot.default
    if past_slot(form, job_schedule):
        free = next_free_slot(local_now())
        form.hour.data, form.slot.data = free.hour, free.minute // SLOT_MINUTES
        if free.date() > form.start_date.data:
            form.start_date.data, form.start_date.raw_data = free.date(), None  # shown from data


@bp.route("/<int:job_id>/schedule", methods=["GET", "POST"])
@login_required
def schedule(job_id: int):
    """Edit the job's schedule; saving re-plans its next run."""
    job = schedulable_job_or_404(job_id)
    existing = job.schedule
    form = _form_for(existing, request.form if request.method == "POST" else None)
    if form.validate_on_submit():
        minute = slot_minute(form, existing)
        if savable(form, existing, minute):
            message = set_schedule(job, existing, form, minute)
            flash(message, "success")
            return redirect(job_type_for(job.job_type).schedule_done_url(job.id))
    blackouts = blackouts_of(job)
    return render_template(
        "jobs/schedule.html",
        job=job,
        form=form,
        labels=KIND_LABELS,
        uses_time=USES_TIME,
        saved_slot_time=saved_slot_time(form, existing),
        blackouts=blackouts,
        blackout_form=BlackoutForm(),
        confirm=ConfirmForm(),
        schedule_problem=planner.problem_of(existing),
        **preview_runs(form, job.id, existing),
    )


@bp.route("/<int:job_id>/schedule/fields")
@login_required
def schedule_fields(job_id: int):
    """The fields of the chosen kind and the preview (HTMX, when the kind changes)."""
    job = schedulable_job_or_404(job_id)
    form = _form_for(job.schedule, request.args)
    return render_template(
        "jobs/partials/_schedule_fields.html",
        job=job,
        form=form,
        uses_time=USES_TIME,
        saved_slot_time=saved_slot_time(form, job.schedule),
        **preview_runs(form, job.id, job.schedule),
    )


@bp.route("/<int:job_id>/schedule/preview")
@login_required
def schedule_preview(job_id: int):
    """The next runs for the form as it is now (HTMX, as the form changes)."""
    job = schedulable_job_or_404(job_id)
    form = _form_for(job.schedule, request.args)
    return render_template("jobs/partials/_schedule_preview.html", **preview_runs(form, job.id, job.schedule))


@bp.route("/<int:job_id>/schedule/pause", methods=["POST"])
@login_required
def pause_schedule(job_id: int):
    """Pause the job's schedule with a reason (and maybe a date it resumes by itself)."""
    job = schedulable_job_or_404(job_id)
    form = PauseForm()
    if job.schedule is None:
        flash("This job has no schedule to pause.", "warning")
    elif form.validate_on_submit():
        pause_job_schedule(job, form.reason.data.strip(), form.resume_on.data)
        flash("Schedule paused: nothing runs by itself until it is resumed.", "success")
    else:
        flash(" ".join(form.resume_on.errors) or "Give a reason to pause the schedule.", "error")
    return redirect(url_for("jobs.detail", job_id=job.id))


@bp.route("/<int:job_id>/schedule/resume", methods=["POST"])
@login_required
def resume_schedule(job_id: int):
    """Resume a paused schedule."""
    job = schedulable_job_or_404(job_id)
    if job.schedule is not None and job.schedule.paused and ConfirmForm().validate_on_submit():
        resume_job_schedule(job)
        flash("Schedule resumed.", "success")
    return redirect(url_for("jobs.detail", job_id=job.id))


@bp.route("/<int:job_id>/blackouts", methods=["POST"])
@login_required
def add_blackout(job_id: int):
    """Add blackout dates to this job's schedule."""
    job = schedulable_job_or_404(job_id)
    form = BlackoutForm()
    if form.validate_on_submit():
        if add_blackout_dates(job, form)[1]:
            flash("Blackout dates added.", "success")
        else:
            flash("These blackout dates are saved already.", "info")
    else:
        flash(form_problems(form) or "Check the dates.", "error")
    return redirect(url_for("jobs.schedule", job_id=job.id))


@bp.route("/<int:job_id>/blackouts/<int:blackout_id>/delete", methods=["POST"])
@login_required
def delete_blackout(job_id: int, blackout_id: int):
    """Remove blackout dates from this job's schedule."""
    job = schedulable_job_or_404(job_id)
    blackout = db.session.get(Blackout, blackout_id)
    if blackout is None or blackout.job_id != job.id or not ConfirmForm().validate_on_submit():
        abort(404)
    remove_blackout_dates(job, blackout)
    flash("Blackout dates removed.", "success")
    return redirect(url_for("jobs.schedule", job_id=job.id))
