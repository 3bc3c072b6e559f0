"""Import Service: a User Data Import started through the JSON API (POST /api/v1/imports).

Each request is a job of its own, hidden from the Jobs page: it holds the body the request sent
(stored as an upload, as the upload page stores a file) and the mapping, and its run is a User
Data Import run in every way (counts, rejected lines, Stop, Retry, the import report) under its
own name in the monitor's Type column. Once its run ends other than failed, nothing will read
the file again (no Run now, no schedule, no Retry), so the job retires (`used_up`): the upload
sweep then deletes its file; a failed run keeps it for Retry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webapp.jobtypes.user_data_import import UserDataImport

if TYPE_CHECKING:
    from webapp.engine.context import RunContext
    from webapp.models.runs import Run


def used_up(run: Run) -> None:
    """Retire the job of an API request whose run has ended (committed with that end)."""
    if run.job is not None:
        run.job.active = False


LIFETIME = "one API request: the job retires once its run ends other than failed"


class ImportService(UserDataImport):
    """A CSV or JSON lines of supporters sent to the API, imported as the upload page's are."""

    key = "import_service"
    label = "Import Service"
    description = "Supporters sent to POST /api/v1/imports (CSV or JSON lines), imported by email."
    can_be_step = False
    listed_as_job = False
    new_endpoint = None  # made through the API, not on a page
    new_label = ""

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        sent = "JSON lines" if params.get("sent_as") == "ndjson" else "CSV"
        return [("Sent through the API as", sent), *super().describe(params), ("Lifetime", LIFETIME)]

    def run(self, ctx: RunContext) -> None:
        super().run(ctx)
        used_up(ctx.run)

    def after_cancel(self, run: Run, phase: str) -> None:
        used_up(run)
