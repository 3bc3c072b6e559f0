"""Transactions by the API: list them (the Transactions page's owner rule and filters, a page at a
time) and import a CSV body of them as a Transaction Data Import run.

An import made here is started with the trigger "api": a Rollback Transaction Data Import
refuses it (only dashboard imports can be rolled back). Its job is an ordinary transaction import
job of the token's user, named by the request, which can be run again from the Jobs page."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from flask import request, url_for
from flask_login import current_user
from pydantic import BaseModel, Field, field_validator
from werkzeug.datastructures import FileStorage

from webapp import audit
from webapp.api.v1.core import fail
from webapp.api.v1.idempotency import started_once
from webapp.api.v1.imports import discard, map_pairs
from webapp.api.v1.schemas import Closed, RunOut
from webapp.api.v1.spec import operation
from webapp.csvfiles import CsvProblem
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.jobs.uploads import Upload, forget_upload, save_upload
from webapp.jobtypes.transaction_import import (
    IMPORT_FIELDS,
    TransactionImport,
    mapping_problems,
    remembered_guesses,
)
from webapp.models.jobs import Job
from webapp.models.money import TRANSACTION_KINDS, Transaction
from webapp.models.runs import Run
from webapp.money.transactions import TransactionFilter, page_links, visible_transactions
from webapp.paging import Keyset
from webapp.request_args import MAX_ID
from webapp.rules.currencies import CURRENCIES
from webapp.storage import StorageUnavailable

TAG = "Transactions"
MAX_PAGE_SIZE = 200
CSV = "text/csv"


class TransactionOut(BaseModel):
    """A transaction (a gift, or a refund with a negative amount)."""

    id: int
    supporter_id: int | None = Field(description="null once the supporter was deleted")
    supporter_email: str | None
    amount: str = Field(description="a decimal number, e.g. 125.50 (negative for a refund)")
    currency: str = Field(description="ISO 4217")
    received_on: str = Field(description="YYYY-MM-DD")
    payment_method: str | None
    type: str = Field(description="one_off, recurring or refund")
    appeal: str | None
    source: str
    external_id: str | None
    tax_deductible: str | None
    run_id: int | None = Field(description="the import run that created it")


class TransactionPage(BaseModel):
    """A page of transactions, newest first, and the addresses of the pages either side (null
    at an end)."""

    transactions: list[TransactionOut]
    next: str | None
    previous: str | None


class TransactionQuery(Closed):
    """Which transactions, and where a page starts."""

    date_from: date | None = Field(default=None, description="received on or after, YYYY-MM-DD")
    date_to: date | None = Field(default=None, description="received on or before, YYYY-MM-DD")
    appeal: str = Field(default="", max_length=80)
    payment_method: str = Field(default="", max_length=40)
    type: Literal["", "one_off", "recurring", "refund"] = ""
    email: str = Field(default="", max_length=255, description="part of the supporter's email, any case")
    run_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="the import run")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE, description="transactions a page")
    before: int | None = Field(default=None, ge=1, le=MAX_ID, description="the page after this id")
    after: int | None = Field(default=None, ge=1, le=MAX_ID, description="the page before this id")

    @field_validator("before", "after", "run_id", "date_from", "date_to", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


class TransactionImportQuery(Closed):
    """How to read a transaction import's CSV body and match its lines: the query string."""

    name: str = Field(default="Transaction import through the API", min_length=1, max_length=200)
    encoding: Literal["utf-8", "latin-1"] = "utf-8"
    source: str = Field(
        min_length=1, max_length=60, description="where the external transaction ids come from"
    )
    match_by: Literal["email", "external_id"] = "email"
    unknown: Literal["create", "reject"] = Field(default="create", description="when no supporter matches")
    default_currency: str = Field(default="USD", description="ISO 4217, for a line with no currency")
    readd_deleted: bool = Field(default=False, description="re-add supporters deleted on request earlier")
    map: list[str] | None = Field(
        default=None,
        description="Column:field, once per column to import (repeat the parameter), e.g. map=Gift:amount; "
        f"the fields: {', '.join(IMPORT_FIELDS)}. Without map each column is mapped as the mapping page "
        "would preselect it.",
    )

    @field_validator("default_currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value.upper() not in CURRENCIES:
            raise ValueError("not an ISO 4217 currency code")
        return value.upper()


def transaction_out(transaction: Transaction, emails: dict[int, str]) -> TransactionOut:
    """A transaction as the API shows it."""
    tax = transaction.tax_deductible
    return TransactionOut(
        id=transaction.id,
        supporter_id=transaction.supporter_id,
        supporter_email=emails.get(transaction.supporter_id) if transaction.supporter_id else None,
        amount=f"{transaction.amount:.2f}",
        currency=transaction.currency,
        received_on=transaction.received_on.isoformat(),
        payment_method=transaction.payment_method,
        type=transaction.kind,
        appeal=transaction.appeal,
        source=transaction.source,
        external_id=transaction.external_id,
        tax_deductible=None if tax is None else f"{tax:.2f}",
        run_id=transaction.run_id,
    )


@operation("GET", "/transactions", tag=TAG, answers={200: TransactionPage}, query=TransactionQuery)
def transactions(query: TransactionQuery):
    """Transactions the token's user may see (their own imports'; every one for a super admin),
    newest first, filtered as the Transactions page filters them.

    `limit` a page (at most 200); follow `next` (`before` an id) and `previous` (`after` one)."""
    filters = TransactionFilter(
        date_from=query.date_from,
        date_to=query.date_to,
        appeal=query.appeal.strip(),
        payment_method=query.payment_method.strip(),
        kind=query.type if query.type in TRANSACTION_KINDS else "",
        email=query.email.strip().lower(),
        run_id=query.run_id,
    )
    keyset = Keyset(before=query.before, after=query.after, per_page=query.limit)
    found = filters.apply(visible_transactions(current_user))
    page = keyset.page(db.session.execute(keyset.narrow(found, Transaction.id)).scalars().all())
    emails, _runs = page_links(page.items)
    kept: dict[str, Any] = {**query.model_dump(exclude={"before", "after"}, exclude_defaults=True)}
    kept["limit"] = query.limit

    def link(args: dict | None) -> str | None:
        return url_for("api_v1.transactions", **kept, **args) if args else None

    return TransactionPage(
        transactions=[transaction_out(item, emails) for item in page.items],
        next=link(page.next_args),
        previous=link(page.prev_args),
    )


@operation(
    "POST",
    "/transaction-imports",
    tag=TAG,
    answers={202: RunOut},
    query=TransactionImportQuery,
    errors=(400, 403, 409, 413, 415, 503),
    body_types=(CSV,),
)
def create_transaction_import(query: TransactionImportQuery):
    """Import transactions from a CSV body as a Transaction Data Import run.

    The body (`Content-Type: text/csv`) is checked as the upload page checks a file; its columns
    are mapped by `map` (`Column:field`, repeated), else as the mapping page would preselect them;
    Amount, Date and the field supporters are matched by must be mapped (a 422 otherwise).
    Answers 202 with the queued run: poll it, read its rejected lines, stop or retry it as any
    run. An import made through the API cannot be rolled back. With an `Idempotency-Key`
    header, the same key sent again within a day answers the first run and starts nothing."""
    return started_once("transaction-imports", lambda: _import(query))


def _import(query: TransactionImportQuery) -> Run:
    """Check the request, store its body as an upload and start its run."""
    if request.mimetype != CSV:
        raise fail(415, f"send the body as CSV ({CSV})")
    if not query.name.strip() or not query.source.strip():
        raise fail(422, "name and source must not be blank", problems={"source": ["blank"]})
    pairs = map_pairs(
        request.args.getlist("map"), IMPORT_FIELDS, "field of a transaction import", "Gift:amount"
    )
    try:
        body = FileStorage(stream=request.stream, filename="api-transactions.csv")
        upload = save_upload(body, current_user.id, query.name.strip(), query.encoding)
    except CsvProblem as problem:
        raise fail(400, f"the body cannot be imported: {problem}") from None
    except StorageUnavailable:
        raise fail(503, "the file store did not answer, so nothing was saved: try again shortly") from None
    try:
        mapping = _mapping(upload, pairs, query)
    except BaseException:
        discard(upload)
        raise
    options = {
        "source": query.source.strip(),
        "match_by": query.match_by,
        "unknown": query.unknown,
        "default_currency": query.default_currency,
        "readd_deleted": query.readd_deleted,
    }
    job = Job(
        owner_id=current_user.id,
        job_type=TransactionImport.key,
        name=query.name.strip(),
        params={**upload.params(mapping), **options},
    )
    db.session.add(job)
    db.session.commit()
    forget_upload(upload)
    run = start_run(job, current_user, trigger="api")
    audit.record(
        "run.started", run, detail=f"Transaction Data Import {run.label}: {upload.rows:,} lines sent (API)"
    )
    return run


def _mapping(upload: Upload, pairs: list[tuple[str, str]], query: TransactionImportQuery) -> list[str]:
    """The field of each of the body's columns ('' ignores it); a 422 for a column the header
    lacks or a mapping the mapping page would refuse."""
    header = upload.header
    missing = [column for column, _ in pairs if column not in header]
    if missing:
        shown = ", ".join(repr(column[:100]) for column in missing[:10])
        raise fail(422, f"map names columns the body's header does not have: {shown}")
    if pairs:
        by_column = dict(pairs)
        mapping = [by_column.get(column, "") for column in header]
    else:
        mapping = remembered_guesses(header, current_user.id)
    problems = mapping_problems(mapping, query.match_by, query.unknown)
    if problems:
        raise fail(
            422, f"the columns cannot be imported so: {' '.join(problems)}", problems={"map": problems}
        )
    return mapping
