"""Run page, its polled status, log and result downloads, and run actions."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import func, select

from webapp import audit
from webapp.charts import campaign_chart
from webapp.engine import chains, control
from webapp.engine import runs as engine
from webapp.engine.queueing import QueueUnavailable
from webapp.extensions import db
from webapp.groups.queries import step_names, timeline
from webapp.jobtypes import job_type_for
from webapp.mailing.stats import contact_stats
from webapp.models.campaigns import Campaign
from webapp.models.runs import RunLogLine, RunRejection
from webapp.monitor.queries import POLLED, row_names
from webapp.monitor.rows import row_html
from webapp.permissions import run_or_404
from webapp.rules.clock import format_local
from webapp.rules.states import RunState
from webapp.runs.files import result_file, result_mimetype, result_name, send_run_file
from webapp.web import is_htmx, safe_path

bp = Blueprint("runs", __name__, url_prefix="/runs")
LOG_TAIL = 200
RUN_PAGE_POLLED = (*POLLED, RunState.COLLECTING)
REJECTIONS_SHOWN = 100


@bp.route("/<int:run_id>")
@login_required
def detail(run_id: int):
    """A run: state, request id, counts, rejected lines and log."""
    run = run_or_404(run_id)
    return render_template("runs/detail.html", **_status_context(run), campaign_chart=campaign_chart(run))


@bp.route("/<int:run_id>/status")
@login_required
def status(run_id: int):
    """The run page's live region (polled while the run is active)."""
    return render_template("runs/partials/_status.html", **_status_context(run_or_404(run_id)))


@bp.route("/<int:run_id>/campaign-chart")
@login_required
def campaign_chart_region(run_id: int):
    """A campaign run's chart (it refreshes itself, less often than the status region)."""
    run = run_or_404(run_id)
    return render_template("runs/partials/_campaign_chart.html", run=run, campaign_chart=campaign_chart(run))


def _status_context(run) -> dict:
    """What the run page's live region shows: state, counts, rejected lines, log."""
    rejections = (
        db.session.execute(
            select(RunRejection)
            .where(RunRejection.run_id == run.id)
            .order_by(RunRejection.line)
            .limit(REJECTIONS_SHOWN)
        )
        .scalars()
        .all()
        if run.rejected
        else []
    )
    return {
        "run": run,
        "rejections": rejections,
        "log_lines": _log_tail(run.id),
        "polled": RUN_PAGE_POLLED,
        **_email_context(run),
        **_group_context(run),
    }


def _group_context(run) -> dict:
    """A group run's steps timeline; a step run's group run."""
    if job_type_for(run.job_type).drives_chain:
        return {"group_steps": timeline(run, chains.steps_of(run), step_names(run.job))}
    if run.parent_run_id:
        return {"parent_run": run.parent}
    return {}


def _email_context(run) -> dict:
    """The campaign and its contact results, for an Email Campaign run."""
    if not job_type_for(run.job_type).sends_email:
        return {}
    campaign = None
    if run.job is not None:
        campaign = db.session.get(Campaign, run.job.params.get("campaign_id"))
    return {"campaign": campaign, "stats": contact_stats(run)}


def _log_tail(run_id: int) -> list[RunLogLine]:
    lines = (
        db.session.execute(
            select(RunLogLine)
            .where(RunLogLine.run_id == run_id, RunLogLine.level != "debug")
            .order_by(RunLogLine.id.desc())
            .limit(LOG_TAIL)
        )
        .scalars()
        .all()
    )
    return list(reversed(lines))


@bp.route("/<int:run_id>/log.txt")
@login_required
def log_text(run_id: int):
    """The whole log as a text file."""
    run = run_or_404(run_id)
    zone = current_app.config["TIMEZONE"]
    # read now: the file is made after send_run_file's audit commit has expired `run`
    title = f"{run.job_name} — {run.reference}, {run.state.value}\n"

    def lines():
        yield title
        query = (
            select(RunLogLine)
            .where(RunLogLine.run_id == run_id)
            .order_by(RunLogLine.id)
            .execution_options(yield_per=1000)
        )
        for line in db.session.execute(query).scalars():
            yield f"{format_local(line.at, zone)}  {line.level.upper():5}  {line.message}\n"

    return send_run_file(run, "log", f"run-{run.id}-log.txt", lines(), "text/plain; charset=utf-8")


