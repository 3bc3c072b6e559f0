"""Transaction Data Import: a CSV of gifts (and refunds) matched to supporters by email or by
their external id, streamed in batches (the loop is transaction_loader.TransactionLoader).

The run counters, as a fundraiser reads them on the run page and in History:
- checked: "Lines checked" — every data line of the file read so far;
- created: "Transactions created";
- skipped: "Supporters created" — supporters the file named that did not exist yet (when the
  job says to create them): a run counter of its own that an import of money does not use;
- updated: "Supporters updated" — supporters whose mapped fields this run changed, each once
  however many of its lines changed them;
- rejected: "Lines rejected" — each with every reason, in the run's rejected lines and its
  import report (the result file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from flask import url_for
from sqlalchemy import select

from webapp.csvfiles import DELIMITER_NAMES, check_bytes, check_columns
from webapp.extensions import db
from webapp.jobtypes.base import JobType
from webapp.jobtypes.transaction_loader import TransactionLoader
from webapp.jobtypes.user_data_import import count_data_records, write_report
from webapp.jobtypes.user_data_import import guess_field as guess_supporter_field
from webapp.models.jobs import Job
from webapp.models.settings import AccountSettings
from webapp.rules.currencies import CURRENCIES, DEFAULT
from webapp.storage import located

if TYPE_CHECKING:
    from webapp.engine.context import RunContext
    from webapp.models.runs import Run

# what a column can be mapped to: the transaction's fields, then the supporter's
TRANSACTION_FIELDS: dict[str, str] = {
    "amount": "Amount",
    "currency": "Currency",
    "date": "Date",
    "payment_method": "Payment method",
    "type": "Type (one-off, recurring, refund)",
    "appeal": "Appeal or campaign code",
    "transaction_id": "External transaction id",
    "tax_deductible": "Tax-deductible amount",
}
SUPPORTER_FIELDS: dict[str, str] = {
    "email": "Supporter email",
    "external_id": "External supporter id",
    "first_name": "First name",
    "last_name": "Last name",
    "address1": "Address",
    "city": "City",
    "state": "State",
    "zip": "Postal code",
    "country": "Country",
    "phone": "Phone",
}
IMPORT_FIELDS: dict[str, str] = {**TRANSACTION_FIELDS, **SUPPORTER_FIELDS}
MATCH_BY = {"email": "Email", "external_id": "External supporter id"}
WHEN_UNKNOWN = {"create": "Create the supporter", "reject": "Reject the line"}

HEADER_ALIASES = {
    "amount": "amount",
    "gift amount": "amount",
    "donation amount": "amount",
    "gift": "amount",
    "total": "amount",
    "currency": "currency",
    "currency code": "currency",
    "date": "date",
    "gift date": "date",
    "donation date": "date",
    "transaction date": "date",
    "received": "date",
    "received on": "date",
    "payment method": "payment_method",
    "method": "payment_method",
    "payment type": "payment_method",
    "type": "type",
    "gift type": "type",
    "transaction type": "type",
    "appeal": "appeal",
    "appeal code": "appeal",
    "campaign": "appeal",
    "campaign code": "appeal",
    "transaction id": "transaction_id",
    "external transaction id": "transaction_id",
    "charge id": "transaction_id",
    "payment id": "transaction_id",
    "tax deductible": "tax_deductible",
    "tax deductible amount": "tax_deductible",
    "tax-deductible amount": "tax_deductible",
    "deductible amount": "tax_deductible",
    "supporter id": "external_id",
    "external supporter id": "external_id",
    "external id": "external_id",
    "donor id": "external_id",
    "customer id": "external_id",
    "constituent id": "external_id",
}


def guess_field(column: str) -> str:
    """The import field a CSV header most likely means (as the supporter import guesses its
    own fields), or '' to ignore it."""
    key = column.strip().lower().replace("_", " ")
    for name, label in IMPORT_FIELDS.items():
        if key in (name.replace("_", " "), label.lower()):
            return name
    guessed = HEADER_ALIASES.get(key) or guess_supporter_field(column)
    return guessed if guessed in IMPORT_FIELDS else ""


def mapping_problems(mapping: list[str], match_by: str, unknown: str) -> list[str]:
    """What is wrong with a column mapping and the matching options it goes with."""
    chosen = [name for name in mapping if name]
    problems = []
    for name in ("amount", "date"):
        if name not in chosen:
            problems.append(f"Map one column to {IMPORT_FIELDS[name]}: every transaction needs one.")
    if match_by not in chosen:
        problems.append(
            f"Map one column to {IMPORT_FIELDS[match_by]}: supporters are matched by it "
            "(or choose to match them by the other)."
        )
    elif match_by == "external_id" and unknown == "create" and "email" not in chosen:
        problems.append(
            "Map one column to Supporter email: a new supporter needs one (or choose to reject "
            "the lines of unknown supporters)."
        )
    for name in sorted({name for name in chosen if chosen.count(name) > 1}):
        problems.append(f"{IMPORT_FIELDS[name]} is mapped to more than one column.")
    return problems


class TransactionImport(JobType):
    """CSV → transactions of supporters matched by email or external id; supporters created or
    updated as the job says; bad lines rejected with every reason, never fatal."""

    key = "transaction_import"
    label = "Transaction Data Import"
    description = (
        "Upload a CSV of gifts and refunds; each line is matched to a supporter by email or "
        "external id, and bad lines are rejected with their reason."
    )
    noun = "lines"
    noun_past = "imported"
    result_kind = "CSV"  # the import report: the rejected lines
    new_endpoint: ClassVar[str | None] = "transactions.new_import"
    new_label = "New transaction import"
    count_labels: ClassVar[dict[str, str]] = {
        "checked": "Lines checked",
        "created": "Transactions created",
        "skipped": "Supporters created",
        "updated": "Supporters updated",
        "rejected": "Lines rejected",
    }

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        columns, mapping = params.get("columns", []), params.get("mapping", [])
        mapped = ", ".join(
            f"{column} → {IMPORT_FIELDS.get(name, name)}"
            for column, name in zip(columns, mapping, strict=False)
            if name
        )
        currency = params.get("default_currency", DEFAULT)
        return [
            ("File", params.get("filename", "")),
            ("Encoding", params.get("encoding", "utf-8")),
            ("Delimiter", DELIMITER_NAMES.get(params.get("delimiter", ","), "comma")),
            ("Columns", mapped),
            ("Source", params.get("source", "")),
            ("Supporters matched by", MATCH_BY.get(params.get("match_by", "email"), "")),
            ("When no supporter matches", WHEN_UNKNOWN.get(params.get("unknown", "create"), "")),
            ("Default currency", f"{currency} ({CURRENCIES.get(currency, '')})"),
            (
                "Previously deleted supporters",
                "re-added" if params.get("readd_deleted") else "rejected (deleted on request)",
            ),
        ]

    def links_for_run(self, run: Run) -> list[tuple[str, str, str]]:
        """On an import's page: the transactions it created, on the Transactions page."""
        if run.job_type != self.key or not run.created:
            return []
        return [
            (
                "Its gifts and refunds:",
                "the transactions of this import",
                url_for("transactions.index", run=run.id),
            )
        ]

    def run(self, ctx: RunContext) -> None:
        storage, key = located(ctx.storage, ctx.params["path"])
        # with object storage, a copy downloaded for the run (again on a resume), deleted after
        with storage.local_copy(key) as path:
            params = {**ctx.params, "path": path}
            check_columns(len(params["mapping"]))
            check_bytes(path, params["encoding"])
            total = params.get("total_rows")
            if total is None:
                total = count_data_records(ctx, params)
            ctx.begin_processing(total)
            TransactionLoader(ctx, params, default_country=AccountSettings.postal_country()).run()
        write_report(ctx)

    def summary(self, run: Run) -> str:
        base = super().summary(run)
        if not run.rejected:
            return base
        lines = "line was" if run.rejected == 1 else "lines were"
        return f"{base} {run.rejected:,} {lines} rejected: see the rejected lines."


REMEMBERED_JOBS = 20  # the user's latest transaction imports whose mappings are remembered


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
