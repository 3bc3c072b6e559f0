"""Monitor and History latency under load, with a million historical runs.

Fills an embedded-default (SQLite) database under a temporary var dir with --runs historical
runs over --users users plus --running runs in progress, starts the real web server (gunicorn
configured as `make run` does: one single-threaded worker per CPU), logs in as a super admin
through the real login form, checks every page measured answers with what it should show, and
has ApacheBench (`ab`, Debian's apache2-utils: `apt-get install apache2-utils`) make
--clients x --requests requests to each page, --clients at once on keep-alive connections
with the super admin's session cookie. `ab` is a small C program: the load it generates costs
the two cores next to nothing, unlike a Python client.

  monitor       GET /                                    the job monitor
  updates       GET /monitor/updates?ids=...&after=...   its HTMX refresh (HX-Request: true)
  history       GET /history                             History's first page
  history_deep  GET /history?before=<middle id>          a deep History page

Prints p50/p95 per page and, as its last line, one JSON object with the figures.

With --postgres the database is PostgreSQL (a throw-away cluster and redis-server started by
tests/services.py and stopped at the end, or CONVEYOR_DATABASE_URL's and CONVEYOR_REDIS_URL's),
its schema built by the migrations and the same rows loaded with COPY; the web server and the
measurement are the same.

    .venv/bin/python bench/monitor_bench.py                      # full size (1,000,000 runs)
    .venv/bin/python bench/monitor_bench.py --runs 20000 --requests 5   # smoke check
    .venv/bin/python bench/monitor_bench.py --postgres           # the same on PostgreSQL
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from _services import IDENTITY, postgres_services
from common import PASSWORD, ROOT, bench_dir, cpu_seconds, embedded_redis, free_port, migrated_app

ADMIN_EMAIL = "super@bench.example.org"
TARGET_P95_MS = 100.0
TS = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime in SQLite


# --------------------------------------------------------------------------- fill


def create_schema(var_dir: str) -> None:
    """The real schema (Alembic migrations), through the app; fill() adds the rows."""
    os.environ["CONVEYOR_VAR_DIR"] = var_dir
    with migrated_app(var_dir):
        pass


RUN_COLUMNS = (
    "id, job_id, owner_id, started_by_id, job_type, job_name, number, state, trigger, "
    "request_id, created_at, started_at, finished_at, progress_done, progress_total, "
    "checked, created, updated, unchanged, skipped, rejected, checkpoint, result_path, "
    "result_name, downloaded_at, result_deleted_at, error, control, control_at, rq_job_id, "
    "heartbeat_at, in_monitor, sort_at"
)


class SqliteFill:
    """Where fill() writes on the embedded default: plain sqlite3, one transaction, the run
    table's secondary indexes dropped for the bulk insert and rebuilt after it (much faster)."""

    def __init__(self, db_path: str) -> None:
        self.con = sqlite3.connect(db_path, isolation_level=None)  # explicit BEGIN/COMMIT below
        self.con.execute("PRAGMA synchronous=OFF")
        self.con.execute("PRAGMA cache_size=-524288")  # 512 MB while filling
        self.con.execute("PRAGMA temp_store=MEMORY")
        self.insert = f"INSERT INTO run ({RUN_COLUMNS}) VALUES ({', '.join('?' * 33)})"
        self.indexes: list[tuple[str, str]] = []

    def begin(self, users: list[tuple], jobs: list[tuple]) -> None:
        """Write the users and jobs; make the run table ready for runs()."""
        con = self.con
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO user (id, email, name, password_hash, role, active, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            users,
        )
        con.executemany(
            "INSERT INTO job (id, owner_id, job_type, name, params, active, "
            "last_run_number, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            jobs,
        )
        # the UNIQUE constraints' automatic indexes stay
        self.indexes = con.execute(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'run' AND sql IS NOT NULL"
        ).fetchall()
        for name, _sql in self.indexes:
            con.execute(f'DROP INDEX "{name}"')

    def runs(self, rows: list[tuple]) -> None:
        """Write run rows (RUN_COLUMNS)."""
        self.con.executemany(self.insert, rows)

    def finish(self, numbers: list[tuple[int, int]]) -> None:
        """Rebuild the indexes, set each job's last run number (number, job id), commit."""
        con = self.con
        for _name, sql in self.indexes:
            con.execute(sql)
        con.executemany("UPDATE job SET last_run_number = ? WHERE id = ?", numbers)
        con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()


