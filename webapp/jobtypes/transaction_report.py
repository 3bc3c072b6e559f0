"""Netdonor Transaction Report.

Transactions in a date range, with supporter fields and totals by currency, as a CSV.

The range is fixed (two days) or relative to the run, so that a schedule makes sense: the
previous calendar month (the common monthly report), the last 7 days (the 7 whole days before
the run's day), or this year to date (January 1 up to the run's day). "The run's day" is the
day, in the account time zone, of the occurrence the run is (a scheduled run that starts late
still reports its own month), or of when it was asked for: a Retry another day reports the same
days. Filters: campaign or appeal code, payment method (both case-insensitive), type, and a
minimum amount (a refund, being negative, is left out once a minimum is set).

Owner rules as for runs: a user's report covers the transactions of their own imports
(Transaction.owner_id), a super admin's every transaction — checked at each run with the
owner's role of that day.

The file: one row per transaction (date order), then, after an empty row, a block headed
"Totals by currency" with its own header (Currency, Transactions, Amount, Tax-deductible) and one
row per currency. A finance person opens it in a spreadsheet and finds the list and its totals
on one sheet; the empty row ends the list for a spreadsheet's filter or table, and a program
reading the list stops at the first empty row. Totals are kept in the checkpoint, so a retried
run's totals count every transaction once; they are also written to the run's log."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from contextlib import suppress
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, func, or_, select

from webapp.csvfiles import neutralise
from webapp.errors import JobError, RunStopped
from webapp.extensions import db
from webapp.jobtypes.base import JobType
from webapp.models.money import TRANSACTION_KINDS, Transaction
from webapp.models.people import Supporter
from webapp.models.users import User
from webapp.money.periods import relative_days
from webapp.money.transactions import visible_transactions
from webapp.rules.clock import format_day, to_local

if TYPE_CHECKING:
    from webapp.engine.context import RunContext

RESULT = "transactions.csv"
RANGES = {
    "previous_month": "The previous calendar month",
    "last_7_days": "The last 7 days (before the run's day)",
    "year_to_date": "This year to date",
    "fixed": "Fixed dates",
}
COLUMNS = (
    "Transaction id",
    "Date",
    "Amount",
    "Currency",
    "Tax-deductible",
    "Payment method",
    "Type",
    "Campaign or appeal",
    "Source",
    "External transaction id",
    "Supporter id",
    "Email",
    "First name",
    "Last name",
    "Address",
    "City",
    "State",
    "Postal code",
    "Country",
    "Supporter external id",
)
TOTALS_TITLE = "Totals by currency"
TOTALS_COLUMNS = ("Currency", "Transactions", "Amount", "Tax-deductible")


def date_range(params: dict[str, Any], moment: datetime, tz_name: str) -> tuple[date, date]:
    """The first and last day (both included) a report covers when run at `moment` (UTC)."""
    kind = params.get("range", "fixed")
    today = to_local(moment, tz_name).date()
    if kind == "previous_month":
        return relative_days(kind, moment, tz_name)
    if kind == "last_7_days":
        return today - timedelta(days=7), today - timedelta(days=1)
    if kind == "year_to_date":
        return today.replace(month=1, day=1), today
    try:
        return date.fromisoformat(params["start"]), date.fromisoformat(params["end"])
    except (KeyError, TypeError, ValueError):
        raise JobError("the report has no date range: edit the job and choose one") from None


def filters(params: dict[str, Any]) -> list[Any]:
    """The conditions of the report's filters."""
    where = []
    if params.get("appeal"):
        where.append(func.lower(Transaction.appeal) == params["appeal"].strip().lower())
    if params.get("payment_method"):
        where.append(func.lower(Transaction.payment_method) == params["payment_method"].strip().lower())
    if params.get("kind"):
        where.append(Transaction.kind == params["kind"])
    if params.get("min_amount") not in (None, ""):
        where.append(Transaction.amount >= Decimal(str(params["min_amount"])))
    return where


def _text(value: Any) -> str:
    return neutralise("" if value is None else str(value))


