"""Since when the job queue (Redis) has been unreachable, as every process sees it: the first
process to notice writes the time, the first to see Redis answer again clears it."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import update

from webapp import metrics
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


SCHEDULER_LOOKED_AT = 10.0  # seconds a process goes by its last look at the scheduler's heartbeat
_scheduler_seen: dict[str, tuple[float, datetime | None]] = {}


def scheduler_silent_since() -> datetime | None:
    """When the scheduler last passed, if that is longer ago than SCHEDULER_STALE_SECONDS (it is
    not running: planned runs wait, and a run whose worker died is not failed); None while it
    passes, while Redis is down (that banner says more), or before it ever passed. One look at
    Redis every SCHEDULER_LOOKED_AT seconds per process."""
    deployment = current_app.config["QUEUE_NAME"]
    looked = _scheduler_seen.get(deployment)
    if looked is not None and time.monotonic() - looked[0] < SCHEDULER_LOOKED_AT:
        return looked[1]
    since = None
    if queueing.queue_reachable():
        try:
            age = metrics.scheduler_age(queueing.redis_connection(), deployment)
        except queueing.UNREACHABLE:
            age = None
        if age is not None and age > current_app.config["SCHEDULER_STALE_SECONDS"]:
            since = utcnow() - timedelta(seconds=age)
    _scheduler_seen[deployment] = (time.monotonic(), since)
    return since
