"""Workers on many machines: a worker started again under the name of one that was killed starts
at once; a live worker keeps its name; heartbeats are the database's time, compared with the
database's time, however wrong a machine's own clock is."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from rq import Worker
from rq.utils import utcformat

from tests.conftest import export_job, fresh, import_job
from tests.test_worker_processes import kill_tree, start_worker, stop_group, wait_for
from webapp.engine import queueing
from webapp.engine.reconciler import reconcile
from webapp.engine.runner import Heartbeat
from webapp.engine.runs import new_run, start_run
from webapp.engine.transitions import db_now
from webapp.extensions import db
from webapp.models import base
from webapp.rules.states import RunState


def registration(name: str) -> dict[str, str]:
    """The worker's registration in Redis, as text."""
    raw = queueing.redis_connection().hgetall(Worker.redis_worker_namespace_prefix + name)
    return {key.decode(): value.decode() for key, value in raw.items()}


def registered_pid(name: str) -> int | None:
    pid = registration(name).get("pid")
    return int(pid) if pid else None


def test_a_worker_started_again_under_the_name_of_a_killed_one_starts_at_once(app, users, tmp_path):
    name = f"w2-{uuid.uuid4().hex[:6]}"
    rows = 30000
    path = tmp_path / "big.csv"
    with open(path, "w") as out:
        out.write("email,first_name\n")
        out.writelines(f"person{i}@example.org,P{i}\n" for i in range(rows))
    held = start_run(import_job(users["user"], path, ["email", "first_name"]), users["user"])
    first = start_worker(app, tmp_path, "--name", name)
    second = None
    try:
        wait_for(lambda: fresh(held).progress_done >= 300)
        old_pid = registered_pid(name)
        assert old_pid == first.pid
        kill_tree(first.pid)  # SIGKILL: no chance to unregister
        first.wait(10)
        assert registered_pid(name) == old_pid, "RQ's registration should outlive a killed worker"
        assert "death" not in registration(name)

        second = start_worker(app, tmp_path, "--name", name)
        began = time.monotonic()
        wait_for(lambda: registered_pid(name) == second.pid, timeout=20)
        assert time.monotonic() - began < 15  # at once, not when the registration expires
        assert second.poll() is None, "the second worker exited instead of taking the name"
        registered = {key.decode() for key in queueing.redis_connection().smembers(Worker.redis_workers_keys)}
        assert Worker.redis_worker_namespace_prefix + name in registered

        # the run the killed worker held is the reconciler's to fail, in its plain words
        assert fresh(held).state is RunState.PROCESSING
        app.config["DEAD_AFTER_SECONDS"] = 1.0
        wait_for(lambda: reconcile()["failed"] == 1 or fresh(held).state is RunState.FAILED, timeout=10)
        assert fresh(held).error.startswith("the worker running this job stopped at ")

        # and the worker under the taken-over name works the next run
        run = start_run(export_job(users["user"]), users["user"])
        wait_for(lambda: fresh(run).state is RunState.COMPLETED, timeout=30)
    finally:
        stop_group(first)
        if second is not None:
            stop_group(second)
    log = (tmp_path / "worker.log").read_text()
    assert f"worker {name}: removed the registration of a dead worker of that name" in log
    assert "There exists an active worker" not in log


def test_a_second_worker_under_the_name_of_a_live_one_says_so_and_exits(app, tmp_path):
    name = f"live-{uuid.uuid4().hex[:6]}"
    first = start_worker(app, tmp_path, "--name", name)
    try:
        wait_for(lambda: registered_pid(name) == first.pid, timeout=30)
        second = start_worker(app, tmp_path, "--name", name)
        assert second.wait(60) != 0
        assert registered_pid(name) == first.pid and first.poll() is None
    finally:
        stop_group(first)
    assert f"a live worker named {name!r} is already registered" in (tmp_path / "worker.log").read_text()


