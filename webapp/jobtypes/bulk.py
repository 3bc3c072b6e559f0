"""Fast batched SQL for job types: the driver's executemany, portable across SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from webapp.extensions import db


def _sql(statement: str) -> str:
    """Write statements with '?' placeholders; switch to '%s' for format-style drivers."""
    style = db.session.get_bind().dialect.paramstyle
    return statement if style == "qmark" else statement.replace("?", "%s")


def executemany(statement: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run one statement for many parameter rows in the current transaction."""
    if rows:
        db.session.connection().exec_driver_sql(_sql(statement), list(rows))


def fetchall(statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run a query with positional parameters and return its rows."""
    result = db.session.connection().exec_driver_sql(_sql(statement), tuple(params))
    return [tuple(row) for row in result]


def placeholders(count: int) -> str:
    """'?, ?, ?' for an IN list."""
    return ", ".join("?" * count)


def timestamp(moment: datetime) -> str:
    """A naive UTC instant in the text form both SQLite (as SQLAlchemy stores it) and PostgreSQL read."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
