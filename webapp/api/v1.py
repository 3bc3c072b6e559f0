"""The versioned JSON API, /api/v1: a personal API token (`Authorization: Bearer …`, made on
the API tokens page) acts as its user, under the screens' rules (another user's run is a 404).
A read-only token may only read. Errors are JSON with a 4xx status."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from webapp import audit
from webapp.api.tokens import current_token
from webapp.engine import control
from webapp.engine.queueing import QueueUnavailable
from webapp.engine.runs import RunActionError, mark_downloaded, start_run
from webapp.engine.runs import dismiss as dismiss_run
from webapp.extensions import csrf, db
from webapp.groups.queries import group_or_404
from webapp.jobs.deletion import delete_job, refusal
from webapp.jobtypes import REGISTRY, job_type_for, types_where
from webapp.jobtypes.job_group import MIN_STEPS, GroupDefinition, JobGroup
from webapp.jobtypes.user_data_export import ExportForm, UserDataExport
from webapp.models.jobs import Job
from webapp.models.runs import COUNT_NAMES, RunLogLine, RunRejection
from webapp.monitor.queries import HistoryFilter, history_page, monitor_page
from webapp.paging import Keyset
from webapp.permissions import history_user_or_404, job_or_404, run_or_404
from webapp.request_args import choice_arg, int_arg, page_arg
from webapp.rules.states import RunState
from webapp.runs.files import result_file, result_name, send_run_file

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # a bearer token is not sent by a browser on its own: nothing to forge
READING = frozenset({"GET", "HEAD", "OPTIONS"})
STATES = frozenset(state.value for state in RunState)


def _iso(moment: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with its zone."""
    return moment.replace(tzinfo=UTC).isoformat() if moment else None


def _error(status: int, message: str):
    return jsonify(error=message, status=status), status


@bp.before_request
def token_required():
    """Only a usable token gets in; a read-only one only reads."""
    token = current_token() if current_user.is_authenticated else None
    if token is None:
        return _error(401, "send a usable API token: Authorization: Bearer <token>")
    if token.read_only and request.method not in READING:
        return _error(403, "this API token is read-only")
    return None


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    messages = {404: "not found, or not yours to see", 405: "method not allowed here"}
    status = exc.code or 500
    return _error(status, messages.get(status) or exc.description or exc.name)


def _run_json(run):
    return dict(
        id=run.id,
        job_id=run.job_id,
        job_name=run.job_name,
        type=run.job_type,
        number=run.number,
        state=run.state.value,
        progress={"done": run.progress_done, "total": run.progress_total, "percent": run.percent},
        counts={name: getattr(run, name) for name in COUNT_NAMES},
        error=run.error,
        started_at=_iso(run.started_at),
        finished_at=_iso(run.finished_at),
        result_available=run.has_result,
    )


@bp.get("/runs/<int:run_id>")
def run_status(run_id: int):
    """A run's state, progress and counts."""
    return jsonify(_run_json(run_or_404(run_id)))


# what a run's buttons do, by the API's name: (the engine's action, what the audit log calls it)
ACTIONS = {
    "stop": (control.stop, "run.stopped"),
    "pause": (control.pause, "run.paused"),
    "resume": (control.resume, "run.resumed"),
    "cancel": (control.cancel_paused, "run.cancelled"),
    "kill": (control.kill, "run.killed"),
    "retry": (control.retry, "run.retried"),
}


@bp.post("/runs/<int:run_id>/<any(stop, pause, resume, cancel, kill, retry):action>")
def run_action(run_id: int, action: str):
    """Stop, pause, resume, cancel (a paused run), kill (admins) or retry a run, as its buttons
    do. Answers what happened and the run as it is now (audited as the token's user); an action
    the run's state does not allow is a 409 saying why."""
    run = run_or_404(run_id)
    if action == "kill" and not current_user.is_admin:
        return _error(403, "only an admin can kill a run")
    act, audited = ACTIONS[action]
    try:
        message = act(run, current_user)
    except (RunActionError, QueueUnavailable) as problem:
        db.session.rollback()
        return _error(409, str(problem))
    db.session.refresh(run)
    if audited == "run.stopped" and run.state is RunState.CANCELLED:
        audited = "run.cancelled"
    audit.record(audited, run, detail=f"{run.label.capitalize()}: {message} (API)")
    return jsonify(message=message, run=_run_json(run))


