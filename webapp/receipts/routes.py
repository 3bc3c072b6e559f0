"""Receipts: the receipt template, the receipts issued, and the receipt generators' forms.

A receipt is the organisation's document: only admins and super admins see receipts, edit the
template, void a receipt or make receipt jobs (a user is answered 403 by admin_required, and
the Receipts page tells them so). Receipt jobs and runs follow every job's owner rules."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import Select, select

from webapp import audit
from webapp.extensions import db
from webapp.formutil import choices
from webapp.jobs.saving import save_form
from webapp.jobtypes import job_type_for
from webapp.jobtypes.annual_receipts import AnnualReceipts
from webapp.jobtypes.base import JobType
from webapp.jobtypes.batch_receipts import IMPORT_TYPE, BatchReceipts
from webapp.jobtypes.receipt_inventory import ReceiptInventory
from webapp.models.base import utcnow
from webapp.models.jobs import Job
from webapp.models.money import RECEIPT_STATUSES, Receipt, ReceiptItem, ReceiptTemplate, Transaction
from webapp.models.runs import Run
from webapp.money import issuing
from webapp.money.delivery import pdf_name
from webapp.money.pdf import DEFAULT_WORDING, render_receipt, unprintable
from webapp.money.receipt_filter import ReceiptFilter
from webapp.paging import Keyset
from webapp.permissions import admin_required, can_see, job_or_404
from webapp.receipts.forms import AnnualForm, BatchForm, InventoryForm, ReceiptFilters, TemplateForm, VoidForm
from webapp.rules.clock import to_local

bp = Blueprint("receipts", __name__, url_prefix="/receipts")

IMPORTS_LISTED = 300  # the newest transaction imports offered to a batch


def filtered(filters: ReceiptFilters) -> Select:
    """The receipts the list's filters select."""
    return ReceiptFilter(
        number=filters.number.data,
        status=filters.status.data or "",
        kind=filters.kind.data or "",
        year=filters.year.data,
        donor=filters.donor.data or "",
    ).apply(select(Receipt))


@bp.route("/")
@login_required
def index():
    """The receipts issued, newest first, with filters (admins; others are told who keeps them)."""
    if not current_user.is_admin:
        return render_template("receipts/index.html", page=None, receipts=[], filters=None, args={})
    filters = ReceiptFilters(request.args)
    filters.status.choices = choices([("", "Any"), *RECEIPT_STATUSES.items()])
    valid = filters.validate()
    query = filtered(filters) if valid else select(Receipt).where(Receipt.id < 0)
    keyset = Keyset.from_request(current_app.config["PAGE_SIZE"])
    page = keyset.page(db.session.execute(keyset.narrow(query, Receipt.id)).scalars().all())
    args = {name: value for name, value in request.args.items() if name in filters.data and value}
    return render_template("receipts/index.html", page=page, receipts=page.items, filters=filters, args=args)


def _receipt_or_404(receipt_id: int) -> Receipt:
    receipt = db.session.get(Receipt, receipt_id)
    if receipt is None:
        abort(404)
    return receipt


@bp.route("/<int:receipt_id>")
@admin_required
def detail(receipt_id: int):
    """One receipt: its gifts, status, PDF and Void."""
    receipt = _receipt_or_404(receipt_id)
    return _detail(receipt, VoidForm())


def _detail(receipt: Receipt, form: VoidForm, status: int = 200):
    items = db.session.execute(
        select(ReceiptItem, Transaction)
        .outerjoin(Transaction, Transaction.id == ReceiptItem.transaction_id)
        .where(ReceiptItem.receipt_id == receipt.id)
        .order_by(ReceiptItem.id)
    ).all()
    replaces = db.session.get(Receipt, receipt.replaces_id) if receipt.replaces_id else None
    replaced_by = db.session.execute(select(Receipt).where(Receipt.replaces_id == receipt.id)).scalar()
    run = db.session.get(Run, receipt.run_id) if receipt.run_id else None
    may_open_run = run is not None and can_see(current_user, run)
    return (
        render_template(
            "receipts/detail.html",
            receipt=receipt,
            items=items,
            form=form,
            statuses=RECEIPT_STATUSES,
            may_open_run=may_open_run,
            replaces=replaces,
            replaced_by=replaced_by,
            run=run,
            unprinted=unprintable(f"{receipt.donor_name}{receipt.donor_address}"),
        ),
        status,
    )


