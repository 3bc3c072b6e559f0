"""Requests that only read end their transaction with COMMIT instead of the ROLLBACK that closing
the session sends. For the data the two are the same; on PostgreSQL psycopg drops every statement
it prepared on a connection at a rollback, so with COMMIT the monitor's queries, run on every
request, are prepared once per connection instead of parsed and planned again each time.

A request that wrote anything it did not commit (an ORM flush, or an INSERT, UPDATE or DELETE
through the session) still ends with the rollback: nothing half-done is ever kept."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from webapp.extensions import db

_WROTE = "conveyor_wrote"


def _wrote(session: Session, *_args: Any) -> None:
    session.info[_WROTE] = True


def _maybe_wrote(state: ORMExecuteState) -> None:
    if not state.is_select:
        state.session.info[_WROTE] = True


def _forget(session: Session, *_args: Any) -> None:
    session.info.pop(_WROTE, None)


def install(app: Flask) -> None:
    """Watch the app's sessions for writes, and end a request that only read with COMMIT."""
    if not getattr(Session, "_conveyor_watched", False):  # once per process (tests make many apps)
        event.listen(Session, "after_flush", _wrote)
        event.listen(Session, "do_orm_execute", _maybe_wrote)
        event.listen(Session, "after_commit", _forget)
        event.listen(Session, "after_rollback", _forget)
        Session._conveyor_watched = True  # type: ignore[attr-defined]

    @app.teardown_appcontext  # registered after Flask-SQLAlchemy's, so it runs before it
    def _end_read_only(exception: BaseException | None) -> None:
        session = db.session()
        if exception is not None or not session.in_transaction() or session.info.get(_WROTE):
            return
        if session.new or session.dirty or session.deleted:
            return
        try:
            session.commit()
        except Exception:  # the connection went away: closing the session rolls back as before
            session.info.pop(_WROTE, None)
