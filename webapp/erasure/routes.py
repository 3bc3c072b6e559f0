"""Supporter Delete: preview, confirm and delete supporters on request."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import RequestEntityTooLarge

from webapp import audit, once
from webapp.csvfiles import CsvProblem
from webapp.emails import is_email
from webapp.erasure.forms import ConfirmDeleteForm, DeleteForm, DiscardForm
from webapp.erasure.requests import confirm, discard_request, first_run, is_draft, new_request
from webapp.errors import JobError
from webapp.extensions import db
from webapp.jobs.uploads import Upload, forget_upload, save_upload
from webapp.jobtypes import job_type_for
from webapp.jobtypes.supporter_delete import (
    MAX_EMAILS,
    Preview,
    SupporterDelete,
    email_column,
    preview,
    rule_text,
)
from webapp.models.campaigns import SavedFilter
from webapp.models.jobs import Job
from webapp.paging import Keyset
from webapp.permissions import job_or_404, usable_or_404
from webapp.rules.clock import plural
from webapp.storage import StorageUnavailable, current_storage
from webapp.web import upload_limit_text

bp = Blueprint("erasure", __name__, url_prefix="/supporter-deletes")

STORAGE_DOWN = (
    "The file storage did not answer, so nothing was saved. Try again in a moment, "
    "and tell an admin if it keeps happening."
)


@bp.route("/")
@login_required
def index():
    """The user's supporter deletes, newest first, a page at a time (everyone's for a super
    admin)."""
    query = select(Job).where(Job.job_type == SupporterDelete.key).options(selectinload(Job.owner))
    if not current_user.is_super_admin:
        query = query.where(Job.owner_id == current_user.id)
    keyset = Keyset.from_request(current_app.config["PAGE_SIZE"])
    page = keyset.page(db.session.execute(keyset.narrow(query, Job.id)).scalars().all())
    return render_template("erasure/index.html", deletes=page.items, page=page, is_draft=is_draft)


def _filters() -> list[SavedFilter]:
    return list(
        db.session.execute(
            select(SavedFilter).where(SavedFilter.owner_id == current_user.id).order_by(SavedFilter.name)
        ).scalars()
    )


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    """Step 1: name the delete and choose its supporters (a CSV of emails or a saved filter)."""
    form = DeleteForm()
    form.filter_id.choices = [(0, "Choose a saved filter")] + [(f.id, f.name) for f in _filters()]
    if form.validate_on_submit():
        said = "The form was sent twice: it made one Supporter Delete."
        if (again := once.sent_again(said, url_for("erasure.index"))) is not None:
            return again
        try:
            params = _filtered(form) if form.source.data == "filter" else _uploaded(form)
        except StorageUnavailable:
            once.forget()
            form.file.errors.append(STORAGE_DOWN)
            return render_template("erasure/new.html", form=form), 503
        if params is None:
            once.forget()
        else:
            job = new_request(current_user, form.name.data.strip(), params)
            once.remember(url_for("erasure.detail", job_id=job.id))
            audit.record("job.created", job, detail="Supporter Delete (waiting for its confirmation)")
            return redirect(url_for("erasure.detail", job_id=job.id))
    return render_template("erasure/new.html", form=form)


def _filtered(form: DeleteForm) -> dict[str, Any]:
    """The job's parameters for one of the user's saved filters (another's is a 404)."""
    saved = usable_or_404(SavedFilter, form.filter_id.data, current_user.id)
    return {
        "source": "filter",
        "filter_id": saved.id,
        "filter_name": saved.name,
        "rule_text": rule_text(saved),
        "rule": saved.rule,  # what is previewed, confirmed and deleted, whatever the filter becomes
    }


def _uploaded(form: DeleteForm) -> dict[str, Any] | None:
    """The job's parameters for the uploaded file; None (and the form's message) when it cannot
    be used, and then nothing is kept."""
    try:
        upload = save_upload(form.file.data, current_user.id, form.name.data.strip(), form.encoding.data)
    except CsvProblem as unreadable:
        form.file.errors.append(str(unreadable))
        return None
    column, has_header = _email_column(upload)
    problem = None
    if column is None:
        problem = (
            "The file has no column of emails: name one “Email” (its other columns are ignored). "
            "Nothing was saved."
        )
    elif (upload.rows or 0) > MAX_EMAILS:
        problem = (
            f"The file has {upload.rows:,} lines; a supporter delete takes at most {MAX_EMAILS:,} "
            "emails. Split it into smaller files (or use a saved filter). Nothing was saved."
        )
    if problem:
        form.file.errors.append(problem)
        current_storage().delete(upload.key)
        forget_upload(upload)
        return None
    forget_upload(upload)
    return {
        "source": "csv",
        "path": upload.key,
        "filename": upload.filename,
        "encoding": upload.encoding,
        "delimiter": upload.delimiter,
        "email_column": column,
        "has_header": has_header,
        "total_rows": (upload.rows or 0) + (0 if has_header else 1),
    }


def _email_column(upload: Upload) -> tuple[int | None, bool]:
    """(the column of emails, whether the first row is a header): a column named Email, else a
    file whose first row is already an email (no header)."""
    column = email_column(upload.header)
    if column is not None:
        return column, True
    for index, cell in enumerate(upload.header):
        if is_email(cell):
            return index, False
    return None, True


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(_exc):
    """An upload over the limit: the form again with a clear message; nothing was kept."""
    form = DeleteForm(formdata=None)
    form.filter_id.choices = [(0, "Choose a saved filter")] + [(f.id, f.name) for f in _filters()]
    form.file.errors = [
        f"The file is larger than the upload limit of {upload_limit_text()}. Nothing was saved."
    ]
    return render_template("erasure/new.html", form=form), 413


def _delete_job_or_404(job_id: int):
    """The Supporter Delete job the user may see, or (another type) a redirect to its page."""
    job = job_or_404(job_id)
    if job.job_type != SupporterDelete.key:
        return job, redirect(job_type_for(job.job_type).page_url(job.id))
    return job, None


def _preview(job: Job) -> tuple[Preview | None, str | None]:
    """What the delete would delete now, or why that cannot be known."""
    try:
        return preview(job), None
    except JobError as problem:
        return None, f"This delete cannot run: {problem}"
    except (FileNotFoundError, CsvProblem):
        return (
            None,
            "Its uploaded file is no longer there (an unconfirmed upload is kept a day). Start again.",
        )
    except StorageUnavailable:
        return None, STORAGE_DOWN


@bp.route("/<int:job_id>")
@login_required
def detail(job_id: int):
    """A delete: its preview and confirmation while it waits, else what it did."""
    job, elsewhere = _delete_job_or_404(job_id)
    if elsewhere is not None:
        return elsewhere
    if not is_draft(job):
        return render_template(
            "erasure/detail.html",
            job=job,
            run=first_run(job),
            described=SupporterDelete().describe(job.params),
        )
    return _confirm_page(job, ConfirmDeleteForm(formdata=None))


def _confirm_page(
    job: Job,
    form: ConfirmDeleteForm,
    status: int = 200,
    previewed: tuple[Preview | None, str | None] | None = None,
):
    """The preview and the confirmation form (`previewed`: the preview when already made)."""
    found, problem = previewed or _preview(job)
    return render_template(
        "erasure/confirm.html",
        job=job,
        form=form,
        discard_form=DiscardForm(),
        preview=found,
        problem=problem,
        described=SupporterDelete().describe(job.params),
    ), (status if problem is None else 409)


@bp.route("/<int:job_id>/confirm", methods=["POST"])
@login_required
def confirm_delete(job_id: int):
    """The typed confirmation: start the delete when the number typed is the number it deletes."""
    job, elsewhere = _delete_job_or_404(job_id)
    if elsewhere is not None:
        return elsewhere
    if not is_draft(job):
        flash("This delete was confirmed already; it ran (or runs) once.", "info")
        return redirect(url_for("erasure.detail", job_id=job.id))
    form = ConfirmDeleteForm()
    if not form.validate_on_submit():
        return _confirm_page(job, form, 400)
    previewed = _preview(job)
    found = previewed[0]
    if found is None:
        return _confirm_page(job, form, 409, previewed)
    typed = form.number()
    if found.count == 0:
        form.typed.errors = ["No supporter would be deleted: there is nothing to confirm."]
        return _confirm_page(job, form, 400, previewed)
    if typed != found.count:
        form.typed.errors = [
            f"That is not the number of supporters this deletes: type {found.count:,} to confirm "
            f"(it is {found.count:,} now)."
        ]
        return _confirm_page(job, form, 400, previewed)
    run = confirm(job, current_user, found.count)
    if run is None:
        flash("This delete was confirmed already; it ran (or runs) once.", "info")
        return redirect(url_for("erasure.detail", job_id=job.id))
    audit.record(
        "supporter_delete.confirmed", run, detail=f"{plural(found.count, 'supporter')}, “{job.name}”"
    )
    flash(f"Deleting {plural(found.count, 'supporter')}: run #{run.number} started.", "success")
    return redirect(url_for("runs.detail", run_id=run.id))


@bp.route("/<int:job_id>/discard", methods=["POST"])
@login_required
def discard(job_id: int):
    """Drop a delete that waits for its confirmation, and its uploaded file (nothing was deleted)."""
    job, elsewhere = _delete_job_or_404(job_id)
    if elsewhere is not None:
        return elsewhere
    if not DiscardForm().validate_on_submit():
        abort(400)
    name = job.name
    if not discard_request(job):
        flash("This delete was confirmed already; it ran (or runs) once.", "info")
        return redirect(url_for("erasure.detail", job_id=job_id))
    audit.record(
        "job.deleted", kind="Job", detail=f"Supporter Delete “{name}” (job {job_id}), never confirmed"
    )
    flash(f"“{name}” was discarded; nothing was deleted.", "success")
    return redirect(url_for("erasure.index"))
