"""One-time set-password links: signed (itsdangerous, the app's secret key and a salt of their
own), carrying the user's id and a fingerprint of the current password hash and email, so a link
expires after SET_PASSWORD_LINK_HOURS and stops working once used or once the password changes.
They are sent to the user's own address; whoever sends one never sees it."""

from __future__ import annotations

import hmac

from flask import current_app, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from webapp.extensions import db
from webapp.mailing.notifications import notify
from webapp.models.users import User

SALT = "conveyor.set-password-link"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def make_token(user: User) -> str:
    """A signed token for `user` that is valid while their password stays as it is."""
    return _serializer().dumps({"u": user.id, "f": user.password_fingerprint()})


def user_for_token(token: str) -> User | None:
    """The active user a token was made for, or None when it is forged, expired, used or
    outdated (the password or address changed since)."""
    if len(token) > 500:
        return None
    max_age = int(current_app.config["SET_PASSWORD_LINK_HOURS"] * 3600)
    try:
        data = _serializer().loads(token, max_age=max_age)
    except BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("f"), str):
        return None
    user = db.session.get(User, data["u"])
    if user is None or not user.active or not hmac.compare_digest(data["f"], user.password_fingerprint()):
        return None
    return user


def send_link(user: User, *, new_account: bool = False) -> bool:
    """Email `user` a set-password link (through the notification path: SMTP or the outbox);
    False when it could not be sent."""
    hours = current_app.config["SET_PASSWORD_LINK_HOURS"]
    link = current_app.config["BASE_URL"].rstrip("/") + url_for("auth.set_password", token=make_token(user))
    opening = (
        "A Conveyor account was created for you."
        if new_account
        else "An admin sent you a link to set a new Conveyor password."
    )
    body = (
        f"Hello {user.display_name},\n\n{opening} Choose your password here:\n\n{link}\n\n"
        f"The link works once and expires in {hours:g} hours. Your sign-in email is "
        f"{user.email}.\nIf you did not expect this message, ignore it: nothing changes.\n"
    )
    subject = "Your Conveyor account" if new_account else "Set your Conveyor password"
    return notify(user.email, subject, body)