@bp.get("/runs/<int:run_id>/log")
def run_log(run_id: int):
    """The run's log lines, oldest first (times in UTC with their zone)."""
    run = run_or_404(run_id)
    query = select(RunLogLine).where(RunLogLine.run_id == run.id).order_by(RunLogLine.id)
    lines = db.session.execute(query).scalars()
    return jsonify(
        run_id=run.id, lines=[{"at": _iso(x.at), "level": x.level, "message": x.message} for x in lines]
    )


@bp.get("/runs/<int:run_id>/result")
def run_result(run_id: int):
    """The run's result file (streamed); 404 when it has none, 410 once deleted after the
    retention period. Taken by its owner, the run leaves their monitor as on the run page."""
    run = run_or_404(run_id)
    if not run.result_path:
        return _error(404, "this run has no result file")
    stored = result_file(run)
    if stored is None:
        return _error(410, "the result file was deleted after the retention period")
    if run.owner_id == current_user.id:
        mark_downloaded(run)
    return send_run_file(run, "result", result_name(run), stored, "text/csv")


def _job_json(job: Job) -> dict:
    return {
        "id": job.id,
        "name": job.name,
        "type": job.job_type,
        "owner": job.owner.email,
        "created_at": _iso(job.created_at),
    }


@bp.get("/jobs")
def jobs():
    """The token's user's jobs (everyone's for a super admin's token), by name."""
    found = _visible(Job.active.is_(True), Job.job_type.in_(types_where("listed_as_job")))
    return jsonify(jobs=[_job_json(job) for job in found])


def _visible(*conditions) -> list[Job]:
    """The jobs meeting `conditions` the token's user may see (everyone's for a super admin),
    by name."""
    query = select(Job).where(*conditions)
    if not current_user.is_super_admin:
        query = query.where(Job.owner_id == current_user.id)
    return list(db.session.execute(query.order_by(Job.name, Job.id)).scalars())


@bp.get("/jobs/<int:job_id>")
def job(job_id: int):
    """One job."""
    return jsonify(_job_json(job_or_404(job_id)))


@bp.post("/jobs/<int:job_id>/runs")
def start(job_id: int):
    """Start a run of the job now, as Run now does (it waits if another run of it is busy): 201
    with the run. A campaign is sent by its launch, not here (409)."""
    found = job_or_404(job_id)
    if not found.active:
        return _error(409, "this job was deleted")
    if not job_type_for(found.job_type).runs_on_request:
        return _error(409, "a campaign is sent by its launch, which shows the audience size first")
    run = start_run(found, current_user)
    audit.record("run.started", run, detail=f"Run #{run.number}, through the API")
    return jsonify(_run_json(run)), 201


def _listed(page, next_args: dict | None, prev_args: dict | None, endpoint: str, **filters) -> dict:
    """A list answer: the runs, and the addresses of the pages on either side (None at an end)."""
    kept = {name: value for name, value in filters.items() if value not in (None, "")}

    def link(args: dict | None) -> str | None:
        return url_for(endpoint, **kept, **args) if args else None

    return {
        "runs": [_run_json(run) for run in page.items],
        "next": link(next_args),
        "previous": link(prev_args),
    }


@bp.get("/history")
def history():
    """History: every run that happened, newest first, 50 a page by cursor (`before`/`after` a
    run id: follow `next`), with its filters: `type`, `state`, and a super admin's `user`."""
    filters = HistoryFilter(
        job_type=choice_arg("type", REGISTRY),
        state=choice_arg("state", STATES),
        user_id=history_user_or_404(int_arg("user")),
    )
    page = history_page(current_user, filters, Keyset.from_request(current_app.config["PAGE_SIZE"]))
    found = _listed(
        page,
        page.next_args,
        page.prev_args,
        "api_v1.history",
        type=filters.job_type,
        state=filters.state,
        user=filters.user_id,
    )
    return jsonify(found)


@bp.get("/monitor")
def monitor():
    """The monitor's rows (runs waiting, running, and finished ones not yet dismissed), newest
    first, a page at a time (`page`: follow `next`), with how many there are."""
    page = monitor_page(current_user, page_arg(), current_app.config["PAGE_SIZE"])
    found = _listed(page, page.next_args, page.prev_args, "api_v1.monitor")
    return jsonify(total=page.total, **found)


