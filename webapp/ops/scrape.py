"""The /metrics collector: numbers for the whole deployment, however many processes on however
many machines make it up. Gauges are read at scrape time (runs by type and state from one
grouped count, queue depth and live workers from Redis); counters come from the tallies every
process adds to in Redis (webapp/metrics.py). No scrape reads runs one by one."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import current_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select

from webapp import metrics
from webapp.engine import queueing
from webapp.extensions import db
from webapp.models.runs import Run

log = logging.getLogger("conveyor.metrics")
RECONCILER_ACTIONS = ("failed", "redispatched", "armed")


class ConveyorCollector(Collector):
    """Collects Conveyor's metrics for one scrape (inside the request's app context)."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "conveyor_up", "Whether this web server reaches it (1) or not (0)", labels=["component"]
        )
        database = redis = True
        try:
            runs = _runs_by_type_and_state()
        except Exception as problem:  # one line a scrape, not a traceback every 15 s
            db.session.rollback()
            log.warning("/metrics: the database did not answer (%s)", type(problem).__name__)
            database = False
        else:
            yield runs
        if queueing.queue_reachable(max_age=0):
            try:
                families = [*_queue_gauges(), *_tallied()]
            except queueing.UNREACHABLE:
                redis = False
            else:
                yield from families
        else:
            redis = False
        up.add_metric(["database"], float(database))
        up.add_metric(["redis"], float(redis))
        yield up


def _runs_by_type_and_state() -> GaugeMetricFamily:
    """Runs in the database by job type and state (one grouped count)."""
    family = GaugeMetricFamily("conveyor_runs", "Runs by job type and state", labels=["type", "state"])
    rows = db.session.execute(select(Run.job_type, Run.state, func.count()).group_by(Run.job_type, Run.state))
    for job_type, state, count in rows:
        family.add_metric([job_type, state.value], count)
    return family


def _queue_gauges() -> list[Metric]:
    """Runs waiting on each lane's queue, and the live workers listening to it."""
    depth = GaugeMetricFamily("conveyor_queue_depth", "Jobs waiting on a lane's queue", labels=["lane"])
    workers = GaugeMetricFamily("conveyor_workers", "Live workers listening to a lane", labels=["lane"])
    for lane in queueing.LANES:
        depth.add_metric([lane], queueing.run_queue(lane).count)
        workers.add_metric([lane], queueing.live_workers(lane))
    return [depth, workers]


def _tallied() -> list[Metric]:
    """The deployment's counters, histogram and scheduler gauges, kept in Redis."""
    tallies = metrics.read(queueing.redis_connection(), current_app.config["QUEUE_NAME"])
    ended = CounterMetricFamily(
        "conveyor_runs_ended", "Runs whose work ended, by job type and state", labels=["type", "state"]
    )
    for (job_type, state), count in sorted(tallies.runs_ended.items()):
        ended.add_metric([job_type, state], count)
    rows = CounterMetricFamily("conveyor_rows_processed", "Records processed by data runs", labels=["type"])
    for job_type, count in sorted(tallies.rows.items()):
        rows.add_metric([job_type], count)
    sent = CounterMetricFamily("conveyor_messages_sent", "Messages sent by email runs", labels=["type"])
    for job_type, count in sorted(tallies.sent.items()):
        sent.add_metric([job_type], count)
    durations = HistogramMetricFamily(
        "conveyor_run_duration_seconds", "How long runs ran, from start to end", labels=["type"]
    )
    for job_type, histogram in sorted(tallies.durations.items()):
        durations.add_metric(
            [job_type],
            [(floatToGoString(bound), count) for bound, count in histogram.buckets],
            sum_value=histogram.total,
        )
    actions = CounterMetricFamily(
        "conveyor_reconciler_actions",
        "What the reconciler did: runs failed whose worker died, queued runs dispatched again, "
        "scheduled runs given their timed job",
        labels=["action"],
    )
    for action in RECONCILER_ACTIONS:
        actions.add_metric([action], tallies.reconciler.get(action, 0.0))
    families: list[Metric] = [ended, rows, sent, durations, actions]
    if tallies.scheduler_lag is not None:
        families.append(
            GaugeMetricFamily(
                "conveyor_scheduler_lag_seconds",
                "How late the oldest due timed run was at the scheduler's last firing pass",
                value=tallies.scheduler_lag,
            )
        )
    if tallies.scheduler_age is not None:
        families.append(
            GaugeMetricFamily(
                "conveyor_scheduler_heartbeat_age_seconds",
                "Seconds since the scheduler's last pass",
                value=tallies.scheduler_age,
            )
        )
    return families
