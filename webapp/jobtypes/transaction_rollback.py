"""Rollback Transaction Data Import: undo one completed (or stopped) dashboard transaction import.

What a rollback does, from what the import recorded (models/money.py):
- every transaction the import created (money_transaction.run_id) is deleted;
- a supporter the import created is deleted when nothing refers to it now: no transaction of
  another import, no receipt, no campaign recipient row, and no later import as its last one —
  Supporter.last_run_id, which every import of supporters or transactions writes on what it
  creates or changes, is none, this import's run or a rolled-back import's. Otherwise it stays:
  "kept (changed since)";
- each field the import changed goes back to its `before` value where it still holds the
  import's `after` value. A field that holds anything else was changed since: it keeps today's
  value (a later edit wins) and its supporter counts as "kept (changed since)", its other fields
  restored all the same. A field already back at `before` is left as it is.

Refused, with the reason (on the preview, and again as the run starts): anything but a
transaction import that completed or was stopped; an import made through the API ("only
dashboard imports can be rolled back"); an import already rolled back (or being rolled back);
an import with a transaction on a receipt that is not voided (they are listed: a receipted gift
must be voided on its receipt first).

The claim: ImportRollback (UNIQUE import_run_id) is inserted in the transaction that creates the
rollback's run, so two rollbacks of one import can never both run. A rollback run that is
cancelled before it starts, or refused as it starts (nothing done), frees its claim: the import
can be rolled back again. A rollback that failed or was stopped part-way keeps it: Retry (a
failed run) continues, or a new rollback takes the claim over from the ended run and finishes
the rest (every step is idempotent: a deleted row is gone, a restored field holds `before`)."""

from __future__ import annotations

import csv
import os
from contextlib import suppress
from typing import TYPE_CHECKING, Any, ClassVar

from flask import url_for
from sqlalchemy import delete, select

from webapp.csvfiles import neutralise
from webapp.errors import JobError, RunStopped
from webapp.extensions import db
from webapp.jobtypes.base import JobType
from webapp.models.money import SupporterChange, Transaction
from webapp.models.people import Supporter
from webapp.models.runs import Run
from webapp.money.rollback import (
    ENDED_UNDONE,
    IMPORT_TYPE,
    KEPT,
    count_of,
    deletable,
    free_claim,
    hold_claim,
    import_refusal,
    receipted_refusal,
    refusal,
    restore,
    rollback_of,
)
from webapp.rules.clock import plural
from webapp.rules.states import RunState

if TYPE_CHECKING:
    from webapp.engine.context import RunContext

RESULT = "rollback.csv"
COLUMNS = ("Record", "Id", "Email or external id", "Action", "Details")


class ResultFile:
    """The result CSV, written on this machine as the run goes and resumed from the checkpoint's
    byte offset; kept in storage for a retry elsewhere, and as the result when the run ends."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.partial = ctx.scratch_path(RESULT)

    def open(self) -> tuple[Any, Any]:
        """The file and a csv writer, positioned after what the checkpoint counts."""
        ctx, at = self.ctx, self.ctx.checkpoint.get("bytes")
        if at:
            with suppress(FileNotFoundError):
                ctx.storage.fetch(ctx.result_key(f"{RESULT}.part"), self.partial)
            if os.path.exists(self.partial) and os.path.getsize(self.partial) >= at:
                out = open(self.partial, "r+", newline="", encoding="utf-8")
                out.seek(at)
                out.truncate()
                return out, csv.writer(out)
            ctx.log("The result file of the batches before is not here: it lists what is done from here on.")
        out = open(self.partial, "w", newline="", encoding="utf-8")
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        return out, writer

    def keep(self) -> None:
        """The file as the run's result."""
        ctx = self.ctx
        ctx.keep_result(RESULT, f"{ctx.run.job_name} #{ctx.run.number}.csv")

    def keep_partial(self) -> None:
        """The partial file in storage, for a retry on whichever worker takes it."""
        if os.path.exists(self.partial):
            with suppress(OSError):
                self.ctx.storage.store(self.ctx.result_key(f"{RESULT}.part"), self.partial)


def _money(tx: Any) -> str:
    """A deleted transaction in the result file: amount, date and supporter."""
    supporter = tx.supporter_id or "(deleted)"
    return f"{tx.amount} {tx.currency} on {tx.received_on.isoformat()}, supporter {supporter}"


