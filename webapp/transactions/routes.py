"""Transactions: the Transaction Data Import's upload and mapping, and the list of all transactions."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestEntityTooLarge

from webapp import audit
from webapp.csvfiles import DELIMITER_NAMES
from webapp.extensions import db
from webapp.jobs import uploads
from webapp.jobs.saving import after_saving, resent
from webapp.jobs.uploads import forget_upload, job_made_from, load_upload, upload_step
from webapp.jobtypes.transaction_import import (
    TransactionImport,
    mapping_problems,
    remembered_guesses,
)
from webapp.jobtypes.transaction_lines import EARLIEST_GIFT
from webapp.jobtypes.user_data_import import ImportUploadForm
from webapp.models.jobs import Job
from webapp.models.money import TRANSACTION_KINDS, Transaction
from webapp.money.transactions import TransactionFilter, page_links, totals_by_currency, visible_transactions
from webapp.paging import Keyset
from webapp.request_args import choice_arg, date_arg, int_arg
from webapp.transactions.forms import transaction_mapping_form

bp = Blueprint("transactions", __name__, url_prefix="/transactions")


EARLIEST = date.fromisoformat(EARLIEST_GIFT)


def text_arg(name: str, limit: int) -> str:
    """The query value `name`, trimmed to `limit` characters (a NUL is refused before)."""
    return request.args.get(name, "").strip()[:limit]


def filter_from_request() -> TransactionFilter:
    """The Transactions filter in the query string; a malformed date or run is a 400 with a
    sentence."""
    return TransactionFilter(
        date_from=date_arg("date_from", earliest=EARLIEST),  # as early as an import takes a gift
        date_to=date_arg("date_to", earliest=EARLIEST),
        appeal=text_arg("appeal", 80),
        payment_method=text_arg("method", 40),
        kind=choice_arg("type", TRANSACTION_KINDS),
        email=text_arg("email", 255).lower(),
        run_id=int_arg("run"),
    )


@bp.route("/")
@login_required
def index():
    """Transactions the user may see, newest first, with filters and totals by currency."""
    filters = filter_from_request()
    query = filters.apply(visible_transactions(current_user))
    keyset = Keyset.from_request(current_app.config["PAGE_SIZE"])
    page = keyset.page(db.session.execute(keyset.narrow(query, Transaction.id)).scalars().all())
    emails, runs = page_links(page.items)
    return render_template(
        "transactions/index.html",
        transactions=page.items,
        page=page,
        filters=filters,
        totals=totals_by_currency(query),
        emails=emails,
        runs=runs,
        kinds=TRANSACTION_KINDS,
    )


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new_import():
    """Transaction import step 1: upload the CSV (checked end to end before anything is kept)."""
    return upload_step(ImportUploadForm(), "transactions/import_upload.html", "transactions.map_import")


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(_exc):
    """An upload over the limit: the form again with a clear message; nothing was kept."""
    return uploads.upload_too_large(ImportUploadForm(formdata=None), "transactions/import_upload.html")


@bp.route("/new/<token>", methods=["GET", "POST"])
@login_required
def map_import(token: str):
    """Transaction import step 2: map columns with a preview, choose the matching, then save
    (and run)."""
    upload = load_upload(token, current_user.id)
    if upload is None:
        if (saved := job_made_from(token, current_user.id, TransactionImport.key)) is not None:
            return resent(saved)  # sent again, or Back
        abort(404)
    guesses = remembered_guesses(upload.header, current_user.id)
    form = transaction_mapping_form(
        upload.header, guesses, formdata=request.form if request.method == "POST" else None
    )
    if request.method == "GET":
        form.name.data = upload.name
    problems: list[str] = []
    if form.validate_on_submit():
        mapping = [form[f"col_{i}"].data for i in range(len(upload.header))]
        problems = mapping_problems(mapping, form.match_by.data, form.unknown.data)
        if not problems:
            job = Job(
                owner_id=current_user.id,
                job_type=TransactionImport.key,
                name=form.name.data.strip(),
                params={**upload.params(mapping), **form.options()},
            )
            db.session.add(job)
            db.session.commit()
            audit.record("job.created", job, detail=TransactionImport.label)
            forget_upload(upload)
            return after_saving(job)
    return render_template(
        "transactions/import_map.html",
        form=form,
        upload=upload,
        problems=problems,
        unknown=[column for column, guess in zip(upload.header, guesses, strict=False) if not guess],
        delimiter_name=DELIMITER_NAMES[upload.delimiter],
    )
