"""JSON API: errors are JSON with a 4xx status, never a page."""

from __future__ import annotations

import hmac
import re

from flask import Blueprint, current_app, jsonify, request

from webapp.extensions import csrf
from webapp.mailing.events import record_bounce
from webapp.models.campaigns import BOUNCE_REASON_MAX

bp = Blueprint("api", __name__, url_prefix="/api")


def bounce_token() -> str:
    """The bounce webhook's bearer token (CONVEYOR_BOUNCE_TOKEN, or on the embedded default the
    one kept under var/: webapp/config.py)."""
    return current_app.config["BOUNCE_TOKEN"]


# control characters other than tab and line breaks (a server's reason may span lines); a NUL
# would not even fit in a PostgreSQL text column
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _error(status: int, message: str):
    return jsonify(error=message, status=status), status


@bp.route("/bounces", methods=["POST"])
@csrf.exempt
def bounces():
    """Record a bounce: {"email": ..., "request_id": ..., "type": "hard" | "soft", "reason": ...}."""
    auth = request.headers.get("Authorization", "")
    if not hmac.compare_digest(auth, f"Bearer {bounce_token()}"):
        return _error(401, "missing or wrong bearer token")
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("email"), str):
        return _error(400, 'send JSON like {"email": "a@b.org", "type": "hard"}')
    kind = payload.get("type", "hard")
    if kind not in ("hard", "soft"):
        return _error(400, 'type must be "hard" or "soft"')
    request_id = payload.get("request_id")
    if request_id is not None and not isinstance(request_id, str):
        return _error(400, "request_id must be a string")
    reason = payload.get("reason", "")
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        return _error(400, "reason must be a string (the mail server's words)")
    if len(reason) > BOUNCE_REASON_MAX:
        return _error(400, f"reason must be at most {BOUNCE_REASON_MAX} characters")
    if any(_CONTROL.search(text) for text in (payload["email"], request_id or "", reason)):
        return _error(400, "email, request_id and reason must be plain text (no control characters)")
    if not record_bounce(payload["email"], request_id, kind == "hard", reason):
        return _error(404, "no campaign recipient with that email (and request id)")
    return jsonify(recorded=True, email=payload["email"].strip().lower(), type=kind, reason=reason.strip())
