"""What /healthz reports: each part of the deployment this web server depends on, answering or not."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import text

from webapp import metrics
from webapp.engine import queueing
from webapp.extensions import db


def database_answers() -> bool:
    """Whether the database answers a query now."""
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:
        db.session.rollback()
        return False


def health() -> dict[str, Any]:
    """{database, redis, workers: {lane: live workers}, scheduler_heartbeat_age_seconds, ok}: ok
    when the database and Redis answer and the scheduler's last pass is recent."""
    database = database_answers()
    redis = queueing.queue_reachable(max_age=0)
    workers: dict[str, int] | None = None
    age: float | None = None
    if redis:
        try:
            workers = {lane: queueing.live_workers(lane) for lane in queueing.LANES}
            age = metrics.read(queueing.redis_connection(), current_app.config["QUEUE_NAME"]).scheduler_age
        except queueing.UNREACHABLE:  # it went away between the PING and these
            redis = False
    fresh = age is not None and age <= current_app.config["SCHEDULER_STALE_SECONDS"]
    return {
        "database": database,
        "redis": redis,
        "workers": workers,
        "scheduler_heartbeat_age_seconds": round(age, 3) if age is not None else None,
        "ok": database and redis and fresh,
    }
