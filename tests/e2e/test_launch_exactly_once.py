"""Campaign launches happen exactly once, against the REAL product started as `make run` does
(no browser: a person's cookies over urllib):

1. twenty Launch requests for one campaign at the same moment make one run, every one of them
   lands on that run's page, and each supporter of the audience receives one message;
2. with the job queue (Redis) down, Launch refuses with a plain message and changes nothing (no
   run, the campaign still a draft); once Redis is back, one Launch makes exactly one send. This
   one runs its own launcher on a throw-away `redis-server` it stops and starts itself, so the
   session's shared server is not disturbed.
"""

from __future__ import annotations

import html
import http.cookiejar
import re
import shutil
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    EMAIL_BATCH_SIZE,
    PASSWORD_LINE,
    REPO_ROOT,
    START_TIMEOUT,
    VENV_BIN,
    Account,
    Server,
    _create_user,
    _free_port,
    _status,
    _stop,
)
from tests.e2e.test_campaigns import FROM, SUBJECT, TEXT_BODY, opt_out_domain, upsert_opted_in

pytestmark = pytest.mark.e2e

CONCURRENT_LAUNCHES = 20
ALREADY = "This campaign was already launched or scheduled; it was not sent again."
QUEUE_DOWN = "The job queue is unreachable right now, so nothing was started or changed"
SEND_TIMEOUT = 60.0  # seconds for a small send to reach Collecting on the real worker


# ------------------------------------------------------------------ a person without a browser


@dataclass
class Reply:
    status: int
    url: str
    location: str
    text: str

    def flashes(self) -> list[str]:
        """The flash messages the page shows, as text."""
        return [
            html.unescape(re.sub(r"<[^>]+>", "", message)).strip()
            for message in re.findall(
                r'<div class="flash [a-z]+" role="(?:status|alert)">(.*?)</div>', self.text, re.S
            )
        ]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class WebSession:
    """One person's cookies on the server: GET pages and POST forms like a browser would."""

    def __init__(self, base_url: str, jar: http.cookiejar.CookieJar | None = None) -> None:
        self.base_url = base_url
        self.jar = jar or http.cookiejar.CookieJar()

    def tab(self) -> WebSession:
        """Another tab of the same person: a copy of the cookies, kept apart from now on."""
        jar = http.cookiejar.CookieJar()
        for cookie in self.jar:
            jar.set_cookie(cookie)
        return WebSession(self.base_url, jar)

    def _open(self, path: str, data: dict[str, str] | None, follow: bool) -> Reply:
        handlers: list = [urllib.request.HTTPCookieProcessor(self.jar)]
        if not follow:
            handlers.append(_NoRedirect())
        opener = urllib.request.build_opener(*handlers)
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with opener.open(self.base_url + path, data=body, timeout=30) as response:
                return Reply(response.status, response.url, "", response.read().decode())
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location", "")
            return Reply(
                exc.code, exc.url, urllib.parse.urlsplit(location).path, exc.read().decode(errors="replace")
            )

    def get(self, path: str) -> Reply:
        return self._open(path, None, follow=True)

    def post(self, path: str, data: dict[str, str], *, follow: bool = False) -> Reply:
        """POST a form; by default the redirect is not followed (see `location`)."""
        return self._open(path, data, follow=follow)

    def csrf(self, path: str) -> str:
        page = self.get(path)
        assert page.status == 200, (path, page.status)
        return re.search(r'name="csrf_token"[^>]*? value="([^"]+)"', page.text).group(1)

    def log_in(self, account: Account) -> None:
        reply = self.post(
            "/login",
            {"csrf_token": self.csrf("/login"), "email": account.email, "password": account.password},
        )
        assert reply.status == 302, f"log in as {account.email} failed ({reply.status})"


def create_campaign(session: WebSession, name: str, *, domain: str | None = None) -> int:
    """A draft campaign through its form; its audience is the opted-in supporters whose email
    contains `domain` (a saved filter made for it), or all opted-in ones. Returns its id."""
    fields = {
        "name": name,
        "from_address": FROM,
        "subject": SUBJECT,
        "text_body": TEXT_BODY,
        "html_body": "",
        "audience": "opted_in",
        "filter_id": "0",
        "notify_email": "",
        "launch_at": "",
    }
    if domain:
        filter_name = f"Email contains {domain}"
        saved = session.post(
            "/campaigns/filters",
            {
                "csrf_token": session.csrf("/campaigns/filters"),
                "name": filter_name,
                "conditions-0-field": "email",
                "conditions-0-op": "contains",
                "conditions-0-value": domain,
                **{
                    f"conditions-{row}-{part}": value
                    for row in (1, 2)
                    for part, value in (("field", ""), ("op", "equals"), ("value", ""))
                },
            },
        )
        assert saved.status == 302, re.findall(r'role="alert">([^<]+)<', saved.text)
        form = session.get("/campaigns/new").text
        option = re.search(rf'<option value="(\d+)">{re.escape(filter_name)}</option>', form)
        assert option, f"the saved filter {filter_name!r} is not offered"
        fields.update(audience="filter", filter_id=option.group(1))
    created = session.post("/campaigns/new", {"csrf_token": session.csrf("/campaigns/new"), **fields})
    assert created.status == 302, created.flashes() or created.text[-2000:]
    return int(re.fullmatch(r"/campaigns/(\d+)", created.location).group(1))


