"""Throw-away PostgreSQL and redis-server for the scale-out test pass and the benchmarks.

`python tests/services.py -- <command>` starts both on 127.0.0.1 with data directories under a
temporary folder, runs the command with CONVEYOR_DATABASE_URL and CONVEYOR_REDIS_URL pointing at
them, stops both and exits with the command's status. `postgres()` and `redis_server()` are the
same two servers as context managers for code that wants them one at a time.

Both come from Debian's packages (`make services` installs them when missing). PostgreSQL refuses
to run as root, so as root its own binaries run as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin(name: str) -> str:
    """The newest installed PostgreSQL's `name` (initdb, pg_ctl), or the one on PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version)
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return path


def _version(path: str) -> int:
    return int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0


def _as_postgres(command: list[str]) -> list[str]:
    """As root, run PostgreSQL's own binaries as the `postgres` user (it refuses root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port} after {timeout:.0f} s")


@contextlib.contextmanager
def postgres(port: int | None = None) -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1; yields its URL (database `conveyor`)."""
    port = port or free_port()
    top = Path(tempfile.mkdtemp(prefix="conveyor-pg-"))
    top.chmod(0o755)  # the postgres user must reach its data directory inside
    data = top / "data"
    data.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    quiet = {"stdout": subprocess.DEVNULL, "cwd": top}
    try:
        subprocess.run(
            _as_postgres(
                [postgres_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
            ),
            check=True,
            **quiet,
        )
        # throw-away data: no fsync, and a little more memory than the tiny defaults
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        options += " -c full_page_writes=off -c shared_buffers=256MB -c max_connections=200"
        pg_ctl = postgres_bin("pg_ctl")
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(data / "log"), "-w", "start"]),
            check=True,
            **quiet,
        )
        try:
            _wait_for_port(port)
            subprocess.run(
                _as_postgres(
                    [
                        postgres_bin("createdb"),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-U",
                        "postgres",
                        "conveyor",
                    ]
                ),
                check=True,
                **quiet,
            )
            yield f"postgresql://postgres@127.0.0.1:{port}/conveyor"
        finally:
            subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), **quiet)
    finally:
        shutil.rmtree(top, ignore_errors=True)


@contextlib.contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """A redis-server on 127.0.0.1 that keeps nothing on disk; yields its URL."""
    port = port or free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    top = Path(tempfile.mkdtemp(prefix="conveyor-redis-"))
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(top),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(top, ignore_errors=True)


def main(argv: list[str]) -> int:
    """Run `argv` (after `--`) with both servers up."""
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    if not command:
        print("usage: python tests/services.py -- <command> [args...]", file=sys.stderr)
        return 2
    # stopped from outside (CI's time limit, Ctrl-C): still stop both servers on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with postgres() as database_url, redis_server() as redis_url:
        print(f"PostgreSQL at {database_url}, Redis at {redis_url}", flush=True)
        env = {**os.environ, "CONVEYOR_DATABASE_URL": database_url, "CONVEYOR_REDIS_URL": redis_url}
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
