"""Since when the job queue (Redis) has been unreachable, as every process sees it: the first
process to notice writes the time, the first to see Redis answer again clears it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from webapp.engine import queueing
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.settings import AccountSettings

_seen_down = {"value": False}


def queue_down_since() -> datetime | None:
    """When the job queue became unreachable, or None while it answers (a PING every few
    seconds per process; the database is read or written only while it is down or on a change)."""
    if queueing.queue_reachable():
        if _seen_down["value"]:
            _seen_down["value"] = False
            _record(None)
        return None
    if not _seen_down["value"]:
        _seen_down["value"] = True
        _record(utcnow())
    settings = db.session.get(AccountSettings, 1)
    return (settings.queue_down_since if settings else None) or utcnow()


def clear_if_back() -> None:
    """The scheduler's check: a recorded outage is cleared once Redis answers again, even if
    every process that saw it has exited since (so the next outage records its own start)."""
    settings = db.session.get(AccountSettings, 1)
    if settings is not None and settings.queue_down_since is not None and queueing.queue_reachable(max_age=0):
        _record(None)


def _record(since: datetime | None) -> None:
    """Write the start of an outage (only if none is recorded) or clear it."""
    try:
        AccountSettings.get()
        table = AccountSettings.__table__
        statement = update(table).where(table.c.id == 1)
        if since is not None:
            statement = statement.where(table.c.queue_down_since.is_(None))
        db.session.execute(statement.values(queue_down_since=since))
        db.session.commit()
    except Exception:  # a page must render even if this bookkeeping cannot be written
        db.session.rollback()
