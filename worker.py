"""Runs an RQ worker for Conveyor's queues with the app's config
(python worker.py [--lane data|email|all] [--burst] [--name NAME])."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import time

from flask import current_app
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Worker
from rq.job import Job
from rq.queue import Queue

from webapp import create_app
from webapp.config import MissingIdentity
from webapp.engine import queueing
from webapp.engine.runner import warm_up
from webapp.extensions import db
from webapp.launcher import die_with_parent

log = logging.getLogger("conveyor.worker")
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
MAX_BACKOFF = 30.0
STEADY_AFTER = 60.0  # a worker that stayed up this long starts its back-off afresh


class LaneWorker(Worker):
    """RQ's forking worker whose work horse never outlives it: the horse asks the kernel for
    SIGKILL when its worker dies, so a killed worker cannot leave a horse writing on its own."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.worker_pid = os.getpid()  # the process that forks the horses
        self.stop_asked = False

    def request_stop(self, signum, frame) -> None:
        """SIGTERM/SIGINT: RQ's warm shutdown, remembered so the retry loop ends too."""
        self.stop_asked = True
        super().request_stop(signum, frame)

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        """The horse's entry point: bound to its worker's life first, then RQ's own."""
        die_with_parent(signal.SIGKILL)
        if os.getppid() != self.worker_pid:  # the worker died between the fork and the line above
            os._exit(1)
        super().main_work_horse(job, queue)


def wait_for_horse(worker: Worker | None) -> None:
    """After the work loop broke off, let a horse that is still running finish its run."""
    pid = getattr(worker, "_horse_pid", 0) if worker is not None else 0
    if not pid:
        return
    log.warning("waiting for the run in work horse %d to end", pid)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def work(lane: str, *, burst: bool = False, name: str | None = None) -> None:
    """Work the lane's queues until stopped; while Redis is unreachable, retry with back-off
    instead of exiting (RQ's own loop gives up on a Redis error outside its dequeue). A worker
    given a name takes it over from a dead worker's registration (queueing.claim_worker_name),
    also when it starts again itself after an outage."""
    dead_after = current_app.config["DEAD_AFTER_SECONDS"]
    beat = queueing.worker_beat_seconds(dead_after)
    delay, warmed = 1.0, False
    while True:
        began, worker = time.monotonic(), None
        try:
            if not warmed:
                warm_up()  # also dispatches waiting runs: needs Redis
                warmed = True
            if name and not queueing.claim_worker_name(name, dead_after):
                raise SystemExit(
                    f"worker: a live worker named {name!r} is already registered (its heartbeat is "
                    f"less than {dead_after:g} s old); stop it first or choose another --name"
                )
            worker = LaneWorker(
                queueing.lane_queues(lane),
                connection=queueing.redis_connection(),
                name=name,
                # its registration is refreshed every `beat` s, idle or busy, so another machine
                # can tell a dead one from a live one by the heartbeat's age
                worker_ttl=beat + 15,
                job_monitoring_interval=beat,
            )
            worker.work(burst=burst, with_scheduler=False)
            if burst or worker.stop_asked:
                return
        except REDIS_DOWN:
            pass
        finally:
            # RQ's signal handlers belong to the worker that just ended: from here until the
            # next one starts, SIGTERM/SIGINT stop this process as usual
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if worker is not None:
                with contextlib.suppress(Exception):
                    worker.unsubscribe()
            wait_for_horse(worker)
            db.session.remove()  # a warm-up cut off half-way leaves no transaction open
        if time.monotonic() - began >= STEADY_AFTER:
            delay = 1.0
        if queueing.queue_reachable(max_age=0):
            log.warning("the worker stopped after an error; restarting in %g s", delay)
        else:
            log.warning("job queue unreachable; retrying in %g s", delay)
        time.sleep(delay)
        delay = min(MAX_BACKOFF, delay * 2)


def main() -> None:
    """Build the app, then work the lane's run queues until stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--lane",
        choices=("all", *queueing.LANES),
        default="all",
        help="which runs to work: data jobs, email sends, or both (default)",
    )
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: a random id)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    try:
        app = create_app({"MIGRATIONS": False})  # a worker never changes the schema
    except MissingIdentity as problem:
        raise SystemExit(f"worker: {problem.message}") from None
    with app.app_context(), contextlib.suppress(KeyboardInterrupt):
        work(args.lane, burst=args.burst, name=args.name)


if __name__ == "__main__":
    main()
