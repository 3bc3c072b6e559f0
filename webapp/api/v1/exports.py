"""Exports by the API (the Export Service): the settings sent, or a saved export job's, become an
Export Service run whose result is downloaded by GET /runs/<id>/result or from the monitor."""

from __future__ import annotations

from flask_login import current_user

from webapp import audit
from webapp.api.v1.core import fail
from webapp.api.v1.forms import validated
from webapp.api.v1.idempotency import ONCE, started_once
from webapp.api.v1.imports import TAG
from webapp.api.v1.jobs import export_form
from webapp.api.v1.schemas import ExportServiceIn, RunOut
from webapp.api.v1.spec import operation
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.jobtypes.export_service import ExportService
from webapp.jobtypes.user_data_export import UserDataExport
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.permissions import job_or_404

DEFAULT_NAME = "Export through the API"


@operation(
    "POST",
    "/exports",
    tag=TAG,
    answers={202: RunOut},
    body=ExportServiceIn,
    errors=(400, 403, 404, 409, 415),
    headers=ONCE,
)
def create_export(body: ExportServiceIn):
    """Export supporters to a CSV file as an Export Service run.

    Send the export's settings (fields, filter, since, bom: as `POST /jobs` takes them), or a
    saved User Data Export job's id (`job_id`), whose settings any sent alongside change for
    this run only. The export form's checks apply (a 422 naming each problem). Answers 202 with
    the queued run; once it is completed, `GET /runs/<id>/result` downloads the file. With an
    `Idempotency-Key` header, the same key sent again within a day answers the first run."""
    return started_once("exports", lambda: _export(body))


def _export(body: ExportServiceIn) -> Run:
    """Check the settings, save them as a hidden job and start its Export Service run."""
    sent = body.model_dump(exclude_unset=True, exclude={"job_id"})
    settings: dict = {"name": DEFAULT_NAME}
    if body.job_id is not None:
        saved = job_or_404(body.job_id)
        if not saved.active:
            raise fail(404, "this job was deleted")
        if saved.job_type != UserDataExport.key:
            raise fail(422, f"job {saved.id} is not a User Data Export job")
        settings = {**saved.params, "name": saved.name}
    settings.update({name: value for name, value in sent.items() if value is not None})
    form = export_form(settings)
    validated(form, "job")
    job = Job(
        owner_id=current_user.id,
        job_type=ExportService.key,
        name=form.name.data.strip(),
        params={**form.params(), **({"from_job_id": body.job_id} if body.job_id else {})},
    )
    db.session.add(job)
    db.session.commit()
    run = start_run(job, current_user, trigger="api")
    audit.record("run.started", run, detail=f"Export Service {run.label} (API)")
    return run
