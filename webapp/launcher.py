"""`make run`: one command that starts web (gunicorn), one RQ worker and the scheduler on the
embedded default, holding the embedded Redis open for the product's whole life."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from webapp import create_app
from webapp.cli import bootstrap
from webapp.engine import queueing


def main() -> int:
    """Start everything, print where to log in, and stop everything on Ctrl-C."""
    app = create_app()
    host = os.environ.get("CONVEYOR_HOST", "127.0.0.1")
    port = os.environ.get("CONVEYOR_PORT", "5000")
    with app.app_context():
        redis = queueing.redis_connection()  # held open: the embedded server lives while we do
        redis.ping()
        email, password = bootstrap()
    env = dict(os.environ)
    env.setdefault("CONVEYOR_VAR_DIR", app.config["VAR_DIR"])
    env.setdefault("CONVEYOR_BASE_URL", f"http://{host}:{port}")
    shared = queueing.embedded_url(redis)
    if shared:
        env["CONVEYOR_REDIS_URL"] = shared
    bin_dir = os.path.dirname(sys.executable)
    commands = {
        "web": [os.path.join(bin_dir, "gunicorn"), "--bind", f"{host}:{port}",
                # one thread per process: CPU-bound Python pages do not then queue on one GIL
                "--workers", os.environ.get("CONVEYOR_WEB_WORKERS", str(max(2, os.cpu_count() or 2))),
                "--threads", os.environ.get("CONVEYOR_WEB_THREADS", "1"),
                "--access-logfile", "-", "app:app"],
        "worker": [sys.executable, "worker.py"],
        "scheduler": [os.path.join(bin_dir, "flask"), "--app", "app", "scheduler"],
    }
    processes = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
    print()
    print(f"  Conveyor is running at http://{host}:{port}/")
    if password:
        print(f"  Log in as {email} with password: {password}")
        print("  (shown once; change it with: .venv/bin/flask --app app users set-password EMAIL)")
    else:
        print(f"  Log in as {email} (the password printed on first start).")
        print("  Forgot it? .venv/bin/flask --app app users set-password " + email)
    print("  Press Ctrl-C to stop web, worker and scheduler.")
    print(flush=True)
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    while not stopping:
        for name, proc in processes.items():
            if proc.poll() is not None:
                print(f"conveyor: {name} exited with {proc.returncode}; stopping", flush=True)
                stopping, code = True, 1
                break
        time.sleep(0.5)
    for proc in processes.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in processes.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
