"""The API's blueprint and what every request to it goes through: a usable token (a browser
session never gets in, so cookies cannot call it and CSRF does not apply), the token's rate
limit, and errors as JSON with a stable code: `{"error": {"code": …, "message": …}}`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from webapp.api.tokens import current_token
from webapp.engine.queueing import redis_connection
from webapp.extensions import csrf
from webapp.guards import JSON_LIMIT
from webapp.web import ERROR_CODES

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # a bearer token is not sent by a browser on its own: nothing to forge
READING = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN = frozenset({"api_v1.openapi"})  # what answers without a token: the API's description
MESSAGES = {
    404: "not found, or not yours to see",
    405: "method not allowed here",
    413: "the body is larger than this server takes",
}


class ApiError(Exception):
    """An answer other than success: its status, a stable code, a plain message, and more."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def fail(status: int, message: str, code: str | None = None, **extra: Any) -> ApiError:
    """The error to raise: `raise fail(409, "this run is finished")`."""
    return ApiError(status, code or ERROR_CODES.get(status, "error"), message, **extra)


def iso(moment: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with its zone."""
    if moment is None:
        return None
    if moment.tzinfo is None:  # (the stored kind: a list of 50 runs has 150 of them)
        return moment.isoformat() + "+00:00"
    return moment.astimezone(UTC).isoformat()


@bp.after_request
def not_kept(response):
    """Answers hold supporters' data: no browser, proxy or client library keeps a copy."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(ApiError)
def api_error(error: ApiError):
    response = jsonify(error={"code": error.code, "message": error.message, **error.extra})
    response.status_code = error.status
    if error.status == 429 and "retry_after" in error.extra:
        response.headers["Retry-After"] = str(error.extra["retry_after"])
    return response


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    status = exc.code or 500
    return api_error(fail(status, MESSAGES.get(status) or exc.description or exc.name))


@bp.before_request
def token_required():
    """Only a usable token gets in; a read-only one only reads; each token has a rate limit."""
    if request.endpoint in OPEN:
        return None
    token = current_token() if current_user.is_authenticated else None
    if token is None:
        raise fail(401, "send a usable API token: Authorization: Bearer <token>")
    if token.read_only and request.method not in READING:
        raise fail(403, "this API token is read-only")
    _count_against_limit(token.id)
    if request.is_json and (request.content_length or 0) > JSON_LIMIT:  # (one in chunks: see guards)
        raise fail(413, f"a JSON body may be up to {JSON_LIMIT // 1024} KB; send less at a time")
    return None


def _count_against_limit(token_id: int) -> None:
    """A fixed one-minute window per token, counted in Redis (shared by every web server).
    With Redis unreachable the limit is not applied: the API answers rather than refuses."""
    limit = current_app.config["API_RATE_LIMIT"]
    now = time.time()
    window = int(now // 60)
    key = f"{current_app.config['QUEUE_NAME']}:api-rate:{token_id}:{window}"
    try:
        pipe = redis_connection().pipeline(transaction=False)  # one round trip, no MULTI
        pipe.incr(key)
        pipe.expire(key, 90)
        used = pipe.execute()[0]
    except RedisError as problem:
        current_app.logger.warning("API rate limit not applied: Redis unreachable (%s)", problem)
        return
    if used > limit:
        wait = max(1, int((window + 1) * 60 - now) + 1)
        raise fail(
            429,
            f"this token made more than {limit} requests this minute: try again in {wait} s",
            retry_after=wait,
        )
