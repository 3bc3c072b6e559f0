"""Jobs by the API: list, read, make (an export), change, delete, activate, and start a run."""

from __future__ import annotations

from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from webapp import audit
from webapp.api.v1.answers import job_out
from webapp.api.v1.core import fail
from webapp.api.v1.forms import form_data, validated
from webapp.api.v1.idempotency import ONCE, started_once
from webapp.api.v1.schemas import (
    AnnualReceiptsJobIn,
    BatchReceiptsJobIn,
    BouncesJobIn,
    Deleted,
    ExportJobIn,
    JobIn,
    JobList,
    JobOut,
    JobUpdateIn,
    ReceiptInventoryJobIn,
    ReportJobIn,
    RunOut,
)
from webapp.api.v1.spec import operation
from webapp.bounces.forms import BounceExportForm
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.groups.activation import activate_group, deactivate_group
from webapp.jobs.deletion import delete_job, refusal
from webapp.jobs.forms import NotificationsForm
from webapp.jobtypes import get_job_type, job_type_for, types_where
from webapp.jobtypes.email_bounces import visible_sends
from webapp.jobtypes.job_group import MIN_STEPS, GroupDefinition, JobGroup
from webapp.jobtypes.transaction_import import TransactionImport
from webapp.jobtypes.user_data_export import ExportForm, UserDataExport
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.permissions import can_see, job_or_404
from webapp.receipts.forms import AnnualForm, BatchForm, InventoryForm
from webapp.reports.forms import ReportForm

TAG = "Jobs"


def visible_jobs(*conditions) -> list[Job]:
    """The jobs meeting `conditions` the token's user may see (everyone's for a super admin),
    by name."""
    query = select(Job).where(*conditions)
    if not current_user.is_super_admin:
        query = query.where(Job.owner_id == current_user.id)
    return list(db.session.execute(query.order_by(Job.name, Job.id)).scalars())


@operation("GET", "/jobs", tag=TAG, answers={200: JobList})
def jobs():
    """The token's user's jobs (everyone's for a super admin's token), by name."""
    found = visible_jobs(Job.active.is_(True), Job.job_type.in_(types_where("listed_as_job")))
    return JobList(jobs=[job_out(job) for job in found])


def listed_job_or_404(job_id: int) -> Job:
    """A job the Jobs page lists that the token's user may see."""
    found = job_or_404(job_id)
    if not found.active:
        raise fail(404, "this job was deleted")
    return found


@operation("GET", "/jobs/<int:job_id>", tag=TAG, answers={200: JobOut}, errors=(404,))
def job(job_id: int):
    """One job, with the settings its page lists; a deleted one too (`deleted`: true), as its
    page still shows it (its runs stay in History)."""
    return job_out(job_or_404(job_id))


def export_form(values: dict) -> ExportForm:
    """The export form filled from JSON values, as the New export page's would be."""
    wanted = {name: values.get(name) for name in ("name", "filter", "since", "fields")}
    form = ExportForm(formdata=form_data({**wanted, "bom": values.get("bom", True)}), meta={"csrf": False})
    if values.get("fields") is None:
        form.fields.data = form.fields.default  # every field, as the page offers
    return form


@operation("POST", "/jobs", tag=TAG, answers={201: JobOut}, body=JobIn, errors=(400, 403, 404, 415))
def create_job(body: JobIn):
    """Make a job: a User Data Export, an Email Bounces job, a Netdonor Transaction Report, or
    (admins only, a 403 for anyone else) a Batch, Annual or Inventory receipt generator.

    The page's own form checks apply; each problem is named in a 422. Another user's campaign
    send or transaction import is a 404. (An import is made by `POST /imports` or
    `POST /transaction-imports`, a campaign on its page.)"""
    wanted = body.root
    job_type = get_job_type(wanted.type)
    if job_type.admins_only and not current_user.is_admin:
        raise fail(403, f"only an admin can make {job_type.label} jobs (receipts are the organisation's)")
    form = _form_for(wanted)
    validated(form, "job")
    job = Job(
        owner_id=current_user.id, job_type=job_type.key, name=form.name.data.strip(), params=form.params()
    )
    db.session.add(job)
    db.session.commit()
    audit.record("job.created", job, detail=f"{job_type.label} (API)")
    return job_out(job), 201


def _form_for(wanted) -> FlaskForm:
    """The page's form of the job type `wanted` names, filled from its JSON as the page's would be."""
    values = wanted.model_dump(exclude={"type"})
    if isinstance(wanted, BouncesJobIn):
        return _bounces_form(wanted)
    if isinstance(wanted, ExportJobIn):
        return export_form(values)
    if isinstance(wanted, BatchReceiptsJobIn) and wanted.source == "run" and wanted.import_run is not None:
        run = db.session.get(Run, wanted.import_run)
        if run is None or run.job_type != TransactionImport.key or not can_see(current_user, run):
            raise fail(404, "no transaction import of yours has that run id")
    forms: dict[type, type[FlaskForm]] = {
        ReportJobIn: ReportForm,
        BatchReceiptsJobIn: BatchForm,
        AnnualReceiptsJobIn: AnnualForm,
        ReceiptInventoryJobIn: InventoryForm,
    }
    return forms[type(wanted)](formdata=form_data(values), meta={"csrf": False})


