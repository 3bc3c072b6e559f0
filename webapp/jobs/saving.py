"""Saving a job type's form, and what follows saving a new job, for every job type's form: its
Save and run button starts a run at once; Save shows the job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from webapp import audit
from webapp.engine import runs as engine
from webapp.extensions import db
from webapp.jobtypes.base import JobType
from webapp.models.base import utcnow
from webapp.models.jobs import Job
from webapp.models.runs import Run

RESENT_WITHIN = timedelta(seconds=10)  # a form sent again this soon is a resend, not a new wish


def _saved(job: Job):
    """The job's page, saying it was saved."""
    flash(f"“{job.name}” was saved.", "success")
    return redirect(url_for("jobs.detail", job_id=job.id))


def after_saving(job: Job):
    """After saving a job: run it now if asked, else show it."""
    if request.form.get("action") == "save_run":
        run = engine.start_run(job, current_user)
        audit.record("run.started", run, detail=f"Run #{run.number}, on saving the job")
        flash(f"“{job.name}” was saved and run #{run.number} started.", "success")
        return redirect(url_for("runs.detail", run_id=run.id))
    return _saved(job)


def just_saved(new: Job) -> Job | None:
    """The job its owner saved moments ago (RESENT_WITHIN) with the same type, name and
    settings as `new` (not yet added), if any: a form sent again answers it, not a twin."""
    since = utcnow() - RESENT_WITHIN
    recent = db.session.execute(
        select(Job).where(
            Job.owner_id == new.owner_id,
            Job.job_type == new.job_type,
            Job.name == new.name,
            Job.active.is_(True),
            Job.created_at >= since,
        )
    ).scalars()
    return next((job for job in recent if job.params == new.params), None)


def resent(job: Job):
    """Where a new job's form sent again goes: the run its first sending started (Save and
    run), else the job."""
    latest = select(Run).where(Run.job_id == job.id).order_by(Run.id.desc()).limit(1)
    if request.form.get("action") == "save_run" and (run := db.session.execute(latest).scalar()):
        flash(f"“{job.name}” was saved and run #{run.number} started.", "success")
        return redirect(url_for("runs.detail", run_id=run.id))
    return _saved(job)


def save_form(form: Any, job_type: type[JobType], job: Job | None, edited: str):
    """Save a job type's form (its `name` and `params()`): a new job, then after_saving; or the
    job being edited (`edited`: what the audit entry says changed), then its page."""
    name = form.name.data.strip()
    if job is None:
        job = Job(owner_id=current_user.id, job_type=job_type.key, name=name, params=form.params())
        if (twin := just_saved(job)) is not None:  # the form sent again: what the first made
            return resent(twin)
        db.session.add(job)
        db.session.commit()
        audit.record("job.created", job, detail=job_type.label)
        return after_saving(job)
    job.name, job.params = name, form.params()
    audit.record("job.edited", job, commit=False, detail=edited)
    db.session.commit()
    return _saved(job)
