"""`make run` under fire: the real launcher (python -m webapp.launcher) with its embedded Redis,
web, workers and scheduler; each of worker, scheduler and Redis is SIGKILLed in turn while the
web is polled, and SIGTERM to the launcher leaves no process behind."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path

import psutil
import pytest

from tests.conftest import embedded_only, import_job
from webapp import create_app
from webapp.extensions import db
from webapp.launcher import Child, exit_reason, redis_socket_path
from webapp.models import Run, Supporter, User
from webapp.rules.states import RunState

pytestmark = embedded_only  # `make run` supervises the embedded default

ROOT = Path(__file__).resolve().parents[1]
BACK_WITHIN = 10.0  # seconds a killed process has to be running again
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Conveyor:
    """The launcher under test, a logged-in browser-like HTTP client and its database."""

    proc: subprocess.Popen
    var: Path
    log: Path
    base_url: str
    opener: urllib.request.OpenerDirector = field(default=None)

    def request(self, path: str, data: dict | None = None) -> tuple[int, str, str]:
        """(status, final URL, body) of a GET, or of a POST of `data` with the CSRF token."""
        body = None
        if data is not None:
            data = {**data, "csrf_token": self.csrf_token()}
            body = urllib.parse.urlencode(data).encode()
        try:
            with self.opener.open(self.base_url + path, body, timeout=10) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.url, error.read().decode()

    def csrf_token(self) -> str:
        """The session's CSRF token, from the login form or (logged in) the monitor page."""
        with self.opener.open(self.base_url + "/login", timeout=10) as response:
            match = CSRF.search(response.read().decode())
        assert match, "no CSRF token on the page"
        return match.group(1)

    def children(self) -> dict[str, psutil.Process]:
        """The launcher's supervised processes by role."""
        found = {}
        for child in psutil.Process(self.proc.pid).children():
            try:
                line = " ".join(child.cmdline())
            except psutil.NoSuchProcess:
                continue
            if "redis-server" in line:
                found["redis"] = child
            elif "worker.py" in line:
                found["worker-" + line.rsplit("--lane ", 1)[-1].split()[0]] = child
            elif line.endswith(" scheduler"):
                found["scheduler"] = child
            elif "gunicorn" in line:
                found["web"] = child
        return found

    def wait_for_restart(self, name: str, old: psutil.Process) -> psutil.Process:
        """The process that replaced `old`, within BACK_WITHIN seconds."""
        deadline = time.monotonic() + BACK_WITHIN
        while time.monotonic() < deadline:
            new = self.children().get(name)
            if new is not None and new.pid != old.pid:
                return new
            time.sleep(0.1)
        raise AssertionError(f"{name} was not restarted within {BACK_WITHIN:g} s:\n{self.tail()}")

    def printed(self) -> str:
        """Everything the launcher and its children printed so far."""
        return self.log.read_text(errors="replace")

    def tail(self) -> str:
        return "\n".join(self.printed().splitlines()[-40:])


class WebPoller:
    """Polls a page of the web server every 0.1 s in a thread; records every non-200 answer."""

    def __init__(self, conveyor: Conveyor, path: str = "/") -> None:
        self.conveyor, self.path = conveyor, path
        self.failures: list[str] = []
        self.answers = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def poll(self) -> None:
        while not self.stopped.is_set():
            try:
                status, _url, _body = self.conveyor.request(self.path)
            except OSError as exc:
                self.failures.append(repr(exc))
            else:
                self.answers += 1
                if status != 200:
                    self.failures.append(f"HTTP {status}")
            self.stopped.wait(0.1)

    def __enter__(self) -> "WebPoller":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(15)
        assert not self.failures, f"the web did not answer 200 throughout: {self.failures[:5]}"
        assert self.answers >= 5


def kill_ours(var: Path) -> None:
    """SIGKILL every process started for this launcher's var dir (even orphans)."""
    mine = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("CONVEYOR_VAR_DIR") == str(var) and proc.pid != os.getpid():
                mine.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    for proc in mine:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(mine, timeout=10)


