"""Signed tokens for open, click and unsubscribe links: a tampered link is refused."""

from __future__ import annotations

import hashlib
import hmac

from itsdangerous import BadSignature, URLSafeSerializer

_SALT = "conveyor-recipient"


def recipient_token(secret: str, run_id: int, recipient_id: int) -> str:
    """A token naming one recipient of one run."""
    return URLSafeSerializer(secret, salt=_SALT).dumps([run_id, recipient_id])


def read_token(secret: str, token: str) -> tuple[int, int] | None:
    """(run id, recipient id) from a token, or None when it was tampered with."""
    try:
        run_id, recipient_id = URLSafeSerializer(secret, salt=_SALT).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(run_id, int) or not isinstance(recipient_id, int):
        return None
    return run_id, recipient_id


def link_signature(secret: str, token: str, url: str) -> str:
    """The signature binding a click link's target URL to its recipient token."""
    digest = hmac.new(secret.encode(), f"{token}|{url}".encode(), hashlib.sha256).hexdigest()
    return digest[:24]


def check_link(secret: str, token: str, url: str, signature: str) -> bool:
    """Whether a click link is exactly as Conveyor wrote it."""
    return hmac.compare_digest(link_signature(secret, token, url), signature)