class PostgresFill:
    """Where fill() writes on PostgreSQL: COPY, one transaction, the run table's secondary
    indexes dropped for it and rebuilt after it, the id sequences moved past the rows; then
    VACUUM ANALYZE, as autovacuum soon would after a million inserts."""

    def __init__(self, database_url: str) -> None:
        import psycopg

        self.con = psycopg.connect(database_url)
        self.cursor = self.con.cursor()
        self.indexes: list[tuple[str, str]] = []
        self.copying = ExitStack()

    def _copy(self, table: str, columns: str, rows: list[tuple]) -> None:
        with self.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def begin(self, users: list[tuple], jobs: list[tuple]) -> None:
        """Write the users and jobs; make the run table ready for runs()."""
        self._copy('"user"', "id, email, name, password_hash, role, active, created_at", users)
        self._copy(
            "job",
            "id, owner_id, job_type, name, params, active, last_run_number, created_at, updated_at",
            jobs,
        )
        self.indexes = self.cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'run' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'run'::regclass)"
        ).fetchall()
        for name, _sql in self.indexes:
            self.cursor.execute(f'DROP INDEX "{name}"')
        self.copy = self.copying.enter_context(self.cursor.copy(f"COPY run ({RUN_COLUMNS}) FROM STDIN"))

    def runs(self, rows: list[tuple]) -> None:
        """Write run rows (RUN_COLUMNS)."""
        for row in rows:
            self.copy.write_row(row)

    def finish(self, numbers: list[tuple[int, int]]) -> None:
        """Rebuild the indexes, set each job's last run number (number, job id), commit."""
        self.copying.close()
        cursor = self.cursor
        for _name, sql in self.indexes:
            cursor.execute(sql)
        cursor.executemany("UPDATE job SET last_run_number = %s WHERE id = %s", numbers)
        for table in ('"user"', "job", "run"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        self.con.commit()
        self.con.autocommit = True
        cursor.execute('VACUUM ANALYZE "user", job, run')
        self.con.close()


def fill(
    out: SqliteFill | PostgresFill,
    *,
    runs: int,
    running: int,
    users: int,
    jobs_per_user: int,
    monitor_leftovers: int,
    failed_in_monitor: bool = False,
    seed: int = 7,
) -> dict:
    """Bulk-insert users, jobs and runs through `out` (one transaction)."""
    from werkzeug.security import generate_password_hash

    rng = random.Random(seed)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    year_ago = now - timedelta(days=365)
    pw_hash = generate_password_hash(PASSWORD)  # one hash, shared: hashing 51 times is slow

    user_rows = [(1, ADMIN_EMAIL, "Bench super admin", pw_hash, "super_admin", 1, year_ago.strftime(TS))]
    for i in range(users):
        user_rows.append(
            (
                i + 2,
                f"user{i:02d}@bench.example.org",
                f"User {i:02d}",
                pw_hash,
                "user",
                1,
                year_ago.strftime(TS),
            )
        )
    user_ids = [row[0] for row in user_rows[1:]]

    types = ("user_data_import", "user_data_export")
    jobs = []  # (id, owner_id, job_type, name)
    for owner in user_ids:
        for k in range(jobs_per_user):
            job_type = types[k % 2]
            verb = "import" if job_type == types[0] else "export"
            jobs.append((len(jobs) + 1, owner, job_type, f"Weekly {verb} {k + 1} of user {owner}"))
    next_number = [0] * (len(jobs) + 1)

    span = (now - year_ago).total_seconds() - 3600
    leftovers = (
        set(rng.sample(range(max(1, runs - 20 * monitor_leftovers), runs + 1), min(monitor_leftovers, runs)))
        if runs
        else set()
    )
    retention_cut = span - 30 * 86400 + 3600  # seconds after year_ago
    chunk = 20_000

    def at(seconds: float) -> str:  # == strftime(TS), twice as fast
        return (year_ago + timedelta(seconds=seconds)).isoformat(" ", "microseconds")

    def historical(first: int, last: int) -> list[tuple]:
        rows = []
        rand = rng.random
        njobs = len(jobs)
        for run_id in range(first, last):
            job_id, owner, job_type, name = jobs[int(rand() * njobs)]
            number = next_number[job_id] = next_number[job_id] + 1
            created = span * run_id / (runs + 1)
            started = created + 0.1 + 5 * rand()
            finished = started + 2 + 900 * rand()
            total = 100 + int(rand() * 200_000)
            roll = rand()
            in_monitor = 0
            error = result_path = result_name = downloaded = deleted = None
            c_done = total
            if run_id in leftovers:
                state, in_monitor = "completed", 1
            elif roll < 0.85:
                state = "completed"
            elif roll < 0.95:
                state, c_done = "failed", total // 3
                in_monitor = int(failed_in_monitor)  # failed runs stay until dismissed
                error = "OperationalError: the database was unreachable"
            else:
                state, c_done = "cancelled", total // 2
            if state == "completed":
                result_path = f"/var/conveyor/results/run-{run_id}-result.csv"
                result_name = f"{name} #{number}.csv"
                if not in_monitor:
                    downloaded = at(finished + 10 + 86400 * rand())
                    if finished < retention_cut:
                        deleted = at(finished + 30 * 86400)
            started_s = at(started)
            finished_s = at(finished)
            rows.append(
                (
                    run_id,
                    job_id,
                    owner,
                    owner,
                    job_type,
                    name,
                    number,
                    state,
                    "schedule" if roll < 0.6 else "manual",
                    f"REQ-{started_s[:4]}{started_s[5:7]}{started_s[8:10]}-{run_id:010X}",
                    at(created),
                    started_s,
                    finished_s,
                    c_done,
                    total,
                    c_done,
                    c_done // 2,
                    c_done // 4,
                    c_done // 5,
                    0,
                    c_done // 100,
                    f'{{"records": {c_done}}}',
                    result_path,
                    result_name,
                    downloaded,
                    deleted,
                    error,
                    None,
                    None,
                    f"run-{run_id}-{run_id * 2654435761 & 0xFFFFFFFF:08x}",
                    finished_s,
                    in_monitor,
                    started_s,
                )
            )
        return rows

    def produce(out: queue.Queue) -> None:
        """Build the rows in chunks on a thread: SQLite releases the GIL while it inserts."""
        try:
            for first in range(1, runs + 1, chunk):
                out.put(historical(first, min(first + chunk, runs + 1)))
        finally:
            out.put(None)

    t0 = time.perf_counter()
    out.begin(
        user_rows,
        [
            (j, o, t, n, json.dumps({"bench": True}), 1, 0, year_ago.strftime(TS), year_ago.strftime(TS))
            for j, o, t, n in jobs
        ],
    )
    chunks: queue.Queue = queue.Queue(maxsize=4)
    producer = threading.Thread(target=produce, args=(chunks,), daemon=True)
    producer.start()
    while (rows := chunks.get()) is not None:
        out.runs(rows)
    producer.join()

    running_ids = []
    busy_jobs = rng.sample(jobs, min(running, len(jobs)))
    for i in range(running):
        job_id, owner, job_type, name = busy_jobs[i % len(busy_jobs)]
        next_number[job_id] += 1
        run_id = runs + 1 + i
        running_ids.append(run_id)
        started = now - timedelta(seconds=rng.uniform(30, 3600))
        total = rng.randrange(10_000, 1_000_000)
        done = rng.randrange(0, total)
        out.runs(
            [
                (
                    run_id,
                    job_id,
                    owner,
                    owner,
                    job_type,
                    name,
                    next_number[job_id],
                    "processing",
                    "manual",
                    f"REQ-{started:%Y%m%d}-{run_id:010X}",
                    started.strftime(TS),
                    started.strftime(TS),
                    None,
                    done,
                    total,
                    done,
                    done // 2,
                    done // 4,
                    done // 5,
                    0,
                    0,
                    json.dumps({"records": done}),
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    f"run-{run_id}-{run_id:08x}",
                    now.strftime(TS),
                    1,
                    started.strftime(TS),
                ),
            ]
        )
    out.finish([(next_number[j], j) for j, *_ in jobs])
    return {"fill_seconds": time.perf_counter() - t0, "running_ids": running_ids, "max_id": runs + running}


def fill_database(args: argparse.Namespace, var_dir: str, services: tuple[str, str] | None, **extra) -> dict:
    """The schema by the migrations, then the runs `args` asks for (SQLite under `var_dir`, or
    the PostgreSQL of `services`), saying how long it took and how big the database is."""
    t0 = time.perf_counter()
    create_schema(var_dir)
    db_path = os.path.join(var_dir, "conveyor.db")
    filled = fill(
        SqliteFill(db_path) if services is None else PostgresFill(services[0]),
        runs=args.runs,
        running=args.running,
        users=args.users,
        jobs_per_user=args.jobs_per_user,
        monitor_leftovers=args.leftovers,
        **extra,
    )
    total_runs = args.runs + args.running
    size = os.path.getsize(db_path) if services is None else database_size(services[0])
    print(
        f"filled {total_runs:,} runs in {filled['fill_seconds']:.1f}s "
        f"(setup total {time.perf_counter() - t0:.1f}s, db {size / 1e6:.0f} MB)",
        flush=True,
    )
    return filled


def server_log_to_stderr(tmp: str) -> None:
    """The tail of the server's log, the server's side of a failure."""
    log_path = os.path.join(tmp, "gunicorn.log")
    if os.path.exists(log_path):
        with open(log_path, errors="replace") as fh:
            sys.stderr.write("--- gunicorn log (tail) ---\n" + fh.read()[-6000:])


def stop_server(proc: subprocess.Popen | None) -> None:
    """SIGTERM to the server, SIGKILL if it has not ended 20 s later."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def database_size(database_url: str) -> int:
    """The PostgreSQL database's size in bytes."""
    import psycopg

    with psycopg.connect(database_url) as con:
        return con.execute("SELECT pg_database_size(current_database())").fetchone()[0]


# --------------------------------------------------------------------------- HTTP client


class Client:
    """One browser: a keep-alive connection and its cookies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str, float]:
        hdrs = dict(headers or {})
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                elapsed = time.perf_counter() - t0
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # the server closed an idle keep-alive connection: reconnect once
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key.strip()] = rest.split(";", 1)[0]
        return resp.status, data.decode("utf-8", "replace"), elapsed

    def login(self, email: str, password: str) -> None:
        status, html, _ = self.request("GET", "/login")
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
            r'value="([^"]+)"[^>]*name="csrf_token"', html
        )
        if status != 200 or not match:
            raise SystemExit(f"login page: HTTP {status}, no csrf_token found")
        body = urlencode({"csrf_token": match.group(1), "email": email, "password": password})
        status, html, _ = self.request("POST", "/login", body=body)
        if status != 302:
            raise SystemExit(f"login failed: HTTP {status}")

    def close(self) -> None:
        self.conn.close()


def wait_for_server(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/login")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer in time")


def load(
    clients: list[Client], path: str, requests: int, headers: dict[str, str], expect: str
) -> tuple[list[float], float]:
    """Every client makes `requests` requests to `path` at once; latencies in ms and wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(clients))

    def worker(client: Client) -> None:
        mine = []
        try:
            barrier.wait()
            for _ in range(requests):
                status, body, elapsed = client.request("GET", path, headers=headers)
                if status != 200 or expect not in body:
                    raise RuntimeError(
                        f"GET {path[:80]}: HTTP {status}, "
                        f"{'missing ' + repr(expect) if status == 200 else body[:200]}"
                    )
                mine.append(elapsed * 1000)
        except Exception as exc:  # reported below, fails the bench
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} client(s) failed, first: {errors[0]}")
    return latencies, wall


