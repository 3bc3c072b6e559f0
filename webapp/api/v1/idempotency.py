"""Idempotency-Key: a POST that starts a run, sent again with the same key (a client's retry
after a timeout, a lost answer), answers the run its first sending started instead of starting
another. Kept per user and per kind of request in Redis for a day; with Redis unreachable the
key is not kept (and the request is taken at its word)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from flask import Response, current_app, jsonify, request
from flask_login import current_user
from redis.exceptions import RedisError

from webapp.api.v1.answers import run_out
from webapp.api.v1.core import fail
from webapp.engine.queueing import redis_connection
from webapp.models.runs import Run
from webapp.permissions import run_or_404

REMEMBERED = 24 * 3600  # seconds an Idempotency-Key answers its first run
PENDING = 15 * 60  # seconds a key is held while its first request is being answered
ONCE = {
    "Idempotency-Key": "up to 255 characters naming this request: the same key sent again within a "
    "day answers its first run (Idempotent-Replayed: true) and starts nothing"
}


def started_once(scope: str, start: Callable[[], Run], status: int = 202) -> Response:
    """`status` (202 Accepted unless told) with the run `start` makes; with an Idempotency-Key
    header, the run that key already started (kept per user for a day in Redis), or a 409 while
    its first request is still being answered. A request that fails frees its key. With Redis
    unreachable the key is not kept."""
    held = _claim(scope)
    if isinstance(held, Run):
        return _answer(held, status, replayed=True)
    try:
        run = start()
    except BaseException:
        _forget(held)
        raise
    _remember(held, run)
    return _answer(run, status)


def _answer(run: Run, status: int, *, replayed: bool = False) -> Response:
    response = jsonify(run_out(run).model_dump(mode="json"))
    response.status_code = status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _claim(scope: str) -> tuple[str, str] | Run | None:
    """The Redis key now held for this request's Idempotency-Key (and the request's
    fingerprint), or the run it started before (None: no key sent, or Redis unreachable). The
    key sent with another request than its first (another query, type, length or JSON body) is
    a 422: answering the first run would drop what this one sent."""
    sent = request.headers.get("Idempotency-Key")
    if sent is None:
        return None
    if not 1 <= len(sent) <= 255 or not sent.isprintable():
        raise fail(400, "Idempotency-Key must be 1 to 255 printable characters")
    digest = hashlib.sha256(sent.encode()).hexdigest()
    name = f"{current_app.config['QUEUE_NAME']}:api-once:{current_user.id}:{scope}:{digest}"
    request_print = _fingerprint()
    try:
        connection = redis_connection()
        if connection.set(name, f"pending {request_print}", nx=True, ex=PENDING):
            return name, request_print
        first = connection.get(name)
    except RedisError as problem:
        current_app.logger.warning("Idempotency-Key not kept: Redis unreachable (%s)", problem)
        return None
    held, _, first_print = (first.decode() if isinstance(first, bytes) else first or "").partition(" ")
    if first_print and not _same_request(first_print, request_print):  # (none: an older version's)
        raise fail(422, "this Idempotency-Key was sent with another request: use a new key for a new request")
    if not held.isdigit():
        raise fail(409, "a request with this Idempotency-Key is still being answered: ask again shortly")
    return run_or_404(int(held))


def _fingerprint() -> str:
    """What tells two requests apart without reading a streamed body: the query, the body's
    type and a JSON body itself (small: read whole anyway), then the body's length ("-": sent
    in chunks, not known)."""
    parts = [
        request.query_string.decode("latin-1"),
        request.content_type or "",
        request.get_data(cache=True).decode("utf-8", "replace") if request.is_json else "",
    ]
    length = request.content_length
    return (
        hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32] + f":{'-' if length is None else length}"
    )


def _same_request(first: str, this: str) -> bool:
    """Whether two fingerprints may be of the same request (a length not known matches any)."""
    first_digest, _, first_length = first.partition(":")
    digest, _, length = this.partition(":")
    return first_digest == digest and (first_length == length or "-" in (first_length, length))


def _remember(held: tuple[str, str] | None, run: Run) -> None:
    if held is not None:
        name, request_print = held
        try:
            redis_connection().set(name, f"{run.id} {request_print}", ex=REMEMBERED)
        except RedisError as problem:
            current_app.logger.warning("Idempotency-Key not kept: Redis unreachable (%s)", problem)


def _forget(held: tuple[str, str] | None) -> None:
    if held is not None:
        try:
            redis_connection().delete(held[0])
        except RedisError:
            pass  # it expires by itself
