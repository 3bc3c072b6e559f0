"""Runs by the API: status, the buttons of the run page, its log, rejected lines and result."""

from __future__ import annotations

from flask_login import current_user
from sqlalchemy import select

from webapp import audit
from webapp.api.v1.answers import run_out
from webapp.api.v1.core import fail, iso
from webapp.api.v1.schemas import (
    Dismissed,
    LogLine,
    Rejection,
    RunActionOut,
    RunLog,
    RunOut,
    RunRejections,
)
from webapp.api.v1.spec import RESULT, operation
from webapp.engine import control
from webapp.engine.queueing import QueueUnavailable
from webapp.engine.runs import RunActionError, mark_downloaded
from webapp.engine.runs import dismiss as dismiss_run
from webapp.extensions import db
from webapp.models.runs import RunLogLine, RunRejection
from webapp.permissions import run_or_404
from webapp.rules.states import RunState
from webapp.runs.files import result_file, result_mimetype, result_name, send_run_file

TAG = "Runs"
# what a run's buttons do, by the API's name: (the engine's action, what the audit log calls it)
ACTIONS = {
    "stop": (control.stop, "run.stopped"),
    "pause": (control.pause, "run.paused"),
    "resume": (control.resume, "run.resumed"),
    "cancel": (control.cancel_paused, "run.cancelled"),
    "kill": (control.kill, "run.killed"),
    "retry": (control.retry, "run.retried"),
}


@operation("GET", "/runs/<int:run_id>", tag=TAG, answers={200: RunOut}, errors=(404,))
def run_status(run_id: int):
    """A run's state, progress and counts."""
    return run_out(run_or_404(run_id))


def act_on_run(run, action: str) -> RunActionOut:
    """Do what a run's button does, as the token's user (audited); a 409 saying why when the
    run's state does not allow it."""
    if action == "kill" and not current_user.is_admin:
        raise fail(403, "only an admin can kill a run")
    act, audited = ACTIONS[action]
    try:
        message = act(run, current_user)
    except (RunActionError, QueueUnavailable) as problem:
        db.session.rollback()
        raise fail(409, str(problem)) from None
    db.session.refresh(run)
    if audited == "run.stopped" and run.state is RunState.CANCELLED:
        audited = "run.cancelled"
    audit.record(audited, run, detail=f"{run.label.capitalize()}: {message} (API)")
    return RunActionOut(message=message, run=run_out(run))


@operation(
    "POST",
    "/runs/<int:run_id>/<any(stop, pause, resume, cancel, kill, retry):action>",
    tag=TAG,
    answers={200: RunActionOut},
    errors=(403, 404, 409),
)
def run_action(run_id: int, action: str):
    """Stop, pause, resume, cancel (a paused run), kill (admins) or retry a run.

    As the run page's buttons do: answers what happened and the run as it is now; an action the
    run's state does not allow is a 409 saying why."""
    return act_on_run(run_or_404(run_id), action)


@operation("GET", "/runs/<int:run_id>/log", tag=TAG, answers={200: RunLog}, errors=(404,))
def run_log(run_id: int):
    """The run's log lines, oldest first (times in UTC with their zone)."""
    run = run_or_404(run_id)
    query = select(RunLogLine).where(RunLogLine.run_id == run.id).order_by(RunLogLine.id)
    lines = db.session.execute(query).scalars()
    return RunLog(
        run_id=run.id, lines=[LogLine(at=iso(x.at), level=x.level, message=x.message) for x in lines]
    )


@operation("GET", "/runs/<int:run_id>/rejections", tag=TAG, answers={200: RunRejections}, errors=(404,))
def rejections(run_id: int):
    """Every line the run rejected, with its reason, in line order."""
    run = run_or_404(run_id)
    query = (
        select(RunRejection.line, RunRejection.reason)
        .where(RunRejection.run_id == run.id)
        .order_by(RunRejection.line)
    )
    found = [Rejection(line=line, reason=reason) for line, reason in db.session.execute(query)]
    return RunRejections(run_id=run.id, rejected=found)


@operation("GET", "/runs/<int:run_id>/result", tag=TAG, answers={200: RESULT}, errors=(404, 410, 503))
def run_result(run_id: int):
    """The run's result file, streamed.

    404 when it has none, 410 once deleted after the retention period. Taken by its owner, the
    run leaves their monitor, as on the run page."""
    run = run_or_404(run_id)
    if not run.result_path:
        raise fail(404, "this run has no result file")
    stored = result_file(run)
    if stored is None:
        raise fail(410, "the result file was deleted after the retention period")
    name = result_name(run)
    response = send_run_file(run, "result", name, stored, result_mimetype(name))
    if run.owner_id == current_user.id:
        mark_downloaded(run)
    return response


@operation("POST", "/runs/<int:run_id>/dismiss", tag=TAG, answers={200: Dismissed}, errors=(404, 409))
def dismiss(run_id: int):
    """Take a finished run off the monitor (it stays in History), as its Dismiss button does."""
    run = run_or_404(run_id)
    try:
        left = dismiss_run(run)
    except RunActionError as problem:
        db.session.rollback()
        raise fail(409, str(problem)) from None
    audit.record("run.dismissed", run, detail=f"{run.label.capitalize()}: dismissed (API)")
    return Dismissed(dismissed=left)
