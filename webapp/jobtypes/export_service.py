"""Export Service: a User Data Export started through the JSON API (POST /api/v1/exports).

Each request is a job of its own, hidden from the Jobs page, holding the export's settings (sent
in the request, or copied from a saved export job); its run is a User Data Export run in every
way, its result downloaded by GET /api/v1/runs/<id>/result or from the monitor. Like an Import
Service job it retires once its run ends other than failed (a failed run keeps it for Retry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webapp.jobtypes.import_service import LIFETIME, used_up
from webapp.jobtypes.user_data_export import UserDataExport

if TYPE_CHECKING:
    from webapp.engine.context import RunContext
    from webapp.models.runs import Run


class ExportService(UserDataExport):
    """Supporters → a CSV result file, asked for through the API."""

    key = "export_service"
    label = "Export Service"
    description = "Supporters exported to a CSV file at the request of POST /api/v1/exports."
    can_be_step = False
    listed_as_job = False
    new_endpoint = None  # made through the API, not on a page
    new_label = ""

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        return [*super().describe(params), ("Lifetime", LIFETIME)]

    def run(self, ctx: RunContext) -> None:
        super().run(ctx)
        used_up(ctx.run)

    def after_cancel(self, run: Run, phase: str) -> None:
        used_up(run)