def _bounces_form(wanted: BouncesJobIn) -> BounceExportForm:
    """The bounce export form filled from JSON, as its page's would be; a send the token's user
    may not see is a 404, as on the page."""
    if wanted.send is not None:
        if db.session.execute(visible_sends(current_user).where(Run.id == wanted.send)).scalar() is None:
            raise fail(404, "no campaign send of yours has that id")
    return BounceExportForm(formdata=form_data(wanted.model_dump(exclude={"type"})), meta={"csrf": False})


@operation(
    "PATCH",
    "/jobs/<int:job_id>",
    tag=TAG,
    answers={200: JobOut},
    body=JobUpdateIn,
    errors=(400, 404, 409, 415),
    found=listed_job_or_404,
)
def update_job(job_id: int, body: JobUpdateIn):
    """Change a job: its name, who is emailed about its runs, and an export's settings.

    Only the fields sent change; the same checks as on its page apply (a 422 naming each)."""
    found = listed_job_or_404(job_id)
    sent = body.model_dump(exclude_unset=True)
    if nulls := sorted(name for name, value in sent.items() if value is None):
        problems = {
            name: ["null is no value here: leave the field out to keep it as it is"] for name in nulls
        }
        raise fail(422, f"the job was not saved: {', '.join(nulls)}: null", "invalid", problems=problems)
    export_settings = {"fields", "filter", "since", "bom"} & sent.keys()
    if export_settings and found.job_type != UserDataExport.key:
        raise fail(409, f"only an export has {', '.join(sorted(export_settings))}")
    if found.job_type == UserDataExport.key:
        changed = {name: value for name, value in sent.items() if not name.startswith("notify")}
        form = export_form({**found.params, "name": found.name, **changed})
        validated(form, "job")
        found.params = form.params()
    if "name" in sent:
        found.name = sent["name"].strip()
        if not found.name:
            raise fail(422, "the job was not saved: name: This field is required.")
    notify = {k: v for k, v in sent.items() if k.startswith("notify")}
    if notify:
        merged = {
            "notify_emails": found.notify_emails or "",
            "notify_on": found.notify_on,
            "notify_missed": found.notify_missed,
            "notify_long": found.notify_long,
            **notify,
        }
        notifications = NotificationsForm(formdata=form_data(merged), meta={"csrf": False})
        validated(notifications, "job")
        notifications.save_to(found)
    audit.record(
        "job.edited", found, commit=False, detail=f"Changed {', '.join(sorted(sent)) or 'nothing'} (API)"
    )
    db.session.commit()
    return job_out(found)


@operation("DELETE", "/jobs/<int:job_id>", tag=TAG, answers={200: Deleted}, errors=(404, 409))
def delete_job_(job_id: int):
    """Delete a job as its Delete button does (its runs stay in History).

    409 while a group runs it as a step, saying which."""
    found = listed_job_or_404(job_id)
    if not job_type_for(found.job_type).listed_as_job:
        raise fail(409, "this is no job the Jobs page lists: delete it on its own page")
    refused = refusal(found)
    if refused:
        raise fail(409, refused)
    if not delete_job(found):
        raise fail(404, "this job was deleted")
    return Deleted(deleted=found.id)


@operation(
    "POST",
    "/jobs/<int:job_id>/<any(activate, deactivate):action>",
    tag=TAG,
    answers={200: JobOut},
    errors=(404, 409),
)
def activate(job_id: int, action: str):
    """Activate or deactivate a group (a group is a job).

    Active, its schedule runs it; deactivated, nothing runs by itself until it is activated
    again. Only a group is activated: a job's schedule is paused and resumed instead."""
    found = job_or_404(job_id)
    if found.job_type != JobGroup.key or not found.active:
        raise fail(409, "only a group is activated or deactivated: pause or resume a job's schedule")
    if action == "activate":
        if len(GroupDefinition.of(found).steps) < MIN_STEPS:
            raise fail(409, f"a group needs at least {MIN_STEPS} jobs to be activated")
        message = activate_group(found)
        audit.record("group.activated", found, kind="group", detail=f"{message} (API)")
    else:
        deactivate_group(found)
        audit.record("group.deactivated", found, kind="group", detail="(API)")
    return job_out(found)


@operation(
    "POST", "/jobs/<int:job_id>/runs", tag=TAG, answers={201: RunOut}, errors=(404, 409, 422), headers=ONCE
)
def start(job_id: int):
    """Start a run of the job now, as Run now does (it waits if another run of it is busy).

    A campaign is sent by its launch, not here (409). With an `Idempotency-Key` header, the
    same key sent again within a day answers the run it started and starts nothing."""
    found = job_or_404(job_id)
    if not found.active:
        raise fail(409, "this job was deleted")
    if not job_type_for(found.job_type).runs_on_request:
        raise fail(409, "a campaign is sent by its launch, which shows the audience size first")
    if found.job_type == JobGroup.key and len(GroupDefinition.of(found).steps) < MIN_STEPS:
        raise fail(409, f"a group needs at least {MIN_STEPS} jobs to run")
    return started_once(f"runs-of-{found.id}", lambda: _run_now(found), status=201)


def _run_now(job: Job) -> Run:
    run = start_run(job, current_user, trigger="api")
    audit.record("run.started", run, detail=f"{run.label.capitalize()}, through the API")
    return run
