"""The versioned JSON API, /api/v1: a personal API token (`Authorization: Bearer …`, made on
the API tokens page) acts as its user, under the screens' rules (another user's run is a 404).
A read-only token may only read. Errors are JSON with a 4xx status."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, jsonify, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from webapp import audit
from webapp.api.tokens import current_token
from webapp.engine import control
from webapp.engine.queueing import QueueUnavailable
from webapp.engine.runs import RunActionError
from webapp.extensions import csrf, db
from webapp.models.runs import COUNT_NAMES
from webapp.permissions import run_or_404

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # a bearer token is not sent by a browser on its own: nothing to forge
READING = frozenset({"GET", "HEAD", "OPTIONS"})


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


@bp.post("/runs/<int:run_id>/stop")
def stop_run(run_id: int):
    """Stop a run as its Stop button does: cancelled before it starts, else stopped at the next
    batch. Answers what happened and the run as it is now (audited as the token's user)."""
    run = run_or_404(run_id)
    try:
        message = control.stop(run, current_user)
    except (RunActionError, QueueUnavailable) as problem:
        db.session.rollback()
        return _error(409, str(problem))
    audit.record("run.stopped", run, detail=f"{run.label.capitalize()}: {message} (API)")
    db.session.refresh(run)
    return jsonify(message=message, run=_run_json(run))