@pytest.fixture(scope="module")
def conveyor(tmp_path_factory):
    """The real launcher on a fresh var dir, logged in as the super admin it created."""
    base = tmp_path_factory.mktemp("launcher")
    var = base / "var"
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONVEYOR_")}
    env.update(
        {
            "CONVEYOR_VAR_DIR": str(var),
            "CONVEYOR_PORT": str(port),
            "CONVEYOR_HEARTBEAT_SECONDS": "0.5",
            "CONVEYOR_DEAD_AFTER_SECONDS": "3",
            "CONVEYOR_RECONCILE_EVERY_SECONDS": "1",
            "CONVEYOR_WEB_WORKERS": "1",
            "CONVEYOR_IMPORT_BATCH_SIZE": "100",
            "CONVEYOR_SECRET_KEY": "launcher-test",
        }
    )
    log = base / "launcher.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "webapp.launcher"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    conveyor = Conveyor(proc, var, log, f"http://127.0.0.1:{port}")
    conveyor.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    app = None
    try:
        password = None
        deadline = time.monotonic() + 60
        while password is None or not ready(conveyor):
            assert proc.poll() is None, f"the launcher exited:\n{conveyor.tail()}"
            assert time.monotonic() < deadline, f"the launcher did not start:\n{conveyor.tail()}"
            found = re.search(r"with password: (\S+)", log.read_text(errors="replace"))
            password = found.group(1) if found else None
            time.sleep(0.2)
        status, url, _body = conveyor.request(
            "/login", {"email": "admin@conveyor.local", "password": password}
        )
        assert status == 200 and not url.endswith("/login"), "could not log in"
        app = create_app(
            {
                "VAR_DIR": str(var),
                "MIGRATIONS": False,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{var / 'conveyor.db'}",
                "REDIS_URL": f"unix://{redis_socket_path(str(var))}",
            }
        )
        with app.app_context():
            yield conveyor
            db.session.remove()
            db.engine.dispose()
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_ours(var)


def ready(conveyor: Conveyor) -> bool:
    try:
        return conveyor.request("/login")[0] == 200
    except OSError:
        return False


def fresh(run_id: int) -> Run:
    db.session.expire_all()
    return db.session.get(Run, run_id)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not reached in {timeout:g} s: {what}"
        time.sleep(0.1)


def start_import(conveyor: Conveyor, rows: int, name: str) -> int:
    """An import job of `rows` people saved for the admin, started with Run now over HTTP."""
    path = conveyor.var / f"{name}.csv"
    with open(path, "w") as out:
        out.write("email,first_name\n")
        out.writelines(f"{name}{i}@example.org,P{i}\n" for i in range(rows))
    admin = db.session.execute(db.select(User).filter_by(email="admin@conveyor.local")).scalar_one()
    job = import_job(admin, path, ["email", "first_name"], name=name)
    status, url, _body = conveyor.request(f"/jobs/{job.id}/run", {})
    assert status == 200 and "/runs/" in url, (status, url)
    return int(url.rstrip("/").rsplit("/", 1)[-1])


def supporters(name: str) -> int:
    db.session.expire_all()
    return Supporter.query.filter(Supporter.email.like(f"{name}%")).count()


def test_a_killed_scheduler_is_restarted_while_the_web_keeps_serving(conveyor):
    scheduler = conveyor.children()["scheduler"]
    with WebPoller(conveyor):
        scheduler.send_signal(signal.SIGKILL)
        conveyor.wait_for_restart("scheduler", scheduler)
        time.sleep(1)
    assert "conveyor: scheduler exited with signal 9 (SIGKILL); restarting in 1 s" in conveyor.printed()