class TransactionRollback(JobType):
    """Undo one transaction import: its transactions deleted, its supporters deleted or restored."""

    key = "transaction_rollback"
    label = "Rollback Transaction Data Import"
    description = (
        "Undo one completed or stopped dashboard transaction import: delete its transactions and the "
        "supporters it created, and restore the supporter fields it changed."
    )
    noun = "records"
    noun_past = "rolled back"
    result_kind = "CSV"
    runs_on_request = False  # its confirmation on the import's run page starts its one run
    can_be_step = False
    listed_as_job = False
    page_endpoint = "rollbacks.job"
    count_labels: ClassVar[dict[str, str]] = {
        "checked": "Checked",
        "created": "Transactions deleted",
        "skipped": "Supporters deleted",
        "updated": "Supporters restored",
        "unchanged": "Supporters kept (changed since)",
    }

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        run = db.session.get(Run, params.get("import_run_id") or 0)
        which = f"“{run.job_name}” {run.label}" if run is not None else "a deleted run"
        return [("Rolls back", which)]

    def summary(self, run: Run) -> str:
        return (
            f"Completed: {plural(run.created, 'transaction')} deleted, {plural(run.skipped, 'supporter')} "
            f"deleted, {plural(run.updated, 'supporter')} restored, {plural(run.unchanged, 'supporter')} "
            f"{KEPT}."
        )

    def links_for_run(self, run: Run) -> list[tuple[str, str, str]]:
        """On an import's page: its rollback run, or "Roll back this import…"; on a rollback's
        page: the import it rolls back."""
        if run.job_type == self.key and run.job is not None:
            undone = db.session.get(Run, run.job.params.get("import_run_id") or 0)
            if undone is not None:
                return [
                    (
                        "Rolls back",
                        f"“{undone.job_name}” {undone.label}",
                        url_for("runs.detail", run_id=undone.id),
                    )
                ]
            return []
        if run.job_type != IMPORT_TYPE or import_refusal(run) is not None:
            return []
        start = ("", "Roll back this import…", url_for("rollbacks.preview_page", run_id=run.id))
        holder = rollback_of(run.id)
        if holder is None:
            return [start]
        to_holder = url_for("runs.detail", run_id=holder.id)
        if holder.state is RunState.COMPLETED:
            return [("This import was rolled back:", f"rollback {holder.label}", to_holder)]
        if holder.state in ENDED_UNDONE:
            ended = f"A rollback of this import ended {holder.state.value} before it finished:"
            return [(ended, f"rollback {holder.label}", to_holder), start]
        return [("This import is being rolled back:", f"rollback {holder.label}", to_holder)]

    def after_cancel(self, run: Run, phase: str) -> None:
        if phase in ("before_start", "extraction") and not run.progress_done:
            free_claim(run.id)  # nothing was done: the import may be rolled back again

    def run(self, ctx: RunContext) -> None:
        import_run = db.session.get(Run, ctx.params.get("import_run_id") or 0)
        begun = bool(ctx.checkpoint)
        problem = refusal(import_run, ctx.run.id)
        if problem is not None:
            if not begun:
                free_claim(ctx.run.id)
                db.session.commit()
            raise JobError(f"Nothing {'more ' if begun else ''}was rolled back: {problem.reason}")
        assert import_run is not None
        hold_claim(import_run.id, ctx.run.id)
        if not begun:
            total = count_of(select(Transaction.id).where(Transaction.run_id == import_run.id)) + count_of(
                select(SupporterChange.id).where(SupporterChange.run_id == import_run.id)
            )
            ctx.begin_processing(total)
            ctx.log(f"Rolling back “{import_run.job_name}” {import_run.label} (run id {import_run.id}).")
        else:
            ctx.begin_processing(ctx.run.progress_total)
        result = ResultFile(ctx)
        out, writer = result.open()
        try:
            with out:
                self._transactions(ctx, import_run.id, out, writer)
                self._supporters(ctx, import_run.id, out, writer)
        except RunStopped:
            result.keep()  # what was done before the stop is listed all the same
            db.session.commit()
            raise
        except BaseException:
            result.keep_partial()
            raise
        result.keep()

    def _transactions(self, ctx: RunContext, import_run_id: int, out: Any, writer: Any) -> None:
        """Delete the import's transactions in batches (none left: nothing to do on a retry)."""
        point = ctx.checkpoint
        if point.get("phase") == "supporters":
            return
        size = ctx.config["DELETE_BATCH_SIZE"]
        done = point.get("done", 0)
        columns = (Transaction.id, Transaction.external_id, Transaction.amount, Transaction.currency)
        more = (Transaction.received_on, Transaction.supporter_id)
        while rows := db.session.execute(
            select(*columns, *more)
            .where(Transaction.run_id == import_run_id)
            .order_by(Transaction.id)
            .limit(size)
        ).all():
            ids = [row.id for row in rows]
            problem = receipted_refusal(import_run_id, ids)  # receipted since the run began
            if problem is not None:
                raise JobError(f"Stopped before this batch: {problem.reason}")
            db.session.execute(
                delete(Transaction)
                .where(Transaction.id.in_(ids))
                .execution_options(synchronize_session=False)
            )
            writer.writerows(
                ["transaction", row.id, neutralise(row.external_id or ""), "deleted", _money(row)]
                for row in rows
            )
            out.flush()
            done += len(rows)
            ctx.commit_batch(
                done=done,
                checked=len(rows),
                created=len(rows),
                checkpoint={"phase": "transactions", "done": done, "bytes": out.tell()},
            )

    def _supporters(self, ctx: RunContext, import_run_id: int, out: Any, writer: Any) -> None:
        """Delete or restore the supporters the import created or changed, in batches of its
        change records (keyset by their id)."""
        point = ctx.checkpoint
        last_id = point.get("last_change_id", 0) if point.get("phase") == "supporters" else 0
        done = point.get("done", 0)
        size = ctx.config["DELETE_BATCH_SIZE"]
        free = deletable(import_run_id)
        while changes := list(
            db.session.execute(
                select(SupporterChange)
                .where(SupporterChange.run_id == import_run_id, SupporterChange.id > last_id)
                .order_by(SupporterChange.id)
                .limit(size)
            ).scalars()
        ):
            ids = [change.supporter_id for change in changes]
            supporters = {
                s.id: s for s in db.session.execute(select(Supporter).where(Supporter.id.in_(ids))).scalars()
            }
            created_ids = [change.supporter_id for change in changes if change.created]
            removable = (
                set(
                    db.session.execute(
                        select(Supporter.id).where(Supporter.id.in_(created_ids), *free)
                    ).scalars()
                )
                if created_ids
                else set()
            )
            counts = {"deleted": 0, "restored": 0, "kept": 0}
            rows = []
            for change in changes:
                supporter = supporters.get(change.supporter_id)
                outcome, details = self._one(change, supporter, removable, counts)
                email = supporter.email if supporter is not None else ""
                rows.append(["supporter", change.supporter_id, neutralise(email), outcome, details])
            if removable:
                db.session.execute(
                    delete(Supporter)
                    .where(Supporter.id.in_(removable))
                    .execution_options(synchronize_session=False)
                )
            writer.writerows(rows)
            out.flush()
            last_id, done = changes[-1].id, done + len(changes)
            ctx.commit_batch(
                done=done,
                checked=len(changes),
                skipped=counts["deleted"],
                updated=counts["restored"],
                unchanged=counts["kept"],
                checkpoint={
                    "phase": "supporters",
                    "last_change_id": last_id,
                    "done": done,
                    "bytes": out.tell(),
                },
            )

    def _one(
        self,
        change: SupporterChange,
        supporter: Supporter | None,
        removable: set[int],
        counts: dict[str, int],
    ) -> tuple[str, str]:
        """Roll back one supporter (deleted with its batch, or its fields restored): (action, details)."""
        if supporter is None:
            return "already gone", "deleted since the import"
        if change.created:
            if supporter.id in removable:
                counts["deleted"] += 1
                return "deleted", "created by the import"
            counts["kept"] += 1
            return (
                KEPT,
                "created by the import; changed or used since (a later import, gift, receipt or send)",
            )
        restored, kept = restore(supporter, change)
        if kept:
            counts["kept"] += 1
            also = f"; restored {', '.join(restored)}" if restored else ""
            return KEPT, f"{', '.join(kept)} changed since{also}"
        counts["restored"] += 1
        return "restored", ", ".join(restored) if restored else "already as before the import"