def ab_load(
    port: int,
    path: str,
    requests: int,
    concurrency: int,
    headers: dict[str, str],
    cookies: dict[str, str],
    csv_path: str,
) -> dict:
    """ApacheBench: `requests` GETs of `path`, `concurrency` at a time on keep-alive connections;
    its latency percentiles (ms), requests/s and wall time. Fails unless every answer was 2xx."""
    cmd = [
        "ab",
        "-q",
        "-k",
        "-n",
        str(requests),
        "-c",
        str(concurrency),
        "-e",
        csv_path,
        "-H",
        "Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()),
    ]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    t0 = time.perf_counter()
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=600
    )
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"ab failed on {path[:80]}: {out.stderr.strip()[-500:]}")
    complete = int(re.search(r"Complete requests:\s+(\d+)", out.stdout).group(1))
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", out.stdout)
    if complete != requests or non_2xx:
        raise SystemExit(
            f"ab on {path[:80]}: {complete} of {requests} complete, "
            f"{non_2xx.group(1) if non_2xx else 0} not 2xx"
        )
    with open(csv_path) as fh:
        by_percent = {
            int(p): float(ms) for p, ms in (line.strip().split(",") for line in list(fh)[1:] if line.strip())
        }
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out.stdout).group(1))
    return {
        "p50": by_percent[50],
        "p95": by_percent[95],
        "max": by_percent[100],
        "rps": rps,
        "wall": wall,
        "requests": complete,
    }


