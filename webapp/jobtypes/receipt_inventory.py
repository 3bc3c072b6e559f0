"""Receipt Inventory Generator: Receipt Inventory Log.

every receipt number issued, voided or replaced in a period, as a CSV."""

from __future__ import annotations

import csv
import os
from contextlib import suppress
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from webapp.csvfiles import neutralise
from webapp.extensions import db
from webapp.jobtypes.base import JobType
from webapp.jobtypes.batch_receipts import owner_may_issue
from webapp.models.money import RECEIPT_STATUSES, Receipt
from webapp.models.runs import Run
from webapp.money.periods import days_of, describe_period
from webapp.rules.clock import local_midnight_utc, to_local

if TYPE_CHECKING:
    from webapp.engine.context import RunContext

RESULT = "receipt-inventory.csv"
COLUMNS = (
    "Number",
    "Status",
    "Kind",
    "Issued at",
    "Voided at",
    "Void reason",
    "Supporter email",
    "Supporter name",
    "Amount",
    "Currency",
    "Tax year",
    "Issuing run",
    "Issuing run id",
    "Replaces receipt",
    "Replaced by receipt",
)


class ReceiptInventory(JobType):
    """Receipt Inventory Log: every receipt number issued, voided or replaced in a period, as a CSV.

    A receipt is listed once, with its status today, when it was issued or voided (or replaced)
    within the period: whole days in the account time zone; times are written in that zone with
    their UTC offset. Formula-safe. A retried run writes the file again."""

    key = "receipt_inventory"
    label = "Receipt Inventory Generator"
    description = (
        "Receipt Inventory Log: every receipt number issued, voided or replaced in a period, as a CSV."
    )
    noun = "receipts"
    noun_past = "listed"
    admins_only = True
    result_kind = "CSV"
    new_endpoint, new_label = "receipts.new_inventory", "New receipt inventory"
    edit_endpoint = "receipts.edit_inventory"
    count_labels = {"created": "Receipts listed"}

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        return [("Receipts issued or voided", f"{describe_period(params)} (days in the account time zone)")]

    def run(self, ctx: RunContext) -> None:
        owner_may_issue(ctx)
        tz_name = ctx.config["TIMEZONE"]
        first, last = days_of(ctx.params, ctx.run.planned_for or ctx.run.created_at, tz_name)
        ctx.log(f"Receipts issued or voided {first.isoformat()} to {last.isoformat()} ({tz_name}).")
        start = local_midnight_utc(first.isoformat(), tz_name)
        end = local_midnight_utc((last + timedelta(days=1)).isoformat(), tz_name)
        in_period = or_(
            Receipt.issued_at.between(start, end - timedelta(microseconds=1)),
            Receipt.voided_at.between(start, end - timedelta(microseconds=1)),
        )
        total = db.session.execute(select(func.count()).select_from(Receipt).where(in_period)).scalar_one()
        ctx.begin_processing(total)
        ctx.run.created = 0
        partial = ctx.scratch_path(RESULT)
        try:
            self._write(ctx, partial, in_period, tz_name)
        except BaseException:
            with suppress(OSError):
                os.remove(partial)
            raise
        ctx.keep_result(RESULT, f"{ctx.run.job_name} - receipt inventory #{ctx.run.number}.csv")

    def _write(self, ctx: RunContext, partial: str, in_period: Any, tz_name: str) -> None:
        replaced, replacement = aliased(Receipt), aliased(Receipt)
        query = (
            select(
                Receipt,
                Run.number.label("run_number"),
                Run.job_name.label("run_job_name"),
                replaced.number.label("replaces"),
                replacement.number.label("replaced_by"),
            )
            .outerjoin(Run, Run.id == Receipt.run_id)
            .outerjoin(replaced, replaced.id == Receipt.replaces_id)
            .outerjoin(replacement, replacement.replaces_id == Receipt.id)
            .where(in_period)
            .order_by(Receipt.number)
            .limit(ctx.config["EXPORT_BATCH_SIZE"])
        )

        def issuing_run(row: Any) -> str:
            """“Q1 receipts” run #3: the run an auditor can find in History."""
            return neutralise(f"“{row.run_job_name}” run #{row.run_number}") if row.run_number else ""

        def when(moment: Any) -> str:
            return to_local(moment, tz_name).isoformat(timespec="seconds") if moment else ""

        last, done = 0, 0
        with open(partial, "w", newline="", encoding="utf-8") as out:
            out.write("\ufeff")
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            while rows := db.session.execute(query.where(Receipt.number > last)).all():
                for row in rows:
                    receipt = row[0]
                    writer.writerow(
                        [
                            receipt.number,
                            RECEIPT_STATUSES.get(receipt.status, receipt.status),
                            receipt.kind.title(),
                            when(receipt.issued_at),
                            when(receipt.voided_at),
                            neutralise(receipt.void_reason or ""),
                            neutralise(receipt.donor_email or ""),
                            neutralise(receipt.donor_name),
                            f"{receipt.amount:.2f}",
                            receipt.currency,
                            receipt.tax_year or "",
                            issuing_run(row),
                            receipt.run_id or "",
                            row.replaces or "",
                            row.replaced_by or "",
                        ]
                    )
                last, done = rows[-1][0].number, done + len(rows)
                for row in rows:  # flat memory: the written receipts leave the session
                    db.session.expunge(row[0])
                ctx.commit_batch(done=done, checked=len(rows), created=len(rows))
