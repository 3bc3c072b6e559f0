"""Fast batched SQL for job types: the driver's executemany, portable across SQLite and PostgreSQL."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from webapp.extensions import db


def _sql(statement: str) -> str:
    """Write statements with '?' placeholders; switch to '%s' for format-style drivers."""
    style = db.session.get_bind().dialect.paramstyle
    return statement if style == "qmark" else statement.replace("?", "%s")


def execute(statement: str, params: Sequence[Any]) -> None:
    """Run one statement with positional parameters in the current transaction."""
    db.session.connection().exec_driver_sql(_sql(statement), tuple(params))


def executemany(statement: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run one statement for many parameter rows in the current transaction."""
    if rows:
        db.session.connection().exec_driver_sql(_sql(statement), list(rows))


def fetchall(statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run a query with positional parameters and return its rows as the driver's tuples."""
    cursor = db.session.connection().connection.cursor()
    try:
        cursor.execute(_sql(statement), tuple(params))
        return cursor.fetchall()
    finally:
        cursor.close()


@contextmanager
def rare_collections(threshold: int = 50_000) -> Iterator[None]:
    """Run the cyclic garbage collector rarely while the block allocates rows by the million:
    a batch of rows outlives many default collections and each one would scan it again."""
    thresholds = gc.get_threshold()
    gc.set_threshold(threshold, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


@contextmanager
def sqlite_page_cache(kib: int) -> Iterator[None]:
    """On SQLite, give this session's connection a page cache of `kib` KiB while the block runs
    (the default 2 MB holds too little of a large index); elsewhere do nothing."""
    if db.session.get_bind().dialect.name != "sqlite":
        yield
        return
    connection = db.session.connection()
    previous = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = {-kib}")
    try:
        yield
    finally:
        if db.session.is_active:  # after a database error the runner rolls back first
            db.session.connection().exec_driver_sql(f"PRAGMA cache_size = {previous}")


def placeholders(count: int) -> str:
    """'?, ?, ?' for an IN list."""
    return ", ".join("?" * count)


def timestamp(moment: datetime) -> str:
    """A naive UTC instant in the text form both SQLite (as SQLAlchemy stores it) and PostgreSQL read."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
