"""A form sent again (a browser's Resend, a retried request, a click before the page's script
loaded) told apart from a new click: each rendering of a form that starts something carries a
token of its own (`once_input()` in the template); the first sending claims it, for a day, with
where its answer led, and a second sending of the same token is answered with that. A new
click, from a page rendered anew, has a new token. Kept in Redis, shared by every web server;
with Redis unreachable (or no token sent, e.g. a script) nothing is told apart."""

from __future__ import annotations

import hashlib
import secrets

from flask import current_app, flash, g, redirect, request
from flask_login import current_user
from markupsafe import Markup
from redis.exceptions import RedisError
from werkzeug.wrappers import Response

from webapp.engine.queueing import redis_connection

FIELD = "once"
KEPT = 24 * 3600  # seconds a token is remembered
PENDING = "pending"  # the first sending is still being answered


def once_input() -> Markup:
    """The hidden field that makes this rendering of a form its own (a template global)."""
    return Markup(f'<input type="hidden" name="{FIELD}" value="{secrets.token_urlsafe(16)}">')


def answered() -> str | None:
    """Where the first sending of this form's token led (PENDING while it is answered), if this
    is a second sending; None for a first one, which claims the token (remember() records
    its answer)."""
    token = request.form.get(FIELD, "")
    if not token or len(token) > 64:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    key = f"{current_app.config['QUEUE_NAME']}:form-once:{current_user.id}:{digest}"
    try:
        connection = redis_connection()
        if connection.set(key, PENDING, nx=True, ex=KEPT):
            g.once_key = key
            return None
        first = connection.get(key)
    except RedisError:
        return None
    if first is None:
        return None
    return first.decode() if isinstance(first, bytes) else str(first)


def remember(location: str) -> None:
    """Record where this (first) sending's answer led, for a second sending of its token."""
    key = g.pop("once_key", None)
    if key is None:
        return
    try:
        redis_connection().set(key, location, ex=KEPT)
    except RedisError:
        pass  # a second sending then meets "pending" until the key expires


def forget() -> None:
    """Release this sending's claim when it made nothing (its form was refused): the page
    shown again carries a new token, and this one may be sent again as a first."""
    key = g.pop("once_key", None)
    if key is None:
        return
    try:
        redis_connection().delete(key)
    except RedisError:
        pass


def sent_again(said: str, fallback: str) -> Response | None:
    """The answer to a second sending of this form: where its first led, with `said` (what
    the two sendings made); `fallback` while the first is still being answered. None for a
    first sending, which claims the token (remember() or forget() follows)."""
    first = answered()
    if first is None:
        return None
    flash(said, "info")
    return redirect(first if first != PENDING else fallback)
