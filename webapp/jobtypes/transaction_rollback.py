"""Rollback Transaction Data Import: Undo one completed or stopped dashboard transaction import."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webapp.jobtypes.base import JobType

if TYPE_CHECKING:
    from webapp.engine.context import RunContext


class TransactionRollback(JobType):
    """Undo one completed or stopped dashboard transaction import."""

    key = "transaction_rollback"
    label = "Rollback Transaction Data Import"
    description = "Undo one completed or stopped dashboard transaction import."

    def run(self, ctx: RunContext) -> None:
        raise NotImplementedError("Rollback Transaction Data Import is being built")