# ------------------------------------------------------------------------ the product's truth


def database(var_dir: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(var_dir / "conveyor.db", timeout=30))


def campaign_row(var_dir: Path, campaign_id: int) -> tuple[int, str, int | None]:
    """(job id, status, launch run id) as the database holds them."""
    with database(var_dir) as db:
        return db.execute(
            "SELECT job_id, status, launch_run_id FROM campaign WHERE id = ?", (campaign_id,)
        ).fetchone()


def runs_of(var_dir: Path, job_id: int) -> list[tuple[int, str, str]]:
    """(id, state, trigger) of every run of the job."""
    with database(var_dir) as db:
        return db.execute(
            "SELECT id, state, trigger FROM run WHERE job_id = ? ORDER BY id", (job_id,)
        ).fetchall()


def wait_for_state(var_dir: Path, run_id: int, state: str, timeout: float = SEND_TIMEOUT) -> None:
    """Poll the database until the run is in `state`."""
    deadline = time.monotonic() + timeout
    while True:
        with database(var_dir) as db:
            now = db.execute("SELECT state, error FROM run WHERE id = ?", (run_id,)).fetchone()
        if now[0] == state:
            return
        assert time.monotonic() < deadline, f"run {run_id} is {now}, not {state}"
        time.sleep(0.2)


def received_by(sink, domain: str) -> Counter:
    """How many messages the SMTP sink accepted for each address of `domain`."""
    with sink.lock:
        return Counter(
            address for envelope in sink.messages for address in envelope.rcpt_tos if address.endswith(domain)
        )


# ----------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def launcher_user(server: Server) -> Account:
    return _create_user(server, "launches@example.org", "launches-secret-password-7")


CONCURRENT_DOMAIN = "@concurrent.launch.example"


@pytest.fixture
def thirty_readers(server: Server) -> Iterator[dict[str, str]]:
    """30 opted-in supporters of a domain of their own (email → first name); opted out after
    the test, as other tests mail "all opted-in supporters"."""
    people = {f"reader{i:02d}{CONCURRENT_DOMAIN}": f"Reader{i}" for i in range(30)}
    upsert_opted_in(server, people)
    yield people
    opt_out_domain(server, CONCURRENT_DOMAIN.removeprefix("@"))