def _row(row: Any) -> list[Any]:
    """One transaction's line: amounts as plain numbers, text made formula-safe."""
    return [
        row.id,
        row.received_on.isoformat(),
        f"{row.amount:.2f}",
        row.currency,
        "" if row.tax_deductible is None else f"{row.tax_deductible:.2f}",
        _text(row.payment_method),
        TRANSACTION_KINDS.get(row.kind, row.kind),
        _text(row.appeal),
        _text(row.source),
        _text(row.external_id),
        row.supporter_id or "",
        _text(row.email),
        _text(row.first_name),
        _text(row.last_name),
        _text(row.address1),
        _text(row.city),
        _text(row.state),
        _text(row.zip),
        _text(row.country),
        _text(row.supporter_external_id),
    ]


def add_to_totals(totals: dict[str, list[str | int]], rows: Sequence[Any]) -> None:
    """Add rows to the running totals {currency: [count, amount, tax-deductible]} (amounts as
    strings, as the checkpoint keeps them)."""
    for row in rows:
        count, amount, deductible = totals.get(row.currency, [0, "0", "0"])
        totals[row.currency] = [
            int(count) + 1,
            str(Decimal(str(amount)) + row.amount),
            str(Decimal(str(deductible)) + (row.tax_deductible or 0)),
        ]


def totals_lines(totals: dict[str, list[str | int]]) -> list[list[str]]:
    """The totals block: its title, its header and a row per currency (alphabetical)."""
    lines = [[TOTALS_TITLE], list(TOTALS_COLUMNS)]
    for currency in sorted(totals):
        count, amount, deductible = totals[currency]
        lines.append([currency, str(count), f"{Decimal(str(amount)):.2f}", f"{Decimal(str(deductible)):.2f}"])
    return lines


