"""Moving a Run between states: the checks in states.py plus the bookkeeping that goes with it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Connection, DateTime, cast, func, select, text
from sqlalchemy.orm import Session, scoped_session

from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.runs import Run, RunLogLine
from webapp.rules.states import RunState, check_transition

# session.info: the runs whose work ended in the session's transaction (followups counts them for
# /metrics once it commits; a rollback forgets them)
ENDED = "conveyor.ended_runs"


def move(run: Run, target: RunState, *, note: str | None = None, at: datetime | None = None) -> None:
    """Move `run` to `target` (refusing illegal moves) and keep its times and monitor flag
    (`at`: when the move happened, if not now)."""
    check_transition(run.state, target)
    if (target.is_finished or target is RunState.COLLECTING) and run.state is not RunState.COLLECTING:
        db.session.info.setdefault(ENDED, []).append(run)
    now = at or utcnow()
    if target in (RunState.INITIALIZING, RunState.PROCESSING) and run.started_at is None:
        run.started_at = run.sort_at = now
    if target.is_finished:
        run.finished_at = now
    if target is RunState.QUEUED:
        run.finished_at = None
    run.state = target
    run.in_monitor = stays_in_monitor(run)
    if note:
        log(run, note, level="error" if target is RunState.FAILED else "info")


def stays_in_monitor(run: Run) -> bool:
    """Active and pending runs, failed ones, and results not yet downloaded stay in the monitor."""
    if not run.state.is_finished:
        return True
    if run.state is RunState.FAILED:
        return True
    return run.has_result and run.downloaded_at is None


def log(run: Run, message: str, *, level: str = "info") -> None:
    """Add a line to the run's log (written with the next commit)."""
    db.session.add(RunLogLine(run_id=run.id, message=message, level=level))


# SQLite's 'now' to the millisecond (CURRENT_TIMESTAMP has whole seconds, as text); PostgreSQL's
# clock_timestamp() (now() stays at the start of the transaction), as UTC without a zone
_SQLITE_NOW = text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
_POSTGRESQL_NOW_VALUE = cast(func.timezone("UTC", func.clock_timestamp()), DateTime)
_POSTGRESQL_NOW = select(_POSTGRESQL_NOW_VALUE)


def db_now(through: Connection | Session | scoped_session[Session] | None = None) -> datetime:
    """The database's current time as a naive UTC datetime: the one clock that every machine of
    the deployment writes heartbeats with and compares them against (their own clocks may be
    off). Read through the session, or `through` a connection (a heartbeat thread's)."""
    executor = db.session if through is None else through
    dialect = (executor if isinstance(executor, Connection) else executor.get_bind()).dialect
    if dialect.name == "sqlite":
        return datetime.fromisoformat(executor.execute(_SQLITE_NOW).scalar_one())
    return executor.execute(_POSTGRESQL_NOW).scalar_one()


def db_now_value() -> datetime | ColumnElement[datetime]:
    """What to store as "now" by the database's clock (db_now) through the session: on
    PostgreSQL the SQL that reads it, evaluated by the statement that stores it (no round trip
    of its own, once a batch of an import); on SQLite the time itself."""
    if db.session.get_bind().dialect.name == "sqlite":
        return db_now()
    return _POSTGRESQL_NOW_VALUE
