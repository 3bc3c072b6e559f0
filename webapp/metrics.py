"""Deployment-wide tallies for /metrics (webapp/ops): one Redis hash per deployment, so every
process on every machine adds to the same numbers and a scrape of any web server reads them all.
The engine adds at one place each: a run's end (engine/followups.py, once its transaction
commits), the reconciler's pass and the scheduler's pass. Gauges (runs by state, queue depth,
workers) are read from the database and Redis at scrape time instead."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from redis import Redis

# upper bounds, in seconds, of the run duration histogram's buckets (then +Inf)
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
RETRIED_KEPT_SECONDS = 90 * 24 * 3600  # how long what was counted of a failed run is remembered
SEPARATOR = "|"

# Rows and messages are counted when a run ends; a failed run may be retried and carry on from
# its checkpoint, so what was counted of it is remembered and only the difference counted the
# next time it ends. KEYS[1]: the tallies; KEYS[2]: what was counted of this run. ARGV[1]: 1 to
# remember (the run failed), ARGV[2]: for how long; then field, amount so far, field, ...
_COUNT_SO_FAR = """
for i = 3, #ARGV, 2 do
  local before = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  local now = tonumber(ARGV[i + 1])
  if now > before then redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], now - before) end
  if ARGV[1] == '1' then redis.call('HSET', KEYS[2], ARGV[i], math.max(now, before)) end
end
if ARGV[1] == '1' then redis.call('EXPIRE', KEYS[2], ARGV[2]) else redis.call('DEL', KEYS[2]) end
return 1
"""


@dataclass(frozen=True)
class EndedRun:
    """What is counted of a run whose work ended (completed, failed, cancelled, skipped, or an
    email run whose sending ended and whose collecting began)."""

    run_id: int
    job_type: str
    state: str
    seconds: float | None  # how long it ran (None: it never started)
    rows: int = 0  # records processed so far
    sent: int = 0  # messages sent so far
    may_be_retried: bool = False


@dataclass
class Histogram:
    """One run duration histogram: cumulative counts per upper bound, then sum and count."""

    buckets: list[tuple[float, float]]
    total: float
    count: float


@dataclass
class Tallies:
    """Everything the tallies hash holds, read at once."""

    runs_ended: dict[tuple[str, str], float] = field(default_factory=dict)
    rows: dict[str, float] = field(default_factory=dict)
    sent: dict[str, float] = field(default_factory=dict)
    durations: dict[str, Histogram] = field(default_factory=dict)
    reconciler: dict[str, float] = field(default_factory=dict)
    scheduler_lag: float | None = None
    scheduler_age: float | None = None  # seconds since the scheduler's last pass (Redis's clock)


def tallies_key(deployment: str) -> str:
    """The Redis hash of a deployment's tallies (`deployment`: its queue name)."""
    return f"conveyor:tallies:{deployment}"


def _field(*parts: str) -> str:
    return SEPARATOR.join(parts)


def _bound(bound: float) -> str:
    """A bucket's upper bound as stored in the hash: '60', '+Inf'."""
    return "+Inf" if bound == math.inf else f"{bound:g}"


def _bucket(seconds: float) -> str:
    """The histogram bucket a duration falls in (its upper bound, as stored)."""
    return _bound(next((bound for bound in DURATION_BUCKETS if seconds <= bound), math.inf))


