"""What follows saving a new job on its form page, for every job type's form: its Save and run
button starts a run at once; Save shows the job."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_login import current_user

from webapp import audit
from webapp.engine import runs as engine
from webapp.models.jobs import Job


def after_saving(job: Job):
    """After saving a job: run it now if asked, else show it."""
    if request.form.get("action") == "save_run":
        run = engine.start_run(job, current_user)
        audit.record("run.started", run, detail=f"Run #{run.number}, on saving the job")
        flash(f"“{job.name}” was saved and run #{run.number} started.", "success")
        return redirect(url_for("runs.detail", run_id=run.id))
    flash(f"“{job.name}” was saved.", "success")
    return redirect(url_for("jobs.detail", job_id=job.id))