@bp.post("/runs/<int:run_id>/dismiss")
def dismiss(run_id: int):
    """Take a finished run off the monitor (it stays in History), as its Dismiss button does."""
    run = run_or_404(run_id)
    try:
        left = dismiss_run(run)
    except RunActionError as problem:
        db.session.rollback()
        return _error(409, str(problem))
    audit.record("run.dismissed", run, detail=f"{run.label.capitalize()}: dismissed (API)")
    return jsonify(dismissed=left)


@bp.get("/runs/<int:run_id>/rejections")
def rejections(run_id: int):
    """Every line the run rejected, with its reason, in line order."""
    run = run_or_404(run_id)
    query = (
        select(RunRejection.line, RunRejection.reason)
        .where(RunRejection.run_id == run.id)
        .order_by(RunRejection.line)
    )
    lines = [{"line": line, "reason": reason} for line, reason in db.session.execute(query)]
    return jsonify(run_id=run.id, rejected=lines)


def _group_json(group: Job) -> dict:
    definition = GroupDefinition.of(group)
    return {
        **_job_json(group),
        "activated": definition.activated,
        "steps": definition.steps,  # job ids, in order
        "expires_on": definition.expires_on,  # an ISO date in the account's time zone, or None
    }


@bp.get("/groups")
def groups():
    """The token's user's groups (everyone's for a super admin's token), by name."""
    return jsonify(groups=[_group_json(group) for group in _visible(Job.job_type == JobGroup.key)])


@bp.get("/groups/<int:group_id>")
def group(group_id: int):
    """One group, with its steps (job ids in order)."""
    return jsonify(_group_json(group_or_404(group_id)))


@bp.post("/groups/<int:group_id>/runs")
def run_group(group_id: int):
    """Start a run of the group now, as its Run now button (it waits while another run of the
    group is busy): 201 with the group run; 409 for a group of fewer than two jobs."""
    found = group_or_404(group_id)
    if len(GroupDefinition.of(found).steps) < MIN_STEPS:
        return _error(409, f"a group needs at least {MIN_STEPS} jobs to run")
    run = start_run(found, current_user)
    audit.record("run.started", run, detail=f"Group run #{run.number}, through the API")
    return jsonify(_run_json(run)), 201


def _export_form(payload: dict) -> ExportForm:
    """The export form filled from a JSON body, as the New export page's would be."""
    values: MultiDict[str, str] = MultiDict()
    for name in ("name", "filter", "since"):
        if isinstance(payload.get(name), str):
            values.add(name, payload[name])
    for name in payload.get("fields", []) if isinstance(payload.get("fields"), list) else []:
        values.add("fields", str(name))
    if payload.get("bom", True) is True:
        values.add("bom", "y")
    form = ExportForm(formdata=values, meta={"csrf": False})
    if "fields" not in payload:
        form.fields.data = form.fields.default  # every field, as the page offers
    return form


@bp.post("/jobs")
def create_job():
    """Make a User Data Export job: {"type": "user_data_export", "name": …, "fields": [...],
    "filter": "all" | …, "since": "YYYY-MM-DD", "bom": true}. 201 with the job; 400 naming each
    problem. (An import is made from an upload: the Import Service, still to come.)"""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return _error(400, 'send a JSON object, e.g. {"type": "user_data_export", "name": "Nightly export"}')
    if payload.get("type") != UserDataExport.key:
        return _error(
            400, f'type must be "{UserDataExport.key}" (other types are made on their pages for now)'
        )
    form = _export_form(payload)
    if not form.validate():
        problems = {name: errors for name, errors in form.errors.items() if name != "csrf_token"}
        return jsonify(error="the job was not saved: " + _said(problems), status=400, problems=problems), 400
    job = Job(
        owner_id=current_user.id,
        job_type=UserDataExport.key,
        name=form.name.data.strip(),
        params=form.params(),
    )
    db.session.add(job)
    db.session.commit()
    audit.record("job.created", job, detail="User Data Export (API)")
    return jsonify(_job_json(job)), 201


def _said(problems: dict[str, list[str]]) -> str:
    return "; ".join(f"{name}: {' '.join(errors)}" for name, errors in problems.items())


@bp.delete("/jobs/<int:job_id>")
def delete_job_(job_id: int):
    """Delete a job as its Delete button does (its runs stay in History); 409 while a group
    runs it as a step, saying which."""
    found = job_or_404(job_id)
    if not found.active or not job_type_for(found.job_type).listed_as_job:
        return _error(409, "this is no job the Jobs page lists: delete it on its own page")
    refused = refusal(found)
    if refused:
        return _error(409, refused)
    delete_job(found)
    return jsonify(deleted=found.id)