class TransactionReport(JobType):
    """Transactions in a date range, with supporter fields and totals by currency, as a CSV."""

    key = "transaction_report"
    label = "Netdonor Transaction Report"
    description = "Transactions in a date range, with supporter fields and totals by currency, as a CSV."
    noun = "transactions"
    noun_past = "reported"
    result_kind = "CSV"
    new_endpoint, new_label = "reports.new", "New transaction report"
    edit_endpoint = "reports.edit"
    count_labels = {"created": "Transactions reported"}

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        kind = params.get("range", "fixed")
        if kind == "fixed":
            try:
                first, last = (format_day(date.fromisoformat(params[k])) for k in ("start", "end"))
                days = f"{first} – {last}"
            except (KeyError, TypeError, ValueError):
                days = "No date range chosen"
        else:
            days = f"{RANGES.get(kind, kind)}, counted from each run's day in the account time zone"
        chosen = [
            ("Campaign or appeal", params.get("appeal")),
            ("Payment method", params.get("payment_method")),
            ("Type", TRANSACTION_KINDS.get(params.get("kind") or "")),
            ("Minimum amount", params.get("min_amount")),
        ]
        shown = "; ".join(f"{label}: {value}" for label, value in chosen if value not in (None, ""))
        return [("Transactions", days), ("Filters", shown or "None: every transaction in the range")]

    def run(self, ctx: RunContext) -> None:
        owner = db.session.get(User, ctx.run.owner_id)
        if owner is None:
            raise JobError("the job's owner no longer exists")
        tz_name = ctx.config["TIMEZONE"]
        first, last = date_range(ctx.params, ctx.run.planned_for or ctx.run.created_at, tz_name)
        where = [Transaction.received_on >= first, Transaction.received_on <= last, *filters(ctx.params)]
        visible = visible_transactions(owner)  # the owner's imports', every one for a super admin
        point = ctx.checkpoint
        if not point:
            ctx.log(f"Transactions of {first.isoformat()} to {last.isoformat()} (days in {tz_name}).")
        total = db.session.execute(
            select(func.count()).select_from(visible.where(*where).subquery())
        ).scalar_one()
        ctx.begin_processing(total)
        partial = ctx.scratch_path(RESULT)
        if point.get("rows") and not self._partial_at_hand(ctx, partial, point["bytes"]):
            ctx.log(f"The partial file of {point['rows']:,} rows is not here: the report starts again.")
            point, ctx.run.checked, ctx.run.created = {}, 0, 0
        try:
            totals = self._write(ctx, partial, visible.where(*where), point)
        except RunStopped:
            with suppress(FileNotFoundError):
                os.remove(partial)  # a stopped report leaves no half file behind
            ctx.log("The partial report file was discarded.")
            raise
        except BaseException:
            if os.path.exists(partial):  # for the retry, on whichever worker it runs
                with suppress(OSError):
                    ctx.storage.store(ctx.result_key(f"{RESULT}.part"), partial)
            raise
        for currency, count, amount, deductible in totals_lines(totals)[2:]:
            ctx.log(
                f"Total {currency}: {amount} in {count} transactions "
                f"({deductible} tax-deductible, where the file gave it)."
            )
        ctx.keep_result(RESULT, f"{ctx.run.job_name} - transactions #{ctx.run.number}.csv")

    def _partial_at_hand(self, ctx: RunContext, partial: str, size: int) -> bool:
        """Whether the partial file to continue is here, `size` bytes at least."""
        with suppress(FileNotFoundError):
            ctx.storage.fetch(ctx.result_key(f"{RESULT}.part"), partial)
        return os.path.exists(partial) and os.path.getsize(partial) >= size

    def _write(
        self, ctx: RunContext, partial: str, chosen: Select, point: dict[str, Any]
    ) -> dict[str, list[str | int]]:
        """Stream the transactions into the file in keyset batches (date, id), then the totals."""
        batch_size = ctx.config["EXPORT_BATCH_SIZE"]
        done = point.get("rows", 0)
        totals = {currency: list(values) for currency, values in point.get("totals", {}).items()}
        after = (date.fromisoformat(point["last_date"]), point["last_id"]) if done else None
        query = (
            chosen.with_only_columns(
                Transaction.id,
                Transaction.received_on,
                Transaction.amount,
                Transaction.currency,
                Transaction.tax_deductible,
                Transaction.payment_method,
                Transaction.kind,
                Transaction.appeal,
                Transaction.source,
                Transaction.external_id,
                Transaction.supporter_id,
                Supporter.email,
                Supporter.first_name,
                Supporter.last_name,
                Supporter.address1,
                Supporter.city,
                Supporter.state,
                Supporter.zip,
                Supporter.country,
                Supporter.external_id.label("supporter_external_id"),
            )
            .outerjoin(Supporter, Supporter.id == Transaction.supporter_id)
            .order_by(Transaction.received_on, Transaction.id)
            .limit(batch_size)
        )
        with open(partial, "r+" if done else "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            if done:
                out.seek(point["bytes"])
                out.truncate()
                ctx.log(f"Resuming after {done:,} rows already written.")
            else:
                if ctx.params.get("bom"):
                    out.write("\ufeff")  # Excel reads the file as UTF-8 only when it starts with one
                writer.writerow(COLUMNS)
            while True:
                batch = query
                if after is not None:
                    day, last_id = after
                    batch = query.where(
                        or_(
                            Transaction.received_on > day,
                            and_(Transaction.received_on == day, Transaction.id > last_id),
                        )
                    )
                rows = db.session.execute(batch).all()
                if not rows:
                    break
                writer.writerows(_row(row) for row in rows)
                out.flush()
                add_to_totals(totals, rows)
                after, done = (rows[-1].received_on, rows[-1].id), done + len(rows)
                ctx.commit_batch(
                    done=done,
                    checked=len(rows),
                    created=len(rows),
                    checkpoint={
                        "rows": done,
                        "bytes": out.tell(),
                        "last_date": after[0].isoformat(),
                        "last_id": after[1],
                        "totals": totals,
                    },
                )
            writer.writerow([])
            writer.writerows(totals_lines(totals))
        return totals