def fake_registration(name: str, *, hostname: str, pid: int, beat_age: float) -> str:
    """A worker's registration as RQ writes it, left by a worker on `hostname`."""
    key = Worker.redis_worker_namespace_prefix + name
    beat = datetime.now(UTC) - timedelta(seconds=beat_age)
    queue = queueing.run_queue("data").name
    connection = queueing.redis_connection()
    connection.hset(
        key,
        mapping={"pid": pid, "hostname": hostname, "last_heartbeat": utcformat(beat), "queues": queue},
    )
    connection.expire(key, 600)
    connection.sadd(Worker.redis_workers_keys, key)
    connection.sadd(f"rq:workers:{queue}", key)
    return key


@pytest.mark.parametrize(
    ("hostname", "pid", "beat_age", "claimed"),
    [
        ("another-machine", 1, 120.0, True),  # no heartbeat for longer than the dead-after limit
        ("another-machine", 1, 3.0, False),  # alive over there: its name stays taken
        ("this machine", 0, 3.0, True),  # on this host and its process is gone (pid filled below)
        ("this machine", os.getppid(), 3.0, False),  # on this host and its process runs
    ],
)
def test_a_name_is_taken_over_only_from_a_dead_worker(app, hostname, pid, beat_age, claimed):
    import socket
    import subprocess
    import sys

    if hostname == "this machine":
        hostname = socket.gethostname()
    if pid == 0:
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        pid = gone.pid
    name = f"fake-{uuid.uuid4().hex[:6]}"
    key = fake_registration(name, hostname=hostname, pid=pid, beat_age=beat_age)
    assert queueing.claim_worker_name(name, dead_after=30.0) is claimed
    connection = queueing.redis_connection()
    assert bool(connection.exists(key)) is not claimed
    queue = queueing.run_queue("data").name
    assert bool(connection.sismember(f"rq:workers:{queue}", key)) is not claimed
    assert queueing.live_workers("data") == (0 if claimed else 1)
    connection.delete(key)


def test_a_name_nobody_holds_is_free(app):
    assert queueing.claim_worker_name(f"nobody-{uuid.uuid4().hex[:6]}", dead_after=30.0)


def test_the_database_clock_is_read_to_the_millisecond_as_naive_utc(app):
    first = db_now()
    time.sleep(0.05)
    second = db_now()
    assert first.tzinfo is None and second.tzinfo is None
    assert timedelta(milliseconds=30) < second - first < timedelta(seconds=2)
    assert abs(second - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=5)


@pytest.fixture
def skewed_clock(monkeypatch):
    """This process's clock off by `skew` (what utcnow() returns everywhere), the database's not."""

    def skew(by: timedelta) -> None:
        class Skewed(datetime):
            @classmethod
            def now(cls, tz=None):  # type: ignore[override]
                return datetime.now(tz) + by

        monkeypatch.setattr(base, "datetime", Skewed)
        assert abs(base.utcnow() - datetime.now(UTC).replace(tzinfo=None) - by) < timedelta(seconds=1)

    return skew


def processing_run(users, heartbeat_at: datetime):
    run = new_run(export_job(users["user"]), users["user"], RunState.PROCESSING, trigger="manual")
    run.started_at = heartbeat_at - timedelta(minutes=1)
    run.heartbeat_at = heartbeat_at
    db.session.commit()
    return run


def test_the_reconciler_compares_heartbeats_with_the_database_clock(app, users, skewed_clock):
    alive = processing_run(users, db_now())  # a worker wrote the database's time just now
    dead = processing_run(users, db_now() - timedelta(minutes=2))
    skewed_clock(timedelta(minutes=10))  # the scheduler's machine runs 10 minutes fast
    assert reconcile()["failed"] == 1
    assert fresh(alive).state is RunState.PROCESSING
    assert fresh(dead).state is RunState.FAILED


def test_a_heartbeat_is_the_database_time_whatever_the_worker_clock(app, users, skewed_clock):
    run = processing_run(users, db_now() - timedelta(hours=1))
    skewed_clock(timedelta(minutes=-10))  # the worker's machine runs 10 minutes slow
    heartbeat = Heartbeat(db.engine, run.id, 0.05)
    heartbeat.start()
    try:
        wait_for(lambda: fresh(run).heartbeat_at > db_now() - timedelta(seconds=5), timeout=10)
    finally:
        heartbeat.stopped.set()
        heartbeat.join(5)
    assert abs(fresh(run).heartbeat_at - db_now()) < timedelta(seconds=5)
    assert reconcile()["failed"] == 0