@bp.route("/<int:run_id>/result")
@login_required
def result(run_id: int):
    """Download the result file; the run leaves the owner's monitor when the owner takes it."""
    run = run_or_404(run_id)
    if not run.result_path:
        abort(404)
    stored = result_file(run)
    if stored is None:
        flash("This result file was deleted after the retention period.", "warning")
        return redirect(url_for("runs.detail", run_id=run.id))
    name = result_name(run)
    response = send_run_file(run, "result", name, stored, result_mimetype(name))
    if run.owner_id == current_user.id:  # taken on their behalf, it waits in their monitor
        engine.mark_downloaded(run)
    return response


def _after_action(run, message: str, category: str = "info"):
    """Re-render the monitor row for htmx, else go back to the run page with a message."""
    if is_htmx() and request.args.get("from") == "monitor":
        return row_html(run, row_names(current_user, [run]), message=message)
    run_page = url_for("runs.detail", run_id=run.id)
    target = safe_path(request.form.get("next"), run_page)
    # a pause or stop still under way is said in the run page's live region, which its next
    # refresh replaces with what happened: the message is not left on screen after the pause
    pending = run.control and category != "error" and target == run_page
    flash(message, "pending" if pending else category)
    return redirect(target)


def _action(run_id: int, action, audited: str):
    """Do a run action; an action that was done is audited as `audited` (a Stop that
    cancelled the run before it ran, or while paused, as run.cancelled)."""
    run = run_or_404(run_id)
    try:
        message = action(run)
    except (engine.RunActionError, QueueUnavailable) as problem:
        db.session.rollback()
        db.session.refresh(run)
        return _after_action(run, str(problem), "error")
    db.session.refresh(run)
    if audited == "run.stopped" and run.state is RunState.CANCELLED:
        audited = "run.cancelled"
    audit.record(audited, run, detail=f"{run.label.capitalize()}: {message}")
    return _after_action(run, message)


@bp.route("/<int:run_id>/stop", methods=["POST"])
@login_required
def stop(run_id: int):
    """Stop a run (cancel if it has not started, else stop at the next batch)."""
    return _action(run_id, lambda run: control.stop(run, current_user), "run.stopped")


@bp.route("/<int:run_id>/pause", methods=["POST"])
@login_required
def pause(run_id: int):
    """Pause a processing run after the batch in flight."""
    return _action(run_id, lambda run: control.pause(run, current_user), "run.paused")


@bp.route("/<int:run_id>/resume", methods=["POST"])
@login_required
def resume(run_id: int):
    """Resume a paused run."""
    return _action(run_id, lambda run: control.resume(run, current_user), "run.resumed")


@bp.route("/<int:run_id>/cancel", methods=["POST"])
@login_required
def cancel(run_id: int):
    """Cancel a paused run."""
    return _action(run_id, lambda run: control.cancel_paused(run, current_user), "run.cancelled")


@bp.route("/<int:run_id>/kill", methods=["POST"])
@login_required
def kill(run_id: int):
    """Hard-stop a run that did not stop after Stop (admins)."""
    return _action(run_id, lambda run: control.kill(run, current_user), "run.killed")


@bp.route("/<int:run_id>/retry", methods=["POST"])
@login_required
def retry(run_id: int):
    """Retry a failed run from its checkpoint."""
    return _action(run_id, lambda run: control.retry(run, current_user), "run.retried")


@bp.route("/<int:run_id>/dismiss", methods=["POST"])
@login_required
def dismiss(run_id: int):
    """Dismiss a finished run from the monitor (a group run with its finished step runs); it
    stays in History. The monitor's row is deleted by htmx, and the step rows folded under it
    with it; a refusal leaves the row, saying why."""
    left: list[int] = []

    def act(run):
        left.extend(engine.dismiss(run))
        return "Dismissed from the monitor; it stays in History."

    response = _action(run_id, act, "run.dismissed")
    if not (is_htmx() and request.args.get("from") == "monitor"):
        return response
    if not left:
        return Response(response, headers={"HX-Reswap": "outerHTML"})
    return render_template("monitor/partials/_gone.html", ids=left[1:])


@bp.route("/<int:run_id>/rejections.csv")
@login_required
def rejections(run_id: int):
    """Every rejected line of a run as CSV."""
    run = run_or_404(run_id)
    count = db.session.execute(select(func.count()).where(RunRejection.run_id == run.id)).scalar_one()

    def rows():
        yield "line,reason\n"
        query = (
            select(RunRejection.line, RunRejection.reason)
            .where(RunRejection.run_id == run_id)
            .order_by(RunRejection.line)
            .execution_options(yield_per=2000)
        )
        for line, reason in db.session.execute(query):
            yield f'{line},"{reason.replace(chr(34), chr(34) * 2)}"\n'

    return send_run_file(run, "rejections", f"run-{run.id}-rejected-{count}.csv", rows(), "text/csv")