def count_ended(redis: Redis, deployment: str, runs: Iterable[EndedRun]) -> None:
    """Add runs whose work ended: one per type and state, their duration, and the rows
    processed and messages sent since they were last counted (one round trip)."""
    key = tallies_key(deployment)
    count_so_far = redis.register_script(_COUNT_SO_FAR)
    with redis.pipeline(transaction=False) as pipeline:
        for run in runs:
            pipeline.hincrby(key, _field("ended", run.job_type, run.state), 1)
            if run.seconds is not None:
                seconds = max(0.0, run.seconds)
                pipeline.hincrby(key, _field("duration_bucket", run.job_type, _bucket(seconds)), 1)
                pipeline.hincrbyfloat(key, _field("duration_sum", run.job_type), seconds)
                pipeline.hincrby(key, _field("duration_count", run.job_type), 1)
            amounts: list[str | int] = []
            for name, amount in (("rows", run.rows), ("sent", run.sent)):
                if amount > 0:
                    amounts += [_field(name, run.job_type), amount]
            if amounts:
                count_so_far(
                    keys=[key, f"conveyor:counted:{deployment}:{run.run_id}"],
                    args=[int(run.may_be_retried), RETRIED_KEPT_SECONDS, *amounts],
                    client=pipeline,
                )
        pipeline.execute()


def count_actions(redis: Redis, deployment: str, actions: Mapping[str, int]) -> None:
    """Add what the reconciler did in one pass ({"failed": 1, "redispatched": 0, ...})."""
    done = {name: number for name, number in actions.items() if number}
    if done:
        with redis.pipeline(transaction=False) as pipeline:
            for name, number in done.items():
                pipeline.hincrby(tallies_key(deployment), _field("reconciler", name), number)
            pipeline.execute()


def scheduler_passed(redis: Redis, deployment: str, lag: float | None = None) -> None:
    """The scheduler's heartbeat (Redis's time, one clock for every machine), with its lag when
    this pass measured one."""
    seconds, micros = redis.time()
    values: dict[str, float] = {"scheduler_beat": seconds + micros / 1e6}
    if lag is not None:
        values["scheduler_lag"] = lag
    redis.hset(tallies_key(deployment), mapping=values)  # type: ignore[arg-type]


def scheduler_age(redis: Redis, deployment: str) -> float | None:
    """Seconds since the scheduler's last pass (Redis's clock), or None if it never passed."""
    with redis.pipeline(transaction=False) as pipeline:
        pipeline.hget(tallies_key(deployment), "scheduler_beat")
        pipeline.time()
        beat, (seconds, micros) = pipeline.execute()
    return None if beat is None else max(0.0, seconds + micros / 1e6 - float(beat))


def read(redis: Redis, deployment: str) -> Tallies:
    """The deployment's tallies, for a scrape (one round trip)."""
    with redis.pipeline(transaction=False) as pipeline:
        pipeline.hgetall(tallies_key(deployment))
        pipeline.time()
        raw, (seconds, micros) = pipeline.execute()
    tallies = Tallies()
    buckets: dict[str, dict[str, float]] = defaultdict(dict)
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, float] = defaultdict(float)
    for name, text in raw.items():
        parts, value = (name.decode() if isinstance(name, bytes) else name).split(SEPARATOR), float(text)
        kind = parts[0]
        if kind == "ended" and len(parts) == 3:
            tallies.runs_ended[(parts[1], parts[2])] = value
        elif kind in ("rows", "sent") and len(parts) == 2:
            getattr(tallies, kind)[parts[1]] = value
        elif kind == "duration_bucket" and len(parts) == 3:
            buckets[parts[1]][parts[2]] = value
        elif kind == "duration_sum" and len(parts) == 2:
            sums[parts[1]] = value
        elif kind == "duration_count" and len(parts) == 2:
            counts[parts[1]] = value
        elif kind == "reconciler" and len(parts) == 2:
            tallies.reconciler[parts[1]] = value
        elif kind == "scheduler_lag":
            tallies.scheduler_lag = value
        elif kind == "scheduler_beat":
            tallies.scheduler_age = max(0.0, seconds + micros / 1e6 - value)
    for job_type in set(buckets) | set(counts):
        cumulative, running = [], 0.0
        for bound in (*DURATION_BUCKETS, math.inf):
            running += buckets[job_type].get(_bound(bound), 0.0)
            cumulative.append((bound, running))
        tallies.durations[job_type] = Histogram(cumulative, sums[job_type], counts[job_type])
    return tallies