def test_a_killed_worker_is_restarted_and_its_run_fails_plainly_then_retry_completes_it(conveyor):
    rows = 100_000
    run_id = start_import(conveyor, rows, "killed")
    wait_for(lambda: fresh(run_id).progress_done >= 2000, 30, "the import under way")
    worker = conveyor.children()["worker-data"]
    horses = worker.children()
    assert len(horses) == 1, "the data worker should be running the import in a work horse"
    with WebPoller(conveyor):
        worker.send_signal(signal.SIGKILL)
        _gone, alive = psutil.wait_procs(horses, timeout=3)
        assert not alive, "the work horse outlived its worker"
        conveyor.wait_for_restart("worker-data", worker)
        # the restarted scheduler's reconciler notices the silence (dead after 3 s)
        wait_for(lambda: fresh(run_id).state is RunState.FAILED, 15, "the run failed")
    run = fresh(run_id)
    assert 0 < run.progress_done < rows, "the import finished before the worker was killed"
    assert supporters("killed") == run.created == run.progress_done
    assert run.error.startswith("the worker running this job stopped at ")
    assert f"{run.progress_done:,} of {rows:,} rows were imported" in run.error
    status, _url, page = conveyor.request(f"/runs/{run_id}")
    assert status == 200 and "the worker running this job stopped at" in page

    status, _url, _page = conveyor.request(f"/runs/{run_id}/retry", {})
    assert status == 200
    wait_for(lambda: fresh(run_id).state is RunState.COMPLETED, 60, "the retry completed")
    run = fresh(run_id)
    assert supporters("killed") == rows == run.created == run.checked
    assert "conveyor: worker-data-1 exited with signal 9 (SIGKILL); restarting in 1 s" in conveyor.printed()


def test_a_killed_redis_is_restarted_with_its_queue_and_the_workers_carry_on(conveyor):
    rows = 100_000
    run_id = start_import(conveyor, rows, "outage")
    wait_for(lambda: fresh(run_id).progress_done >= 1000, 30, "the import under way")
    redis = conveyor.children()["redis"]
    with WebPoller(conveyor):
        redis.send_signal(signal.SIGKILL)
        redis.wait(5)
        assert fresh(run_id).progress_done < rows, "the import finished before Redis was killed"
        conveyor.wait_for_restart("redis", redis)
        # the run in flight needs no Redis: it ends as if nothing happened
        wait_for(lambda: fresh(run_id).state.is_finished, 60, "the run ended")
    run = fresh(run_id)
    assert run.state is RunState.COMPLETED, run.error
    assert supporters("outage") == rows == run.created
    # the workers reconnected: the next run is taken and done
    after = start_import(conveyor, 50, "after")
    wait_for(lambda: fresh(after).state is RunState.COMPLETED, 30, "a run after the outage")
    assert supporters("after") == 50
    assert "conveyor: redis exited with signal 9 (SIGKILL); restarting in 1 s" in conveyor.printed()


def test_sigterm_stops_everything_and_leaves_no_process_behind(conveyor):
    family = [conveyor.proc.pid, *(p.pid for p in psutil.Process(conveyor.proc.pid).children(True))]
    assert len(family) >= 6  # launcher, redis, gunicorn (+ its worker), two workers, scheduler
    conveyor.proc.send_signal(signal.SIGTERM)
    assert conveyor.proc.wait(30) == 0
    _gone, alive = psutil.wait_procs([p for p in map(_process, family) if p], timeout=5)
    assert not alive, f"left behind: {[' '.join(p.cmdline()) for p in alive]}"
    assert not Path(redis_socket_path(str(conveyor.var))).exists()


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def test_a_child_that_keeps_exiting_is_restarted_with_growing_back_off_reset_once_it_stays_up(capsys):
    child = Child("worker-data-1", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    delays = []
    child.start()
    for _ in range(3):
        child.proc.wait(10)
        child.check(now := time.monotonic())
        delays.append(child.restart_at - now)
        child.check(child.restart_at)  # the back-off is over: started again
    child.proc.wait(10)
    child.started -= 61  # as if it had stayed up for more than a minute
    child.check(now := time.monotonic())
    delays.append(child.restart_at - now)
    assert delays == [1, 2, 4, 1]
    printed = capsys.readouterr().out
    assert "conveyor: worker-data-1 exited with code 3; restarting in 1 s" in printed
    assert "restarting in 4 s" in printed


def test_exit_reasons_and_the_socket_path_are_plain_and_short():
    assert exit_reason(-9) == "signal 9 (SIGKILL)"
    assert exit_reason(1) == "code 1"
    assert redis_socket_path("/srv/conveyor/var") == "/srv/conveyor/var/redis.sock"
    deep = "/srv/" + "d" * 120
    assert redis_socket_path(deep).startswith("/tmp/conveyor-")
    assert redis_socket_path(deep) == redis_socket_path(deep) != redis_socket_path(deep + "x")
