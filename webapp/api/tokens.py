"""Issuing, checking and revoking personal API tokens. A request to /api/v1 that carries
`Authorization: Bearer <token>` is that token's user's for the request (Flask-Login's request
loader): every permission rule of the screens applies to it unchanged."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from webapp import audit
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.tokens import ApiToken
from webapp.models.users import User

PREFIX = "cvy_"  # says what the secret is when it turns up in a log or a repository
API_PATH = "/api/v1/"
_TOKEN_KEY = "conveyor.api_token"  # kept with the request itself, never beyond it
USE_NOTED_EVERY = timedelta(minutes=1)  # how stale a token's "last used" may get
# a token with its user, by its secret's hash: one query, built once (every API request runs it)
_BY_HASH = (
    select(ApiToken).options(joinedload(ApiToken.user)).where(ApiToken.secret_hash == bindparam("hash"))
)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(user: User, name: str, *, read_only: bool, expires_at: datetime | None) -> tuple[ApiToken, str]:
    """A new token of `user` and its secret, which is shown once and never stored (audited)."""
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=secret[: len(PREFIX) + 6],
        secret_hash=_hash(secret),
        read_only=read_only,
        expires_at=expires_at,
    )
    db.session.add(token)
    db.session.flush()
    access = "read-only" if read_only else "read-write"
    audit.record("api_token.created", token, detail=f"{name} ({access})", actor=user, owner_id=user.id)
    return token, secret


def revoke(token: ApiToken, by: User) -> None:
    """End the token at once (audited)."""
    token.revoked_at = utcnow()
    audit.record("api_token.revoked", token, detail=token.name, actor=by, owner_id=token.user_id)


def bearer_secret() -> str | None:
    """The token a request carries (`Authorization: Bearer …`), if any."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


def load_user_from_request(_request: object) -> User | None:
    """Flask-Login's request loader: the user of a usable token sent to /api/v1 (only there: a
    page of the screens never signs anyone in from a header). Its use is noted; the first use
    from an address it was not last used from is audited."""
    if not request.path.startswith(API_PATH):
        return None
    secret = bearer_secret()
    if secret is None:
        return None
    token = db.session.execute(_BY_HASH, {"hash": _hash(secret)}).scalar()
    now = utcnow()
    if token is None or not token.usable(now):
        return None
    ip = audit.client_ip()[:64]
    if token.last_used_ip != ip:
        audit.record(
            "api_token.used",
            token,
            detail=f"{token.name}, from a new address",
            actor=token.user,
            owner_id=token.user_id,
            commit=False,
        )
    # a write (and a commit) only for a new address or a last use noted over a minute ago: a
    # script polling a run would otherwise write the token's row on every request
    if token.last_used_ip != ip or token.last_used_at is None or now - token.last_used_at >= USE_NOTED_EVERY:
        token.last_used_at, token.last_used_ip = now, ip
        db.session.commit()
    request.environ[_TOKEN_KEY] = token
    return token.user


def current_token() -> ApiToken | None:
    """The token this request was signed in with (None: a browser session)."""
    return request.environ.get(_TOKEN_KEY)
