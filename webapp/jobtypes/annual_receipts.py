"""Annual Receipt Generator: Annual Receipting: one consolidated PDF receipt per supporter per tax year."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webapp.jobtypes.base import JobType

if TYPE_CHECKING:
    from webapp.engine.context import RunContext


class AnnualReceipts(JobType):
    """Annual Receipting: one consolidated PDF receipt per supporter per tax year."""

    key = "annual_receipts"
    label = "Annual Receipt Generator"
    description = "Annual Receipting: one consolidated PDF receipt per supporter per tax year."

    def run(self, ctx: RunContext) -> None:
        raise NotImplementedError("Annual Receipt Generator is being built")
