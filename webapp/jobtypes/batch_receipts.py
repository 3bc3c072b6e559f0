"""Batch Receipt Generator: Single Transaction Receipts: one PDF tax receipt per gift."""

from __future__ import annotations

import os
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from webapp.errors import JobError
from webapp.extensions import db
from webapp.jobtypes.base import JobType
from webapp.models.money import Receipt, ReceiptTemplate
from webapp.models.runs import Run
from webapp.models.users import User
from webapp.money import issuing
from webapp.money.delivery import Emailer, write_zip
from webapp.money.pdf import unprintable
from webapp.money.periods import days_of, describe_period
from webapp.rules.clock import plural

if TYPE_CHECKING:
    from webapp.engine.context import RunContext

RESULT = "receipts.zip"
IMPORT_TYPE = "transaction_import"  # the runs whose gifts a batch may receipt


def owner_may_issue(ctx: RunContext) -> User:
    """The job's owner, if still an admin (a receipt is the organisation's document)."""
    owner = db.session.get(User, ctx.run.owner_id)
    if owner is None or not owner.is_admin:
        raise JobError("only an admin may issue receipts, and the job's owner is no longer one")
    return owner


def template_ready() -> None:
    """Refuse to issue receipts before an admin has set the receipt template."""
    template = db.session.get(ReceiptTemplate, 1)
    if template is None or not template.organisation_name:
        raise JobError("the receipt template has no organisation name yet: set it in Receipts settings first")


def deliver(ctx: RunContext) -> None:
    """Write the ZIP of every receipt this run issued (emailing each not yet emailed, if the
    job asks) and keep it as the run's result."""
    issued = db.session.execute(select(func.count()).where(Receipt.run_id == ctx.run.id)).scalar_one()
    ctx.log(
        f"Writing the PDFs of {plural(issued, 'receipt')}"
        + (" and emailing them." if ctx.params.get("email") else ".")
    )
    ctx.run.progress_total, ctx.run.progress_done = issued, 0
    # emailed (by an earlier attempt too) / not emailed, counted again by this pass
    ctx.run.updated = db.session.execute(
        select(func.count()).where(Receipt.run_id == ctx.run.id, Receipt.emailed_at.is_not(None))
    ).scalar_one()
    ctx.run.rejected = 0
    db.session.commit()
    partial = ctx.scratch_path(RESULT)
    emailer = Emailer(ctx.config, ctx.storage) if ctx.params.get("email") else None

    def progress(done: int, emailed: int, not_sent: int) -> None:
        ctx.commit_batch(done=done, updated=emailed, rejected=not_sent)

    try:
        write_zip(
            partial,
            ctx.run.id,
            email=emailer,
            batch_size=ctx.config["EXPORT_BATCH_SIZE"],
            tz_name=ctx.config["TIMEZONE"],
            progress=progress,
        )
    except BaseException:
        with suppress(OSError):
            os.remove(partial)  # the retry writes the whole file again from the stored receipts
        raise
    finally:
        if emailer is not None:
            emailer.close()
    _say_unprintable(ctx)
    if ctx.params.get("email"):
        emailed = db.session.execute(
            select(func.count()).where(Receipt.run_id == ctx.run.id, Receipt.emailed_at.is_not(None))
        ).scalar_one()
        ctx.log(f"{emailed:,} of {issued:,} receipts have been emailed to their donors.")
    ctx.keep_result(RESULT, f"{ctx.run.job_name} - receipts #{ctx.run.number}.zip")


SHOWN_UNPRINTABLE = 10  # receipts named in the log line, at most


def _say_unprintable(ctx: RunContext) -> None:
    """Log the receipts whose donor name or address has characters the receipt fonts lack (their
    PDFs leave them out: a Chinese name prints as nothing), so that staff see it before a donor
    does."""
    rows = db.session.execute(
        select(Receipt.number, Receipt.donor_name, Receipt.donor_address)
        .where(Receipt.run_id == ctx.run.id)
        .order_by(Receipt.number)
    )
    blank = [(number, name) for number, name, address in rows if unprintable(f"{name}{address}")]
    if not blank:
        return
    shown = ", ".join(f"{number} ({name})" for number, name in blank[:SHOWN_UNPRINTABLE])
    more = f" and {len(blank) - SHOWN_UNPRINTABLE:,} more" if len(blank) > SHOWN_UNPRINTABLE else ""
    ctx.log(
        f"Warning: {plural(len(blank), 'receipt')} with characters in the donor's name or address "
        f"that the receipt font cannot print (the PDF leaves them out): receipt {shown}{more}.",
        level="warning",
    )


