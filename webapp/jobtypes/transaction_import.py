"""Transaction Data Import.

A CSV of gifts matched to supporters by email or external id; bad lines rejected with their reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webapp.jobtypes.base import JobType

if TYPE_CHECKING:
    from webapp.engine.context import RunContext


class TransactionImport(JobType):
    """A CSV of gifts matched to supporters by email or external id; bad lines rejected with their reason."""

    key = "transaction_import"
    label = "Transaction Data Import"
    description = (
        "A CSV of gifts matched to supporters by email or external id; bad lines rejected with their reason."
    )

    def run(self, ctx: RunContext) -> None:
        raise NotImplementedError("Transaction Data Import is being built")