def server_cpu_seconds(master_pid: int) -> float | None:
    """CPU seconds used so far by gunicorn's workers (Linux /proc; None elsewhere)."""
    try:
        with open(f"/proc/{master_pid}/task/{master_pid}/children") as fh:
            pids = fh.read().split()
        return sum(cpu_seconds(int(pid)) for pid in pids)
    except (OSError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="historical runs")
    parser.add_argument("--running", type=int, default=50, help="runs in progress")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--jobs-per-user", type=int, default=4)
    parser.add_argument(
        "--leftovers", type=int, default=300, help="completed, not-downloaded runs still in the monitor"
    )
    parser.add_argument(
        "--failed-in-monitor",
        action="store_true",
        help="leave the historical failed runs (~10%%) in the monitor, as nobody "
        "dismissed them (default: dismissed)",
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="requests per client per page")
    parser.add_argument(
        "--solo-requests",
        type=int,
        default=20,
        help="requests per page from one client alone first (unloaded latency)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="unmeasured requests per client per page (which check the answers)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=max(2, os.cpu_count() or 2),
        help="gunicorn workers (default: as `make run`, one per CPU)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn threads per worker (default: as `make run`)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp var dir")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="on PostgreSQL (CONVEYOR_DATABASE_URL's, else a throw-away one) and redis-server",
    )
    args = parser.parse_args()
    if shutil.which("ab") is None:
        raise SystemExit("this bench drives the load with ApacheBench: apt-get install apache2-utils")

    load_at_start = round(os.getloadavg()[0], 2)  # the box may be shared: say how busy it was
    with bench_dir("conveyor-monitor-bench-", args.keep) as tmp:
        if not args.postgres:
            return run_bench(args, tmp, load_at_start)
        with postgres_services() as services:
            return run_bench(args, tmp, load_at_start, services)


