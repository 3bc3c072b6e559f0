"""Fast batched SQL for job types: the driver's executemany, portable across SQLite and PostgreSQL."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from webapp.extensions import db


def _sql(statement: str) -> str:
    """Write statements with '?' placeholders; switch to '%s' for format-style drivers."""
    style = db.session.get_bind().dialect.paramstyle
    return statement if style == "qmark" else statement.replace("?", "%s")


def execute(statement: str, params: Sequence[Any]) -> None:
    """Run one statement with positional parameters in the current transaction."""
    db.session.connection().exec_driver_sql(_sql(statement), tuple(params))


def executemany(statement: str, rows: Sequence[Sequence[Any]]) -> int:
    """Run one statement for many parameter rows in the current transaction; the number of
    rows it changed (-1 when the driver cannot tell)."""
    if not rows:
        return 0
    return db.session.connection().exec_driver_sql(_sql(statement), list(rows)).rowcount


def fetchall(statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run a query with positional parameters and return its rows as the driver's tuples."""
    cursor = db.session.connection().connection.cursor()
    try:
        cursor.execute(_sql(statement), tuple(params))
        # DB-API only promises a sequence; sqlite3 and psycopg give a list of tuples
        return cast(list[tuple[Any, ...]], cursor.fetchall())
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
def sqlite_bulk_writes(cache_kib: int, checkpoint_pages: int) -> Iterator[None]:
    """On SQLite, tune this session's connection for a long run of batch writes while the block
    runs: a page cache of `cache_kib` KiB (the default 2 MB holds too little of a large index)
    and a WAL checkpoint every `checkpoint_pages` pages instead of every 1,000 (pages rewritten
    by several batches are copied back to the database file once, not once per batch).
    Elsewhere do nothing."""
    if db.session.get_bind().dialect.name != "sqlite":
        yield
        return
    pragmas = {"cache_size": -cache_kib, "wal_autocheckpoint": checkpoint_pages}
    connection = db.session.connection()
    previous = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in pragmas}
    for name, value in pragmas.items():
        connection.exec_driver_sql(f"PRAGMA {name} = {value}")
    try:
        yield
    finally:
        if db.session.is_active:  # after a database error the runner rolls back first
            connection = db.session.connection()
            for name, old in previous.items():
                connection.exec_driver_sql(f"PRAGMA {name} = {old}")


def placeholders(count: int) -> str:
    """'?, ?, ?' for an IN list."""
    return ", ".join("?" * count)


def timestamp(moment: datetime) -> str:
    """A naive UTC instant in the text form both SQLite (as SQLAlchemy stores it) and PostgreSQL read."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
