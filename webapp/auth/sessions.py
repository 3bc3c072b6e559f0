"""Signed-in sessions. Each carries the session version of its user at sign-in and the time of
its last activity; it is refused once the user's version moved on (sign-out, a new password,
"sign out everywhere else", deactivation) or after SESSION_IDLE_HOURS without activity."""

from __future__ import annotations

import time

from flask import current_app, request, session

from webapp.models.users import User

VERSION_KEY = "_session_version"
SEEN_KEY = "_seen"
REFRESH_SECONDS = 60  # the activity time is rewritten at most once a minute


def start(user: User) -> None:
    """Mark this session as signed in with the user's current session version."""
    session[VERSION_KEY] = user.session_version
    session[SEEN_KEY] = int(time.time())


def keep(user: User) -> None:
    """After the user's sessions were ended (a new password of their own, "sign out everywhere
    else"), keep this one signed in."""
    session[VERSION_KEY] = user.session_version


def _background() -> bool:
    """A poll or fragment fetched by htmx is not a person's activity (an open monitor tab must
    not keep a session alive for ever)."""
    return request.method == "GET" and request.headers.get("HX-Request") == "true"


def is_current(user: User) -> bool:
    """Whether this session may still act for `user` (and note the activity if so)."""
    if not user.active or session.get(VERSION_KEY) != user.session_version:
        return False
    seen, now = session.get(SEEN_KEY), time.time()
    if not isinstance(seen, int | float) or now - seen > current_app.config["SESSION_IDLE_HOURS"] * 3600:
        return False
    if now - seen >= REFRESH_SECONDS and not _background():
        session[SEEN_KEY] = int(now)
    return True
