"""Rollback Transaction Data Import: the preview and confirmation that undo one import.

Who may roll an import back: whoever may see its run (its owner, a super admin); anyone else
gets a 404, as for the run itself."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select

from webapp import audit
from webapp.extensions import db
from webapp.jobtypes import job_type_for
from webapp.jobtypes.transaction_import import SUPPORTER_FIELDS
from webapp.jobtypes.transaction_rollback import TransactionRollback
from webapp.models.people import Supporter
from webapp.money.rollback import ENDED_UNDONE, preview, refusal, rollback_of
from webapp.permissions import job_or_404, run_or_404
from webapp.rollbacks.requests import first_run, start_rollback

bp = Blueprint("rollbacks", __name__, url_prefix="/rollbacks")


class ConfirmForm(FlaskForm):
    """The confirmation: one button (CSRF protected)."""


@bp.route("/imports/<int:run_id>")
@login_required
def preview_page(run_id: int):
    """What rolling back the import would change, and its confirmation (or why it may not)."""
    return _page(run_id, ConfirmForm(formdata=None))


def _page(run_id: int, form: ConfirmForm, status: int = 200):
    import_run = run_or_404(run_id)
    refused = refusal(import_run)
    found = preview(import_run) if refused is None else None
    shown = {tx.supporter_id for tx in found.sample_transactions} if found else set()
    emails_of = select(Supporter.id, Supporter.email).where(Supporter.id.in_(shown))
    emails = {supporter_id: email for supporter_id, email in db.session.execute(emails_of)}
    return render_template(
        "rollbacks/preview.html",
        import_run=import_run,
        refused=refused,
        preview=found,
        emails=emails,
        field_labels=SUPPORTER_FIELDS,
        holder=rollback_of(import_run.id),
        form=form,
    ), status


@bp.route("/imports/<int:run_id>", methods=["POST"])
@login_required
def confirm(run_id: int):
    """Start the rollback (once, however often the button is sent)."""
    import_run = run_or_404(run_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    refused = refusal(import_run)
    if refused is not None:
        holder = rollback_of(import_run.id)
        if holder is not None and holder.state not in ENDED_UNDONE:  # (a second click lands here)
            flash(f"Not started again: {refused.reason}", "info")
            return redirect(url_for("runs.detail", run_id=holder.id))
        return _page(run_id, form, 409)
    run = start_rollback(import_run, current_user)
    if run is None:
        holder = rollback_of(import_run.id)
        flash("This import is being rolled back already: one rollback runs.", "info")
        target = holder.id if holder is not None else import_run.id
        return redirect(url_for("runs.detail", run_id=target))
    audit.record("rollback.started", run, detail=f"“{import_run.job_name}” {import_run.label}")
    flash(f"Rolling back “{import_run.job_name}” {import_run.label}: the rollback started.", "success")
    return redirect(url_for("runs.detail", run_id=run.id))


@bp.route("/<int:job_id>")
@login_required
def job(job_id: int):
    """A rollback job's page is its run's (a job of another type: its own page)."""
    found = job_or_404(job_id)
    if found.job_type != TransactionRollback.key:
        return redirect(job_type_for(found.job_type).page_url(found.id))
    run = first_run(found)
    return redirect(url_for("runs.detail", run_id=run.id) if run else url_for("monitor.index"))
