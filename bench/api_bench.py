"""The JSON API under load, with a million historical runs, next to the HTML monitor.

Fills the database exactly as bench/monitor_bench.py does (its fill, on SQLite or with
--postgres on PostgreSQL), issues an API token to its super admin, starts the real web server
(gunicorn configured as `make run` does) and has ApacheBench (`ab`) make --clients x --requests
requests to each of these, --clients at once on keep-alive connections:

  html_monitor  GET /                       the monitor page, with the super admin's session
  api_run       GET /api/v1/runs/<id>       a running run's status, with the token
  api_monitor   GET /api/v1/monitor         the monitor list (first page), with the token

Every request to the API pays what a script's request pays: the token looked up by its hash,
its last use noted (webapp/api/tokens.py) and its rate limit counted in Redis (the limit is set
high, CONVEYOR_API_RATE_LIMIT, so that the bench measures the counting, not refusals). Then,
in this process, a profile of --profile-requests requests to each API page through the Flask
test client says how many SQL statements a request makes and how much of its time goes to the
token check, the rate limit and the view.

Prints p50/p95 per page and, as its last line, one JSON object with the figures and whether the
target holds (API p95 < 50 ms).

    .venv/bin/python bench/api_bench.py                          # full size (1,000,000 runs)
    .venv/bin/python bench/api_bench.py --runs 20000 --requests 5   # smoke check
    .venv/bin/python bench/api_bench.py --postgres               # the same on PostgreSQL
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack

from _services import IDENTITY, postgres_services
from common import PASSWORD, ROOT, bench_dir, embedded_redis, free_port, migrated_app
from monitor_bench import (
    ADMIN_EMAIL,
    Client,
    ab_load,
    fill_database,
    load,
    server_cpu_seconds,
    server_log_to_stderr,
    stop_server,
    wait_for_server,
)

TARGET_P95_MS = 50.0  # the API's pages
RATE_LIMIT = 10**9  # requests a minute: counted as always, never reached
# where a profiled request's time goes: (label, file suffix, function name)
PROFILED = (
    ("token_check", "webapp/api/tokens.py", "load_user_from_request"),
    ("rate_limit", "webapp/api/v1/core.py", "_count_against_limit"),
    ("view", "webapp/api/v1/spec.py", "served"),
)


def issue_token(var_dir: str) -> str:
    """A read-only API token of the bench's super admin (the HTML monitor's viewer too)."""
    from sqlalchemy import select

    from webapp.api.tokens import issue
    from webapp.extensions import db
    from webapp.models import User

    with migrated_app(var_dir):
        admin = db.session.execute(select(User).where(User.email == ADMIN_EMAIL)).scalar_one()
        _token, secret = issue(admin, "API bench", read_only=True, expires_at=None)
        db.session.commit()
    return secret


def profile(var_dir: str, secret: str, paths: dict[str, str], requests: int) -> dict:
    """Per API page: ms per request in the Flask test client under cProfile, and the share of
    it spent in the token check, the rate limit and the view (PROFILED)."""
    from sqlalchemy import event

    from webapp import create_app
    from webapp.extensions import db

    app = create_app({"VAR_DIR": var_dir, "API_RATE_LIMIT": RATE_LIMIT})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    statements = [0]

    def count(*_args) -> None:
        statements[0] += 1

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)
    figures: dict = {}
    for name, path in paths.items():
        assert client.get(path, headers=headers).status_code == 200
        statements[0] = 0
        client.get(path, headers=headers)
        queries = statements[0]
        profiler = cProfile.Profile()
        t0 = time.perf_counter()
        profiler.enable()
        for _ in range(requests):
            client.get(path, headers=headers)
        profiler.disable()
        total = (time.perf_counter() - t0) * 1000 / requests
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        shares = {"sql_statements_per_request": queries, "profiled_ms_per_request": round(total, 2)}
        for label, suffix, function in PROFILED:
            spent = sum(
                cumulative
                for (filename, _line, func), (_cc, _nc, _tt, cumulative, _callers) in stats.items()
                if func == function and filename.endswith(suffix)
            )
            shares[f"{label}_ms"] = round(spent * 1000 / requests, 2)
            shares[f"{label}_share"] = round(spent * 1000 / requests / total, 3)
        figures[name] = shares
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="historical runs")
    parser.add_argument("--running", type=int, default=50, help="runs in progress")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--jobs-per-user", type=int, default=4)
    parser.add_argument(
        "--leftovers", type=int, default=300, help="completed, not-downloaded runs still in the monitor"
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="requests per client per page")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured requests per client per page")
    parser.add_argument("--profile-requests", type=int, default=300, help="0: no profile")
    parser.add_argument(
        "--workers",
        type=int,
        default=max(2, os.cpu_count() or 2),
        help="gunicorn workers (default: as `make run`, one per CPU)",
    )
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--keep", action="store_true", help="keep the temp var dir")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="on PostgreSQL (CONVEYOR_DATABASE_URL's, else a throw-away one) and redis-server",
    )
    args = parser.parse_args()
    if shutil.which("ab") is None:
        raise SystemExit("this bench drives the load with ApacheBench: apt-get install apache2-utils")

    load_at_start = round(os.getloadavg()[0], 2)
    with bench_dir("conveyor-api-bench-", args.keep) as tmp:
        if not args.postgres:
            return run_bench(args, tmp, load_at_start)
        with postgres_services() as services:
            return run_bench(args, tmp, load_at_start, services)


def run_bench(
    args: argparse.Namespace, tmp: str, load_at_start: float, services: tuple[str, str] | None = None
) -> int:
    """Fill, issue the token, start gunicorn, load each page, profile the API's, print."""
    var_dir = os.path.join(tmp, "var")
    proc = None
    server_env: dict[str, str] = {"CONVEYOR_API_RATE_LIMIT": str(RATE_LIMIT)}
    if services is not None:
        server_env |= {"CONVEYOR_DATABASE_URL": services[0], "CONVEYOR_REDIS_URL": services[1], **IDENTITY}
        os.environ.update(server_env)
    stack = ExitStack()
    try:
        filled = fill_database(args, var_dir, services)
        total_runs = args.runs + args.running
        if services is None:
            stack.enter_context(embedded_redis(var_dir, 1))  # one Redis, held here, as `make run`
            server_env["CONVEYOR_REDIS_URL"] = os.environ["CONVEYOR_REDIS_URL"]
        secret = issue_token(var_dir)

        port = free_port()
        env = dict(os.environ, CONVEYOR_VAR_DIR=var_dir)
        env.pop("CONVEYOR_DATABASE_URL", None)
        env.update(server_env)
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        with open(os.path.join(tmp, "gunicorn.log"), "w") as log:
            proc = subprocess.Popen(
                [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers)]
                + ["--threads", str(args.threads), "app:app"],
                cwd=str(ROOT),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_server(port, proc)

        browsers = [Client(port) for _ in range(args.clients)]
        for browser in browsers:
            browser.login(ADMIN_EMAIL, PASSWORD)
        scripts = [Client(port) for _ in range(args.clients)]  # no cookie: the token only
        bearer = {"Authorization": f"Bearer {secret}"}
        run_id, newest = filled["running_ids"][0], filled["max_id"]
        pages = {  # name: (path, headers, cookies, an answer contains, who asks)
            "html_monitor": ("/", {}, browsers[0].cookies, f'id="run-{newest}"', browsers),
            "api_run": (f"/api/v1/runs/{run_id}", bearer, {}, f'"id":{run_id},', scripts),
            "api_monitor": ("/api/v1/monitor", bearer, {}, f'"id":{newest},', scripts),
        }
        result: dict = {
            "database": "sqlite" if services is None else "postgresql",
            "runs": total_runs,
            "clients": args.clients,
            "requests_per_client": args.requests,
            "gunicorn": f"{args.workers}x{args.threads}",
            "cpus": os.cpu_count(),
            "loadavg_1m_at_start": load_at_start,
        }
        print(f"{'page':<14}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'req/s':>9}{'server cpu ms/req':>18}")
        ab_csv = os.path.join(tmp, "ab.csv")
        for name, (path, headers, cookies, expect, clients) in pages.items():
            load(clients, path, max(1, args.warmup), headers, expect)  # answers as it should
            cpu0 = server_cpu_seconds(proc.pid)
            loaded = ab_load(port, path, args.clients * args.requests, args.clients, headers, cookies, ab_csv)
            cpu1 = server_cpu_seconds(proc.pid)
            cpu_ms = (
                float("nan") if cpu0 is None or cpu1 is None else (cpu1 - cpu0) * 1000 / loaded["requests"]
            )
            print(
                f"{name:<14}{loaded['p50']:>9.1f}{loaded['p95']:>9.1f}{loaded['max']:>9.1f}"
                f"{loaded['rps']:>9.0f}{cpu_ms:>18.1f}",
                flush=True,
            )
            result[f"{name}_p50_ms"] = round(loaded["p50"], 1)
            result[f"{name}_p95_ms"] = round(loaded["p95"], 1)
            result[f"{name}_rps"] = round(loaded["rps"], 1)
            result[f"{name}_server_cpu_ms_per_request"] = round(cpu_ms, 1)
        for client in browsers + scripts:
            client.close()
        for name in ("api_run", "api_monitor"):  # against the baseline measured next to it
            result[f"{name}_p95_vs_html_monitor"] = round(
                result[f"{name}_p95_ms"] / result["html_monitor_p95_ms"], 2
            )
        result["target_p95_ms"] = TARGET_P95_MS
        result["api_under_target"] = all(
            result[f"{n}_p95_ms"] < TARGET_P95_MS for n in ("api_run", "api_monitor")
        )
        if args.profile_requests:
            api_paths = {name: page[0] for name, page in pages.items() if name.startswith("api_")}
            result["profile"] = profile(var_dir, secret, api_paths, args.profile_requests)
            for name, shares in result["profile"].items():
                print(f"profile {name}: " + ", ".join(f"{k} {v}" for k, v in shares.items()))
        print(json.dumps(result))
        return 0
    except BaseException:
        server_log_to_stderr(tmp)
        raise
    finally:
        stop_server(proc)
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
