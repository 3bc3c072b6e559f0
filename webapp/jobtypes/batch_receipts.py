"""Batch Receipt Generator: Single Transaction Receipts: one PDF tax receipt per gift."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webapp.jobtypes.base import JobType

if TYPE_CHECKING:
    from webapp.engine.context import RunContext


class BatchReceipts(JobType):
    """Single Transaction Receipts: one PDF tax receipt per gift."""

    key = "batch_receipts"
    label = "Batch Receipt Generator"
    description = "Single Transaction Receipts: one PDF tax receipt per gift."

    def run(self, ctx: RunContext) -> None:
        raise NotImplementedError("Batch Receipt Generator is being built")
