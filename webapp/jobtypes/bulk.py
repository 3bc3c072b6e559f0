"""Fast batched SQL for job types: the driver's executemany, portable across SQLite and PostgreSQL,
and a thread that writes one batch while the next is prepared."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, cast

from webapp.extensions import db


def _sql(statement: str) -> str:
    """Write statements with '?' placeholders; switch to '%s' for format-style drivers."""
    style = db.session.get_bind().dialect.paramstyle
    return statement if style == "qmark" else statement.replace("?", "%s")


def dialect() -> str:
    """The session's database: 'sqlite' or 'postgresql'."""
    return db.session.get_bind().dialect.name


def driver_connection() -> Any:
    """The driver's own connection under the session, in the session's open transaction (psycopg's
    for COPY)."""
    return db.session.connection().connection.driver_connection


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


class WriteBehind:
    """One write at a time in a thread of its own, while the caller prepares the next: the
    database stores one batch while Python reads and validates the following one.

    The write gets everything it needs as arguments (a driver connection, never the session);
    the caller leaves the session alone until result() returned, and leaving the block waits
    for the write in progress, so a rollback never meets a connection still busy.

    While the block runs, a thread that wants Python's GIL gets it after SWITCH_SECONDS instead
    of the default 5 ms: the writer wants it back each time the database answers (a few times
    a batch) while the caller's thread holds it, busy in Python; on a 1M-row import into
    PostgreSQL the writer waited ~1 s in all, ~0.3 s with 0.2 ms (bench/import_bench.py)."""

    SWITCH_SECONDS = 0.0002

    def __enter__(self) -> WriteBehind:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-behind")
        self._pending: Future[Any] | None = None
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(self.SWITCH_SECONDS)
        return self

    def start(self, write: Callable[..., Any], *args: Any) -> None:
        """Start write(*args) in the thread; the one before must have been collected."""
        if self._pending is not None:
            raise RuntimeError("the previous write was not collected")
        self._pending = self._pool.submit(write, *args)

    def result(self) -> Any:
        """Wait for the write in progress and return its result (None when there is none); its
        exception, if it failed."""
        pending, self._pending = self._pending, None
        return None if pending is None else pending.result()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                self.result()
            elif self._pending is not None:
                wait([self._pending])  # its own failure, if any, is not the one to report
        finally:
            self._pool.shutdown(wait=True)
            sys.setswitchinterval(self._switch)


def placeholders(count: int) -> str:
    """'?, ?, ?' for an IN list."""
    return ", ".join("?" * count)


def timestamp(moment: datetime) -> str:
    """A naive UTC instant in the text form both SQLite (as SQLAlchemy stores it) and PostgreSQL read."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