def run_bench(
    args: argparse.Namespace, tmp: str, load_at_start: float, services: tuple[str, str] | None = None
) -> int:
    """Fill the database under tmp (or PostgreSQL's, with `services`: its URL and Redis's),
    start gunicorn, load every page and print the figures."""
    var_dir = os.path.join(tmp, "var")
    proc = None
    server_env: dict[str, str] = {}
    if services is not None:
        server_env = {"CONVEYOR_DATABASE_URL": services[0], "CONVEYOR_REDIS_URL": services[1], **IDENTITY}
        os.environ.update(server_env)  # for create_schema
    redis = ExitStack()
    try:
        filled = fill_database(args, var_dir, services, failed_in_monitor=args.failed_in_monitor)
        total_runs = args.runs + args.running

        if services is None:
            # one embedded Redis for the web workers, held by this process and shut down at the
            # end, as `make run` starts it (each worker would otherwise start its own, left running)
            redis.enter_context(embedded_redis(var_dir, 1))
            server_env["CONVEYOR_REDIS_URL"] = os.environ["CONVEYOR_REDIS_URL"]
        port = free_port()
        env = dict(os.environ, CONVEYOR_VAR_DIR=var_dir)
        env.pop("CONVEYOR_DATABASE_URL", None)
        env.pop("CONVEYOR_REDIS_URL", None)
        env.update(server_env)
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        with open(os.path.join(tmp, "gunicorn.log"), "w") as log:
            proc = subprocess.Popen(
                [
                    gunicorn,
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    str(args.workers),
                    "--threads",
                    str(args.threads),
                    "app:app",
                ],
                cwd=str(ROOT),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_server(port, proc)

        clients = [Client(port) for _ in range(args.clients)]
        for client in clients:
            client.login(ADMIN_EMAIL, PASSWORD)

        ids = ",".join(str(i) for i in filled["running_ids"])
        middle = max(1, args.runs // 2)
        pages = {
            "monitor": ("/", {}, f'id="run-{filled["max_id"]}"'),
            "updates": (
                "/monitor/updates?" + urlencode({"ids": ids, "after": filled["max_id"]}),
                {"HX-Request": "true"},
                "monitor-poller",
            ),
            "history": ("/history", {}, f'href="/runs/{filled["max_id"]}"'),
            "history_deep": (f"/history?before={middle}", {}, f'href="/runs/{middle - 1}"'),
        }
        result: dict = {
            "database": "sqlite" if services is None else "postgresql",
            "runs": total_runs,
            "clients": args.clients,
            "requests_per_client": args.requests,
            "gunicorn": f"{args.workers}x{args.threads}",
            "cpus": os.cpu_count(),
            "failed_in_monitor": args.failed_in_monitor,
            "loadavg_1m_at_start": load_at_start,
            "fill_seconds": round(filled["fill_seconds"], 1),
        }
        all_under = True
        print(
            f"{'page':<14}{'solo p50':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'req/s':>9}"
            f"{'server cpu ms/req':>18}"
        )
        ab_csv = os.path.join(tmp, "ab.csv")
        for name, (path, headers, expect) in pages.items():
            load(clients, path, max(1, args.warmup), headers, expect)  # answers as it should
            solo = float("nan")
            if args.solo_requests:
                solo = ab_load(port, path, args.solo_requests, 1, headers, clients[0].cookies, ab_csv)["p50"]
            server0 = server_cpu_seconds(proc.pid)
            loaded = ab_load(
                port, path, args.clients * args.requests, args.clients, headers, clients[0].cookies, ab_csv
            )
            server1 = server_cpu_seconds(proc.pid)
            server_ms = (
                float("nan")
                if server0 is None or server1 is None
                else (server1 - server0) * 1000 / loaded["requests"]
            )
            p50, p95 = loaded["p50"], loaded["p95"]
            print(
                f"{name:<14}{solo:>9.1f}{p50:>9.1f}{p95:>9.1f}{loaded['max']:>9.1f}"
                f"{loaded['rps']:>9.0f}{server_ms:>18.1f}",
                flush=True,
            )
            result[f"{name}_solo_p50_ms"] = round(solo, 1)
            result[f"{name}_p50_ms"] = round(p50, 1)
            result[f"{name}_p95_ms"] = round(p95, 1)
            result[f"{name}_rps"] = round(loaded["rps"], 1)
            result[f"{name}_server_cpu_ms_per_request"] = round(server_ms, 1)
            all_under = all_under and p95 < TARGET_P95_MS
        for client in clients:
            client.close()
        result["target_p95_ms"] = TARGET_P95_MS
        result["all_under_target"] = all_under
        print(json.dumps(result))
        return 0
    except BaseException:
        server_log_to_stderr(tmp)
        raise
    finally:
        stop_server(proc)
        redis.close()


if __name__ == "__main__":
    sys.exit(main())
