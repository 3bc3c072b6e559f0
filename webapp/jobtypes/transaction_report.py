"""Netdonor Transaction Report.

Transactions in a date range, with supporter fields and totals by currency, as a CSV."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webapp.jobtypes.base import JobType

if TYPE_CHECKING:
    from webapp.engine.context import RunContext


class TransactionReport(JobType):
    """Transactions in a date range, with supporter fields and totals by currency, as a CSV."""

    key = "transaction_report"
    label = "Netdonor Transaction Report"
    description = "Transactions in a date range, with supporter fields and totals by currency, as a CSV."

    def run(self, ctx: RunContext) -> None:
        raise NotImplementedError("Netdonor Transaction Report is being built")