@bp.route("/<int:receipt_id>/pdf")
@admin_required
def pdf(receipt_id: int):
    """The receipt's PDF, rendered again from what was issued (a voided one says so)."""
    receipt = _receipt_or_404(receipt_id)
    data = render_receipt(issuing.printed(receipt, current_app.config["TIMEZONE"]), issuing.letterhead())
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{pdf_name(receipt.number)}"'},
    )


@bp.route("/<int:receipt_id>/void", methods=["POST"])
@admin_required
def void(receipt_id: int):
    """Void an issued receipt (a reason and a confirmation): its number is never used again,
    and its gifts may be receipted again (or their import rolled back)."""
    receipt = _receipt_or_404(receipt_id)
    form = VoidForm()
    if not form.validate_on_submit():
        return _detail(receipt, form, 400)
    try:
        issuing.void(receipt, form.reason.data)
    except issuing.VoidError as exc:
        db.session.rollback()
        db.session.refresh(receipt)
        if receipt.status != "issued":  # voided or replaced meanwhile (a second click, another tab)
            flash(f"Receipt {receipt.number} is {receipt.status} already: nothing changed.", "info")
            return redirect(url_for("receipts.detail", receipt_id=receipt.id))
        form.reason.errors = [str(exc)]
        return _detail(receipt, form, 400)
    audit.record(
        "receipt.voided", receipt, detail=f"Receipt {receipt.number}: {receipt.void_reason}", commit=False
    )
    db.session.commit()
    flash(f"Receipt {receipt.number} was voided.", "success")
    return redirect(url_for("receipts.detail", receipt_id=receipt.id))


# --------------------------------------------------------------------------- the template


@bp.route("/template", methods=["GET", "POST"])
@admin_required
def template():
    """Receipts settings: what every receipt prints, and the signature image."""
    stored = ReceiptTemplate.get()
    form = TemplateForm(obj=stored)
    if not form.is_submitted() and not stored.wording:
        form.wording.data = DEFAULT_WORDING
    valid = form.validate_on_submit()
    # the image is checked even when another field is wrong: the form names every problem at once
    image = form.signature_image() if form.is_submitted() else None
    if valid:
        if not form.signature.errors:
            for name in ("organisation_name", "address", "charity_number", "signatory", "wording"):
                setattr(stored, name, (getattr(form, name).data or "").strip())
            changed = "text"
            if image is not None:
                stored.signature, stored.signature_type = image
                changed = "text and signature image"
            elif form.remove_signature.data:
                stored.signature = stored.signature_type = None
                changed = "text; signature image removed"
            stored.updated_at = utcnow()
            audit.record(
                "receipts.template_changed",
                None,
                kind="settings",
                detail=f"Receipt template: {changed}",
                commit=False,
            )
            db.session.commit()
            flash("The receipt template was saved.", "success")
            return redirect(url_for("receipts.template"))
    status = 400 if form.is_submitted() else 200
    return render_template("receipts/template.html", form=form, template=stored), status


@bp.route("/template/signature")
@admin_required
def signature():
    """The stored signature image (the settings page's preview)."""
    stored = ReceiptTemplate.get()
    if not stored.signature:
        abort(404)
    return Response(stored.signature, mimetype=stored.signature_type or "application/octet-stream")


# ------------------------------------------------------------------------- the job forms


