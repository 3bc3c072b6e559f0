"""Annual Receipt Generator: Annual Receipting: one consolidated PDF receipt per supporter per tax year."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.jobtypes.batch_receipts import (
    ReceiptJobType,
    deliver,
    owner_may_issue,
    template_ready,
)
from webapp.models.money import Receipt
from webapp.money import issuing
from webapp.rules.clock import plural, to_local

if TYPE_CHECKING:
    from webapp.engine.context import RunContext


def tax_year(params: dict[str, Any], ctx: RunContext) -> int:
    """The calendar year a run receipts: the job's fixed year, or the year before the run's."""
    if params.get("year_choice") == "previous":
        moment = ctx.run.planned_for or ctx.run.created_at
        return to_local(moment, ctx.config["TIMEZONE"]).year - 1
    return int(params["year"])


class AnnualReceipts(ReceiptJobType):
    """Annual Receipting: one consolidated PDF receipt per supporter per tax year.

    One receipt per supporter and currency, listing the year's eligible gifts that are not on
    a live single receipt. Run again for the same year, it issues a replacement ("Replaces
    receipt N") only where the gifts or the total changed, and the old receipt becomes
    "replaced" (its number voided); unchanged supporters get nothing new."""

    key = "annual_receipts"
    label = "Annual Receipt Generator"
    description = "Annual Receipting: one consolidated PDF receipt per supporter per tax year."
    noun = "supporters"
    noun_past = "receipted"

    admins_only = True
    result_kind = "ZIP"
    new_endpoint, new_label = "receipts.new_annual", "New annual receipts"
    edit_endpoint = "receipts.edit_annual"
    count_labels = {
        "checked": "Supporters checked",
        "created": "Receipts issued",
        "skipped": "Replacements",
        "unchanged": "Unchanged",
        "updated": "Emailed",
        "rejected": "Not emailed",
    }

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        year = (
            "The year before each run" if params.get("year_choice") == "previous" else str(params.get("year"))
        )
        return [("Tax year", year), ("Emailed to donors", "Yes" if params.get("email") else "No")]

    def run(self, ctx: RunContext) -> None:
        owner_may_issue(ctx)
        template_ready()
        year = tax_year(ctx.params, ctx)
        ctx.log(f"Annual receipts for {year}.")
        point = ctx.checkpoint
        after, done = point.get("after", 0), point.get("done", 0)
        run = ctx.run
        issued = db.session.execute(select(func.count()).where(Receipt.run_id == run.id)).scalar_one()
        run.created = issued  # (recounted: a killed batch's counts were never committed)
        ctx.begin_processing(done + issuing.count_annual_supporters(year, after))
        batch_size = ctx.config["EXPORT_BATCH_SIZE"]
        while True:
            outcome = issuing.issue_annual_batch(year, run.id, after, batch_size)
            if not outcome.supporters:
                break
            after, done = outcome.last_supporter_id, done + outcome.supporters
            if outcome.withdrawn:
                ctx.log(
                    f"{plural(outcome.withdrawn, 'receipt')} voided: their donors' gifts of {year} "
                    "were refunded as much as they gave."
                )
            ctx.commit_batch(
                done=done,
                checkpoint={"after": after, "done": done},
                checked=outcome.supporters,
                created=outcome.issued,
                skipped=outcome.replaced,
                unchanged=outcome.unchanged,
            )
        db.session.commit()
        deliver(ctx)
