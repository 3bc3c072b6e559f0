"""Jobs: the list, creating imports (upload → map) and exports, a job's page, Run now."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import RequestEntityTooLarge

from webapp import audit, once
from webapp.charts import job_runs_chart
from webapp.csvfiles import DELIMITER_NAMES
from webapp.engine import queueing
from webapp.engine import runs as engine
from webapp.extensions import db
from webapp.jobs import uploads
from webapp.jobs.deletion import delete_job, refusal
from webapp.jobs.forms import ConfirmForm, NotificationsForm, mapping_form
from webapp.jobs.saving import after_saving, resent, save_form
from webapp.jobs.schedule_forms import PauseForm, schedule_summary
from webapp.jobs.uploads import forget_upload, job_made_from, load_upload, upload_step
from webapp.jobtypes import REGISTRY, get_job_type, job_type_for, types_where
from webapp.jobtypes.user_data_export import ExportForm, UserDataExport
from webapp.jobtypes.user_data_import import ImportUploadForm, UserDataImport, guess_field, mapping_problems
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.paging import NumberedPage, offset
from webapp.permissions import job_or_404
from webapp.request_args import page_arg
from webapp.web import queue_place

bp = Blueprint("jobs", __name__, url_prefix="/jobs")


@bp.route("/")
@login_required
def index():
    """The user's jobs (every user's for a super admin), by name, a page at a time."""
    query = select(Job).where(Job.active.is_(True), Job.job_type.in_(types_where("listed_as_job")))
    if not current_user.is_super_admin:
        query = query.where(Job.owner_id == current_user.id)
    total = db.session.execute(query.with_only_columns(func.count())).scalar_one()
    number, per_page = page_arg(), current_app.config["PAGE_SIZE"]
    jobs = (
        db.session.execute(
            query.options(selectinload(Job.owner))
            .order_by(Job.name, Job.id)
            .offset(offset(number, per_page))
            .limit(per_page)
        )
        .scalars()
        .all()
    )
    page = NumberedPage(list(jobs), number, per_page, total)
    return render_template("jobs/index.html", jobs=jobs, page=page, form=ConfirmForm(), launch_url=launch_url)


@bp.route("/new")
@login_required
def new():
    """Choose the kind of job to create."""
    return render_template("jobs/new.html")


@bp.route("/new/import", methods=["GET", "POST"])
@login_required
def new_import():
    """Import step 1: upload the CSV (checked end to end before anything is kept)."""
    return upload_step(ImportUploadForm(), "jobs/import_upload.html", "jobs.map_import")


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(_exc):
    """An upload over the limit: the form again with a clear message; nothing was kept."""
    return uploads.upload_too_large(ImportUploadForm(formdata=None), "jobs/import_upload.html")


@bp.route("/new/import/<token>", methods=["GET", "POST"])
@login_required
def map_import(token: str):
    """Import step 2: map columns to supporter fields with a preview, then save (and run)."""
    upload = load_upload(token, current_user.id)
    if upload is None:
        if (saved := job_made_from(token, current_user.id)) is not None:  # sent again, or Back
            return resent(saved)
        abort(404)
    guesses = [guess_field(column) for column in upload.header]
    form = mapping_form(upload.header, guesses, formdata=request.form if request.method == "POST" else None)
    if request.method == "GET":
        form.name.data = upload.name
    problems: list[str] = []
    if form.validate_on_submit():
        mapping = [form[f"col_{i}"].data for i in range(len(upload.header))]
        problems = mapping_problems(mapping)
        if not problems:
            job = Job(
                owner_id=current_user.id,
                job_type=UserDataImport.key,
                name=form.name.data.strip(),
                params={**upload.params(mapping), "readd_deleted": form.readd_deleted.data},
            )
            db.session.add(job)
            db.session.commit()
            audit.record("job.created", job, detail="User Data Import")
            forget_upload(upload)
            return after_saving(job)
    unknown = [c for c, g in zip(upload.header, guesses, strict=False) if not g]
    return render_template(
        "jobs/import_map.html",
        form=form,
        upload=upload,
        problems=problems,
        unknown=unknown,
        delimiter_name=DELIMITER_NAMES[upload.delimiter],
    )


@bp.route("/new/export", methods=["GET", "POST"])
@login_required
def new_export():
    """Create a User Data Export: fields and a filter."""
    form = ExportForm()
    if form.validate_on_submit():
        return save_form(form, UserDataExport, None, "")
    return render_template("jobs/export_form.html", form=form)


@bp.route("/<int:job_id>")
@login_required
def detail(job_id: int):
    """A job: its parameters and its recent runs (a group has its own page)."""
    job = job_or_404(job_id)
    job_type = job_type_for(job.job_type)
    if job_type.page_endpoint != "jobs.detail":  # a group has its own page
        return redirect(job_type.page_url(job.id))
    return _detail_page(job, NotificationsForm(obj=job))


def _detail_page(job: Job, notifications: NotificationsForm, status: int = 200):
    """The job page, with the notifications form as given (fresh, or with its errors)."""
    runs = (
        db.session.execute(select(Run).where(Run.job_id == job.id).order_by(Run.id.desc()).limit(25))
        .scalars()
        .all()
    )
    job_type = REGISTRY.get(job.job_type)
    return render_template(
        "jobs/detail.html",
        job=job,
        runs=runs,
        runs_chart=job_runs_chart(job),
        form=ConfirmForm(),
        job_type=job_type,
        launch_url=launch_url,
        described=job_type.describe(job.params) if job_type else [],
        schedule_text=schedule_summary(job.schedule),
        notifications=notifications,
        pause_form=PauseForm(),
    ), status


@bp.route("/<int:job_id>/notifications", methods=["POST"])
@login_required
def notifications(job_id: int):
    """Save who is emailed about the job's runs."""
    job = job_or_404(job_id)
    form = NotificationsForm()
    if form.validate_on_submit():
        form.save_to(job)
        audit.record(
            "job.edited",
            job,
            commit=False,
            detail=f"Notifications: {job.notify_on}, to {job.notify_emails or 'nobody'}",
        )
        db.session.commit()
        flash("Notification settings saved.", "success")
        return redirect(url_for("jobs.detail", job_id=job.id))
    return _detail_page(job, form, 400)