def _imports(keep: int | None) -> list[tuple[str, str]]:
    """The transaction imports the current user may see, newest first (and `keep`, chosen)."""
    query = select(Run).where(Run.job_type == IMPORT_TYPE)
    if not current_user.is_super_admin:
        query = query.where(Run.owner_id == current_user.id)
    runs = list(db.session.execute(query.order_by(Run.id.desc()).limit(IMPORTS_LISTED)).scalars())
    if keep and all(run.id != keep for run in runs):
        runs += list(db.session.execute(query.where(Run.id == keep)).scalars())
    tz_name = current_app.config["TIMEZONE"]
    return [("", "Choose an import…")] + [
        (str(run.id), f"“{run.job_name}” run #{run.number}, {to_local(run.created_at, tz_name):%b %d, %Y}")
        for run in runs
    ]


def _check_import(form) -> None:
    """A named import run must be one the user may see: 404 otherwise, as a guessed URL."""
    if isinstance(form, BatchForm) and form.is_submitted() and form.source.data == "run":
        run_id = form.import_run_id()
        if run_id is not None:
            run = db.session.get(Run, run_id)
            if run is None or run.job_type != IMPORT_TYPE or not can_see(current_user, run):
                abort(404)


FORMS: dict[str, tuple[type[JobType], type]] = {
    BatchReceipts.key: (BatchReceipts, BatchForm),
    AnnualReceipts.key: (AnnualReceipts, AnnualForm),
    ReceiptInventory.key: (ReceiptInventory, InventoryForm),
}


def _job_form(type_key: str, job: Job | None):
    """Create (job None) or edit a receipt job of type `type_key`."""
    job_type, form_class = FORMS[type_key]
    form = form_class()
    if job is not None and not form.is_submitted():
        form.name.data = job.name
        form.fill_from(job.params)
    if isinstance(form, BatchForm):
        form.import_run.choices = _imports(form.import_run_id())
    _check_import(form)
    if form.validate_on_submit():
        return save_form(form, job_type, job, "Parameters changed")
    tz_name = current_app.config["TIMEZONE"]
    zone = f"{tz_name} ({to_local(utcnow(), tz_name):%Z})"
    status = 400 if form.is_submitted() else 200
    stored = db.session.get(ReceiptTemplate, 1)
    no_template = job_type.key != ReceiptInventory.key and not (stored and stored.organisation_name)
    return (
        render_template(
            "receipts/job_form.html",
            form=form,
            job=job,
            job_type=job_type,
            zone=zone,
            no_template=no_template,
        ),
        status,
    )


def _own_job(job_id: int, type_key: str) -> Any:
    job = job_or_404(job_id)
    if job.job_type != type_key or not job.active:
        return redirect(job_type_for(job.job_type).page_url(job.id))
    return job


@bp.route("/batch/new", methods=["GET", "POST"])
@admin_required
def new_batch():
    """Create a Batch Receipt Generator job."""
    return _job_form(BatchReceipts.key, None)


@bp.route("/batch/<int:job_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_batch(job_id: int):
    """Change a Batch Receipt Generator job."""
    job = _own_job(job_id, BatchReceipts.key)
    return _job_form(BatchReceipts.key, job) if isinstance(job, Job) else job


@bp.route("/annual/new", methods=["GET", "POST"])
@admin_required
def new_annual():
    """Create an Annual Receipt Generator job."""
    return _job_form(AnnualReceipts.key, None)


@bp.route("/annual/<int:job_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_annual(job_id: int):
    """Change an Annual Receipt Generator job."""
    job = _own_job(job_id, AnnualReceipts.key)
    return _job_form(AnnualReceipts.key, job) if isinstance(job, Job) else job


@bp.route("/inventory/new", methods=["GET", "POST"])
@admin_required
def new_inventory():
    """Create a Receipt Inventory Generator job."""
    return _job_form(ReceiptInventory.key, None)


@bp.route("/inventory/<int:job_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_inventory(job_id: int):
    """Change a Receipt Inventory Generator job."""
    job = _own_job(job_id, ReceiptInventory.key)
    return _job_form(ReceiptInventory.key, job) if isinstance(job, Job) else job
