"""Netdonor Transaction Report: the form that creates and edits a report job (its runs,
schedule and results are every job's: the Jobs page, the schedule pages, the monitor)."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template
from flask_login import login_required

from webapp.jobs.saving import save_form
from webapp.jobtypes import job_type_for
from webapp.jobtypes.transaction_report import TransactionReport
from webapp.models.base import utcnow
from webapp.models.jobs import Job
from webapp.permissions import job_or_404
from webapp.reports.forms import ReportForm
from webapp.rules.clock import to_local

bp = Blueprint("reports", __name__, url_prefix="/reports")


def _render(form: ReportForm, job: Job | None, status: int = 200):
    tz_name = current_app.config["TIMEZONE"]
    zone = f"{tz_name} ({to_local(utcnow(), tz_name):%Z})"
    return render_template("reports/form.html", form=form, job=job, zone=zone), status


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    """Create a transaction report job: its date range and filters."""
    form = ReportForm()
    if form.validate_on_submit():
        return save_form(form, TransactionReport, None, "")
    return _render(form, None, 400 if form.is_submitted() else 200)


@bp.route("/<int:job_id>/edit", methods=["GET", "POST"])
@login_required
def edit(job_id: int):
    """Change a report's name, range or filters (a job of another type: its page)."""
    job = job_or_404(job_id)
    if job.job_type != TransactionReport.key or not job.active:
        return redirect(job_type_for(job.job_type).page_url(job.id))
    form = ReportForm()
    if not form.is_submitted():
        form.name.data = job.name
        form.fill_from(job.params)
    if form.validate_on_submit():
        return save_form(form, TransactionReport, job, "Report range or filters changed")
    return _render(form, job, 400 if form.is_submitted() else 200)