@bp.route("/<int:job_id>/run", methods=["POST"])
@login_required
def run_now(job_id: int):
    """Start a run of the job now (it waits if another run of it is busy)."""
    job = job_or_404(job_id)
    if not job.active or not ConfirmForm().validate_on_submit():
        abort(400)
    if not get_job_type(job.job_type).runs_on_request:
        flash(
            "A campaign is sent by its Launch, which shows the audience size first and "
            "honours its launch time.",
            "info",
        )
        return redirect(launch_url(job))
    said = "That Run now was sent twice: it started one run."
    if (again := once.sent_again(said, url_for("jobs.detail", job_id=job.id))) is not None:
        return again
    run = engine.start_run(job, current_user)
    once.remember(url_for("runs.detail", run_id=run.id))
    audit.record("run.started", run, detail=f"Run #{run.number}, Run now")
    if not queueing.queue_reachable(max_age=0):
        flash(
            f"Run #{run.number} is saved and waits: the job queue is unreachable right now. "
            "It starts by itself when the queue is back.",
            "warning",
        )
    elif run.state.value == "queued" and not run.rq_job_id:
        flash(f"Run #{run.number} is queued, {queue_place(run)}.", "info")
    else:
        flash(f"Run #{run.number} started.", "success")
    return redirect(url_for("runs.detail", run_id=run.id))


def launch_url(job: Job) -> str:
    """Where a job that is not run on request is started (a campaign: its launch page)."""
    return url_for("campaigns.launch", campaign_id=job.params.get("campaign_id", 0))


@bp.route("/<int:job_id>/delete", methods=["POST"])
@login_required
def delete(job_id: int):
    """Delete a job definition and its uploaded file (see discard_job_file); its runs stay in
    History, their results until the retention period ends."""
    job = job_or_404(job_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    refused = refusal(job)
    if refused:  # a group never points at a deleted job
        flash(refused, "error")
        return redirect(url_for("jobs.detail", job_id=job.id))
    if delete_job(job):  # (else a second click: deleted already, by the first)
        current_app.logger.info("job %s deleted by %s", job.id, current_user.email)
    flash(f"“{job.name}” was deleted. Its runs stay in History.", "success")
    return redirect(url_for("jobs.index"))
