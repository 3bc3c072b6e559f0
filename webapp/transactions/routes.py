"""Transactions: the Transaction Data Import's upload and mapping, and the list of all transactions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import Select, select
from werkzeug.exceptions import RequestEntityTooLarge

from webapp import audit
from webapp.csvfiles import DELIMITER_NAMES
from webapp.extensions import db
from webapp.jobs import uploads
from webapp.jobs.saving import after_saving
from webapp.jobs.uploads import forget_upload, load_upload, upload_step
from webapp.jobtypes.transaction_import import TransactionImport, guess_field, mapping_problems
from webapp.jobtypes.user_data_import import ImportUploadForm
from webapp.models.jobs import Job
from webapp.models.money import TRANSACTION_KINDS, Transaction
from webapp.models.people import Supporter
from webapp.models.runs import Run
from webapp.money.transactions import totals_by_currency, visible_transactions
from webapp.paging import Keyset
from webapp.request_args import choice_arg, date_arg, int_arg
from webapp.transactions.forms import transaction_mapping_form

bp = Blueprint("transactions", __name__, url_prefix="/transactions")

REMEMBERED_JOBS = 20  # the user's latest transaction imports whose mappings are remembered


def text_arg(name: str, limit: int) -> str:
    """The query value `name`, trimmed to `limit` characters (a NUL is refused before)."""
    return request.args.get(name, "").strip()[:limit]


@dataclass(frozen=True)
class TransactionFilter:
    """What the Transactions page is narrowed to (each part optional)."""

    date_from: date | None = None
    date_to: date | None = None
    appeal: str = ""
    payment_method: str = ""
    kind: str = ""
    email: str = ""
    run_id: int | None = None

    @classmethod
    def from_request(cls) -> TransactionFilter:
        """The filter in the query string; a malformed date or run is a 400 with a sentence."""
        return cls(
            date_from=date_arg("date_from"),
            date_to=date_arg("date_to"),
            appeal=text_arg("appeal", 80),
            payment_method=text_arg("method", 40),
            kind=choice_arg("type", TRANSACTION_KINDS),
            email=text_arg("email", 255).lower(),
            run_id=int_arg("run"),
        )

    def args(self) -> dict[str, Any]:
        """The filter as query values, for the pager."""
        values = {
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "appeal": self.appeal,
            "method": self.payment_method,
            "type": self.kind,
            "email": self.email,
            "run": self.run_id or "",
        }
        return {name: value for name, value in values.items() if value}

    def apply(self, query: Select) -> Select:
        """`query` narrowed to the transactions that match."""
        if self.date_from is not None:
            query = query.where(Transaction.received_on >= self.date_from)
        if self.date_to is not None:
            query = query.where(Transaction.received_on <= self.date_to)
        if self.appeal:
            query = query.where(Transaction.appeal == self.appeal)
        if self.payment_method:
            query = query.where(Transaction.payment_method == self.payment_method)
        if self.kind:
            query = query.where(Transaction.kind == self.kind)
        if self.run_id is not None:
            query = query.where(Transaction.run_id == self.run_id)
        if self.email:
            like = "%" + self.email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            matching = select(Supporter.id).where(Supporter.email.like(like, escape="\\"))
            query = query.where(Transaction.supporter_id.in_(matching))
        return query


def page_links(transactions: list[Transaction]) -> tuple[dict[int, str], dict[int, Run]]:
    """The supporters' emails and the import runs of a page of transactions, by id."""
    supporter_ids = {t.supporter_id for t in transactions if t.supporter_id is not None}
    run_ids = {t.run_id for t in transactions if t.run_id is not None}
    emails = {
        supporter_id: email
        for supporter_id, email in db.session.execute(
            select(Supporter.id, Supporter.email).where(Supporter.id.in_(supporter_ids))
        )
    }
    runs = {run.id: run for run in db.session.execute(select(Run).where(Run.id.in_(run_ids))).scalars()}
    return emails, runs


@bp.route("/")
@login_required
def index():
    """Transactions the user may see, newest first, with filters and totals by currency."""
    filters = TransactionFilter.from_request()
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


def remembered_guesses(columns: list[str], owner_id: int) -> list[str]:
    """The field of each column: as the user mapped a column of that name in one of their
    latest transaction imports, else guessed from its name."""
    jobs = db.session.execute(
        select(Job.params)
        .where(Job.owner_id == owner_id, Job.job_type == TransactionImport.key)
        .order_by(Job.id.desc())
        .limit(REMEMBERED_JOBS)
    ).scalars()
    memory: dict[str, str] = {}
    for params in jobs:
        for column, name in zip(params.get("columns", []), params.get("mapping", []), strict=False):
            memory.setdefault(column.strip().lower(), name)
    return [memory.get(column.strip().lower(), guess_field(column)) for column in columns]


@bp.route("/new/<token>", methods=["GET", "POST"])
@login_required
def map_import(token: str):
    """Transaction import step 2: map columns with a preview, choose the matching, then save
    (and run)."""
    upload = load_upload(token, current_user.id)
    if upload is None:
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
