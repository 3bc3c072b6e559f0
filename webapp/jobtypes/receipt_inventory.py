"""Receipt Inventory Generator: Receipt Inventory Log.

every receipt number issued, voided or replaced in a period, as a CSV."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webapp.jobtypes.base import JobType

if TYPE_CHECKING:
    from webapp.engine.context import RunContext


class ReceiptInventory(JobType):
    """Receipt Inventory Log: every receipt number issued, voided or replaced in a period, as a CSV."""

    key = "receipt_inventory"
    label = "Receipt Inventory Generator"
    description = (
        "Receipt Inventory Log: every receipt number issued, voided or replaced in a period, as a CSV."
    )

    def run(self, ctx: RunContext) -> None:
        raise NotImplementedError("Receipt Inventory Generator is being built")