class ReceiptJobType(JobType):
    """What the two receipt generators say alike of a run: its receipts are numbered first (each
    batch committed), then their PDFs are written and emailed, so its progress (the PDFs) says
    too little."""

    def done_so_far(self, run: Run) -> str:
        emailed = f", {run.updated:,} of them emailed" if run.updated else ""
        issued = "was" if run.created == 1 else "were"
        return f"{plural(run.created, 'receipt')} {issued} issued (numbered){emailed}"

    def stop_question(self, run: Run) -> str:
        """The receipts issued stay issued."""
        return f"Stop “{run.job_name}” at the next batch? {self.done_so_far(run)}, and they stay so."

    def counts(self, run: Run) -> list[tuple[str, int]]:
        """Emailed and Not emailed only when its job emails receipts."""
        emails = bool(run.job and run.job.params.get("email")) or bool(run.updated or run.rejected)
        return [
            (label, getattr(run, name))
            for name, label in self.count_labels.items()
            if emails or name not in ("updated", "rejected")
        ]


class BatchReceipts(ReceiptJobType):
    """Single Transaction Receipts: one PDF tax receipt per gift.

    Each batch locks the receipt counter, picks the eligible gifts not yet receipted, inserts
    their receipts with the next numbers and commits with the run's progress, so a stopped,
    failed or parallel run never skips, reuses or doubles a number. Then the PDFs of every
    receipt the run issued go into a ZIP with an index, and are emailed if asked."""

    key = "batch_receipts"
    label = "Batch Receipt Generator"
    description = "Single Transaction Receipts: one PDF tax receipt per gift."
    noun = "gifts"
    noun_past = "receipted"

    admins_only = True
    result_kind = "ZIP"
    new_endpoint, new_label = "receipts.new_batch", "New batch receipts"
    edit_endpoint = "receipts.edit_batch"
    count_labels = {"created": "Receipts issued", "updated": "Emailed", "rejected": "Not emailed"}

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        if params.get("source") == "run":
            run = db.session.get(Run, params.get("import_run_id") or 0)
            which = (
                f"“{run.job_name}” run #{run.number}" if run else f"Deleted run {params.get('import_run_id')}"
            )
            gifts = ("Gifts of the import", which)
        else:
            gifts = ("Gifts received", describe_period(params))
        return [gifts, ("Emailed to donors", "Yes" if params.get("email") else "No")]

    def _conditions(self, ctx: RunContext) -> list[Any]:
        params = ctx.params
        if params.get("source") == "run":
            run_id = params.get("import_run_id")
            if db.session.get(Run, run_id or 0) is None:
                raise JobError(f"the import run {run_id} no longer exists")
            return issuing.single_conditions(run_id=run_id)
        first, last = days_of(params, ctx.run.planned_for or ctx.run.created_at, ctx.config["TIMEZONE"])
        ctx.log(f"Gifts received {first.isoformat()} to {last.isoformat()}.")
        return issuing.single_conditions(start=first, end=last)

    def run(self, ctx: RunContext) -> None:
        owner_may_issue(ctx)
        template_ready()
        conditions = self._conditions(ctx)
        already = db.session.execute(select(func.count()).where(Receipt.run_id == ctx.run.id)).scalar_one()
        if already:
            ctx.log(f"{already:,} receipts were issued by this run before; it goes on with the rest.")
        ctx.run.created = already  # (recounted: a killed batch's count was never committed)
        ctx.begin_processing(already + issuing.count_gifts(conditions))
        done = already
        batch_size = ctx.config["EXPORT_BATCH_SIZE"]
        while issued := issuing.issue_single_batch(conditions, ctx.run.id, batch_size):
            done += issued
            ctx.commit_batch(done=done, checked=issued, created=issued)
        db.session.commit()  # (the last, empty batch's lock)
        deliver(ctx)