def test_twenty_concurrent_launches_make_one_run_and_one_message_each(
    server: Server, smtp_sink, launcher_user: Account, thirty_readers: dict[str, str]
):
    """20 Launch POSTs released together by a barrier: one run; all 20 redirect to its page;
    one is told "launched", the other 19 "already launched"; 30 supporters get one message
    each."""
    people, domain = thirty_readers, CONCURRENT_DOMAIN
    person = WebSession(server.url)
    person.log_in(launcher_user)
    name = "Twenty clicks appeal"
    campaign_id = create_campaign(person, name, domain=domain)
    launch_path = f"/campaigns/{campaign_id}/launch"
    confirmation = person.get(launch_path)
    assert "The audience has <strong>30 supporters</strong>" in confirmation.text
    token = person.csrf(launch_path)

    tabs = [person.tab() for _ in range(CONCURRENT_LAUNCHES)]
    barrier = threading.Barrier(CONCURRENT_LAUNCHES)
    replies: list[Reply | BaseException] = [None] * CONCURRENT_LAUNCHES

    def click(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            replies[index] = tabs[index].post(launch_path, {"csrf_token": token})
        except BaseException as exc:  # surfaced below
            replies[index] = exc

    threads = [threading.Thread(target=click, args=(i,)) for i in range(CONCURRENT_LAUNCHES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(isinstance(reply, Reply) for reply in replies), replies

    job_id, status, launch_run_id = campaign_row(server.var_dir, campaign_id)
    runs = runs_of(server.var_dir, job_id)
    assert len(runs) == 1, f"{len(runs)} runs for one campaign: {runs}"
    run_id = runs[0][0]
    assert (status, launch_run_id) == ("launched", run_id)
    assert [reply.status for reply in replies] == [302] * CONCURRENT_LAUNCHES
    assert {reply.location for reply in replies} == {f"/runs/{run_id}"}
    told = Counter(
        message
        for tab, reply in zip(tabs, replies, strict=True)
        for message in tab.get(reply.location).flashes()
    )
    assert told == {f"“{name}” launched.": 1, ALREADY: CONCURRENT_LAUNCHES - 1}, told

    wait_for_state(server.var_dir, run_id, "collecting")
    received = received_by(smtp_sink, domain)
    assert received == Counter(people.keys()), {a: n for a, n in received.items() if n != 1}
    assert len(runs_of(server.var_dir, job_id)) == 1


# --------------------------------------------------------- the job queue down, then back up


class ThrowAwayRedis:
    """A `redis-server` on a TCP port of its own, stopped and started again by the test."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "Debian's redis-server is needed (apt-get install -y redis-server)"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from redis import Redis

        client = Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    return
            except Exception:
                assert time.monotonic() < deadline, "redis-server did not answer"
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@dataclass
class OwnServer:
    url: str
    var_dir: Path
    admin: Account
    output: list[str]


@pytest.fixture
def server_on_own_redis(tmp_path, smtp_sink):
    """`python -m webapp.launcher` with CONVEYOR_REDIS_URL set to a Redis this test owns."""
    import os

    redis = ThrowAwayRedis()
    redis.start()
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONVEYOR_")}
    env.update(
        {
            "CONVEYOR_VAR_DIR": str(tmp_path / "var"),
            "CONVEYOR_HOST": "127.0.0.1",
            "CONVEYOR_PORT": str(port),
            "CONVEYOR_REDIS_URL": redis.url,
            "CONVEYOR_SMTP_URL": smtp_sink.url,
            "CONVEYOR_EMAIL_BATCH_SIZE": str(EMAIL_BATCH_SIZE),
            "CONVEYOR_WEB_WORKERS": "1",
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
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (_status(f"{url}/login") == 200 and PASSWORD_LINE.search("".join(output))):
            assert proc.poll() is None, "the launcher exited:\n" + "".join(output)
            assert time.monotonic() < deadline, "the launcher did not serve:\n" + "".join(output)
            time.sleep(0.25)
        email, password = PASSWORD_LINE.search("".join(output)).groups()
        yield OwnServer(url, tmp_path / "var", Account(email, password), output), redis
    finally:
        _stop(proc)
        reader.join(timeout=5)
        redis.stop()


def test_launch_with_the_queue_down_changes_nothing_and_works_once_it_is_back(server_on_own_redis, smtp_sink):
    """Redis stopped: Launch says the queue is unreachable, makes no run, sends nothing and
    leaves the campaign a draft. Redis started again: Launch makes one run and one message
    per supporter; launching again is refused and sends nothing more."""
    own, redis = server_on_own_redis
    domain = "@queue-down.launch.example"
    people = {f"patient{i:02d}{domain}": f"Patient{i}" for i in range(12)}
    upsert_opted_in(own, people)
    person = WebSession(own.url)
    person.log_in(own.admin)
    name = "Queue down appeal"
    campaign_id = create_campaign(person, name)
    launch_path = f"/campaigns/{campaign_id}/launch"
    token = person.csrf(launch_path)
    job_id, status, _ = campaign_row(own.var_dir, campaign_id)
    assert status == "draft"

    redis.stop()
    refused = person.post(launch_path, {"csrf_token": token})
    assert (refused.status, refused.location) == (302, f"/campaigns/{campaign_id}")
    shown = person.get(refused.location)
    assert shown.status == 200, f"the campaign page answered {shown.status}"
    assert any(message.startswith(QUEUE_DOWN) for message in shown.flashes()), shown.flashes()
    assert runs_of(own.var_dir, job_id) == []
    assert campaign_row(own.var_dir, campaign_id)[1:] == ("draft", None)
    assert "Launch…" in shown.text  # still offered: nothing was started

    redis.start()
    token = person.csrf(launch_path)  # the confirmation page again, as a person would
    launched = person.post(launch_path, {"csrf_token": token})
    runs = runs_of(own.var_dir, job_id)
    assert len(runs) == 1, runs
    run_id = runs[0][0]
    assert (launched.status, launched.location) == (302, f"/runs/{run_id}"), launched.flashes()
    assert person.get(launched.location).flashes() == [f"“{name}” launched."]
    assert campaign_row(own.var_dir, campaign_id)[1:] == ("launched", run_id)

    again = person.post(launch_path, {"csrf_token": token})
    assert (again.status, again.location) == (302, f"/runs/{run_id}")
    assert person.get(again.location).flashes() == [ALREADY]

    wait_for_state(own.var_dir, run_id, "collecting")
    received = received_by(smtp_sink, domain)
    assert received == Counter(people.keys()), received
    assert len(runs_of(own.var_dir, job_id)) == 1
