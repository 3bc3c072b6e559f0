"""Email Bounces: the form that creates and edits a bounce export job (its runs, schedule and
results are every job's: the Jobs page, the schedule pages, the monitor)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template
from flask_login import current_user, login_required

from webapp.bounces.forms import BounceExportForm
from webapp.extensions import db
from webapp.jobs.saving import save_form
from webapp.jobtypes import job_type_for
from webapp.jobtypes.email_bounces import EmailBounces, send_label, visible_sends
from webapp.models.base import utcnow
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.models.users import User
from webapp.permissions import can_see, job_or_404
from webapp.rules.clock import to_local

bp = Blueprint("bounces", __name__, url_prefix="/bounce-exports")

SENDS_LISTED = 300  # the newest sends offered; a saved job's older send is added to them


def _chosen_send(form: BounceExportForm, owner: User) -> Run | None:
    """The send a submitted form names, if its owner (and the acting user) may see it; 404 for
    any other id, the same answer for another user's send and for none."""
    run_id = form.send_id() if form.is_submitted() and form.source.data == "send" else None
    if run_id is None:
        return None
    run = db.session.execute(visible_sends(owner).where(Run.id == run_id)).scalar()
    if run is None or not can_see(current_user, run):
        abort(404)
    return run


def _offer_sends(form: BounceExportForm, owner: User, keep: int | None = None) -> None:
    """Fill the send select with the newest sends `owner` may see (and `keep`, already chosen)."""
    newest = visible_sends(owner).order_by(Run.id.desc()).limit(SENDS_LISTED)
    sends = list(db.session.execute(newest).scalars())
    if keep and all(run.id != keep for run in sends):
        kept = db.session.execute(visible_sends(owner).where(Run.id == keep)).scalar()
        sends += [kept] if kept is not None else []
    tz_name = current_app.config["TIMEZONE"]
    form.send.choices = [("", "Choose a send…")] + [
        (str(run.id), f"{send_label(run)}, {to_local(run.started_at or run.created_at, tz_name):%b %d, %Y}")
        for run in sends
    ]


def _render(form: BounceExportForm, job: Job | None, status: int = 200):
    tz_name = current_app.config["TIMEZONE"]
    zone = f"{tz_name} ({to_local(utcnow(), tz_name):%Z})"
    return render_template("bounces/form.html", form=form, job=job, zone=zone), status


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    """Create an Email Bounces job: a campaign send or a date range."""
    form = BounceExportForm()
    _offer_sends(form, current_user, form.send_id())
    _chosen_send(form, current_user)
    if form.validate_on_submit():
        return save_form(form, EmailBounces, None, "")
    return _render(form, None, 400 if form.is_submitted() else 200)


@bp.route("/<int:job_id>/edit", methods=["GET", "POST"])
@login_required
def edit(job_id: int):
    """Change an Email Bounces job's name, send or date range (a job of another type: its page)."""
    job = job_or_404(job_id)
    if job.job_type != EmailBounces.key or not job.active:
        return redirect(job_type_for(job.job_type).page_url(job.id))
    form = BounceExportForm()
    if not form.is_submitted():
        form.name.data = job.name
        form.fill_from(job.params)
    _offer_sends(form, job.owner, form.send_id())
    _chosen_send(form, job.owner)
    if form.validate_on_submit():
        return save_form(form, EmailBounces, job, "Bounces chosen again")
    return _render(form, job, 400 if form.is_submitted() else 200)
