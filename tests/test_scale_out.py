"""Scale-out for real: PostgreSQL, redis-server and moto's S3 server, two web servers (gunicorn) and
two workers each with its own empty local folder, and the scheduler, all separate processes joined
only by configuration. Runs in `make test`'s second pass, which provides PostgreSQL and Redis."""

from __future__ import annotations

import csv
import email
import email.policy
import html
import io
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from rq import Worker

from tests.conftest import EXTERNAL_DATABASE, EXTERNAL_REDIS, PASSWORD, fresh, make_user
from tests.processes import REPO, Processes
from tests.services import free_port
from webapp.engine import launches, queueing
from webapp.extensions import db
from webapp.models import Job, Run, Supporter
from webapp.models.users import Role
from webapp.rules.states import RunState

pytestmark = pytest.mark.skipif(
    not (EXTERNAL_DATABASE and EXTERNAL_REDIS),
    reason="needs CONVEYOR_DATABASE_URL (PostgreSQL) and CONVEYOR_REDIS_URL: make test's second pass",
)

BIN = Path(sys.executable).parent
BUCKET = "conveyor-scale-out"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's standalone S3 server on 127.0.0.1, with the bucket the deployment stores files in."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials).create_bucket(
        Bucket=BUCKET
    )
    yield endpoint
    server.stop()


@dataclass(kw_only=True)
class Deployment(Processes):
    """The processes of one deployment, and where each web server answers."""

    web: list[str]
    env: dict[str, str]

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        env = {**self.env, "CONVEYOR_VAR_DIR": str(self.tmp / name)}  # each its own empty folder
        return self.launch(name, command, env)

    def start_worker(self, name: str) -> subprocess.Popen:
        return self.start(name, [sys.executable, str(REPO / "worker.py"), "--lane", "all", "--name", name])


@pytest.fixture
def deployment(app, tmp_path, s3_endpoint, smtp_sink):
    """Two web servers, two workers (w1, w2) and the scheduler on the test's database and Redis."""
    ports = [free_port(), free_port()]
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONVEYOR_")}
    env.update(
        {
            "CONVEYOR_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "CONVEYOR_REDIS_URL": app.config["REDIS_URL"],
            "CONVEYOR_QUEUE": app.config["QUEUE_NAME"],
            "CONVEYOR_SECRET_KEY": "one-key-for-every-machine",
            "CONVEYOR_BOUNCE_TOKEN": "one-bounce-token-for-every-machine",
            "CONVEYOR_STORAGE_URL": f"s3://{BUCKET}/{tmp_path.name}",
            "AWS_ENDPOINT_URL": s3_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "CONVEYOR_CONCURRENCY": "2",
            "CONVEYOR_IMPORT_BATCH_SIZE": "1000",
            "CONVEYOR_HEARTBEAT_SECONDS": "0.5",
            "CONVEYOR_DEAD_AFTER_SECONDS": "3",
            "CONVEYOR_RECONCILE_EVERY_SECONDS": "1",
            "CONVEYOR_SMTP_URL": smtp_sink.url,
            "CONVEYOR_BASE_URL": f"http://127.0.0.1:{ports[0]}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    here = Deployment(web=[f"http://127.0.0.1:{port}" for port in ports], env=env, tmp=tmp_path)
    try:
        for n, port in enumerate(ports, start=1):
            here.start(
                f"web{n}",
                [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "app:app"],
            )
        here.start_worker("w1")
        here.start_worker("w2")
        here.start("scheduler", [str(BIN / "flask"), "--app", "app", "scheduler"])
        for url in here.web:
            _wait(lambda url=url: _answers(f"{url}/login"), 60, here)
        yield here
    finally:
        here.stop()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:  # not listening yet, or still booting
        return False


def _wait(predicate, timeout: float, deployment: Deployment | None = None, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        if predicate():
            return
        time.sleep(0.1)
    logs = deployment.logs() if deployment else ""
    raise AssertionError(f"not reached within {timeout:.0f} s: {what}\n{logs}")


class Person:
    """Someone with a browser session, who may reach either web server."""

    def __init__(self, deployment: Deployment, email: str) -> None:
        self.web = deployment.web
        self.http = requests.Session()
        self.post(0, "/login", {"email": email, "password": PASSWORD}, page="/login")

    def token(self, server: int, page: str) -> str:
        found = CSRF.search(self.http.get(self.web[server] + page, timeout=10).text)
        assert found, f"no form on {page}"
        return found.group(1)

    def post(self, server: int, path: str, data: dict, *, page: str | None = None, files=None):
        data = {**data, "csrf_token": self.token(server, page or "/")}
        response = self.http.post(
            self.web[server] + path, data=data, files=files, allow_redirects=False, timeout=60
        )
        assert response.status_code in (302, 303), (path, response.status_code, response.text[:500])
        return urlsplit(response.headers["Location"]).path

    def import_job(self, csv_text: str, name: str, *, upload_on: int, map_on: int, run: bool) -> int:
        """Upload on one web server, map on the other: the job's id (or its run's)."""
        mapping_page = self.post(
            upload_on,
            "/jobs/new/import",
            {"name": name, "encoding": "utf-8"},
            page="/jobs/new/import",
            files={"file": ("people.csv", csv_text.encode())},
        )
        header = next(csv.reader(io.StringIO(csv_text)))
        columns = {f"col_{i}": column for i, column in enumerate(header)}
        action = {"action": "save_run"} if run else {}
        landed = self.post(map_on, mapping_page, {"name": name, **columns, **action}, page=mapping_page)
        return int(landed.rstrip("/").rsplit("/", 1)[1])


def people(emails, first_name: str = "Ann") -> str:
    return "email,first_name\n" + "".join(f"{email},{first_name}\n" for email in emails)


def supporters() -> int:
    return db.session.query(Supporter).count()


def test_an_upload_on_one_web_server_is_mapped_on_the_other_run_by_a_worker_and_downloaded_anywhere(
    app, deployment
):
    make_user("ann@example.org")
    ann = Person(deployment, "ann@example.org")
    rows = people([f"p{i}@example.org" for i in range(50)]) + "not-an-address,Bob\n"
    run_id = ann.import_job(rows, "Spring donors", upload_on=0, map_on=1, run=True)
    _wait(lambda: fresh(db.session.get(Run, run_id)).state.is_finished, 60, deployment, "the import")
    run = db.session.get(Run, run_id)
    assert run.state is RunState.COMPLETED, run.error
    assert (run.created, run.rejected) == (50, 1)
    assert supporters() == 50
    for server in (0, 1):  # the report the worker wrote is in the bucket, for either web server
        report = ann.http.get(f"{deployment.web[server]}/runs/{run_id}/result", timeout=10)
        assert report.status_code == 200
        assert "not-an-address" in report.text and "line,reason" in report.text
    assert not list(deployment.tmp.glob("*/uploads/*.csv")), "an upload stayed on a local disk"


def test_two_overlapping_imports_run_in_parallel_on_the_two_workers_with_exact_counts(app, deployment):
    make_user("ann@example.org")
    ann = Person(deployment, "ann@example.org")
    first = people([f"a{i}@example.org" for i in range(20_000)], "First")
    # 5,000 of the second file's addresses are in the first as well, with another first name
    second = people([f"a{i}@example.org" for i in range(15_000, 35_000)], "Second")
    jobs = [
        ann.import_job(first, "First list", upload_on=0, map_on=1, run=False),
        ann.import_job(second, "Second list", upload_on=1, map_on=0, run=False),
    ]
    runs = [
        int(ann.post(server, f"/jobs/{job}/run", {}, page=f"/jobs/{job}").rsplit("/", 1)[1])
        for server, job in enumerate(jobs)
    ]

    def finished() -> bool:
        return all(db.session.get(Run, run).state.is_finished for run in runs)

    _wait(finished, 180, deployment, "both imports")
    first_run, second_run = (db.session.get(Run, run) for run in runs)
    assert first_run.state is second_run.state is RunState.COMPLETED, (first_run.error, second_run.error)
    # each started before the other finished (the database's clock): they ran at the same time,
    # one on each worker, however quickly (polling for both "processing" at once could miss it)
    assert max(first_run.started_at, second_run.started_at) < min(
        first_run.finished_at, second_run.finished_at
    )
    assert first_run.checked == second_run.checked == 20_000
    assert first_run.created + second_run.created == 35_000
    assert first_run.updated + second_run.updated == 5_000
    assert first_run.unchanged + second_run.unchanged == 0
    assert supporters() == 35_000


def test_a_three_step_group_completes_its_steps_in_order(app, deployment):
    from tests.test_chains import group_of

    owner = make_user("ann@example.org")
    ann = Person(deployment, "ann@example.org")
    steps = [
        ann.import_job(
            people(f"s{n}-{i}@example.org" for i in range(100)),
            f"Step {n}",
            upload_on=n % 2,
            map_on=1 - n % 2,
            run=False,
        )
        for n in range(3)
    ]
    group = group_of(owner, [db.session.get(Job, step) for step in steps])
    landed = ann.post(1, f"/groups/{group.id}/run", {}, page=f"/groups/{group.id}")
    group_run = int(landed.rsplit("/", 1)[1])
    _wait(lambda: db.session.get(Run, group_run).state.is_finished, 120, deployment, "the group")
    assert db.session.get(Run, group_run).state is RunState.COMPLETED, db.session.get(Run, group_run).error
    step_runs = Run.query.filter(Run.parent_run_id == group_run).order_by(Run.started_at).all()
    assert [run.job_id for run in step_runs] == steps
    assert all(run.state is RunState.COMPLETED for run in step_runs)
    assert all(a.finished_at <= b.started_at for a, b in zip(step_runs, step_runs[1:], strict=False))
    assert supporters() == 300


def _worker_of(run: Run) -> Worker:
    """The RQ worker (of w1, w2) busy with `run`."""
    connection = queueing.redis_connection()
    for worker in Worker.all(connection=connection):
        if worker.get_current_job_id() == run.rq_job_id:
            return worker
    raise AssertionError("no worker holds the run")


def test_a_worker_killed_mid_import_is_failed_by_the_reconciler_and_retry_completes_it_once(app, deployment):
    make_user("ann@example.org")
    ann = Person(deployment, "ann@example.org")
    rows = 300_000
    run_id = ann.import_job(
        people(f"k{i}@example.org" for i in range(rows)), "Big list", upload_on=0, map_on=1, run=True
    )
    _wait(lambda: db.session.get(Run, run_id).progress_done >= 5_000, 120, deployment, "the import to start")
    run = db.session.get(Run, run_id)
    assert not run.state.is_finished, "the import ended before the worker could be killed"
    victim = _worker_of(run)
    name = victim.name
    os.killpg(deployment.processes[name].pid, signal.SIGKILL)  # the worker and its work horse
    deployment.processes[name].wait()

    _wait(lambda: db.session.get(Run, run_id).state is RunState.FAILED, 30, deployment, "the reconciler")
    run = fresh(db.session.get(Run, run_id))
    assert "worker" in run.error.lower() and "rows were imported" in run.error, run.error
    kept = supporters()
    assert 0 < kept < rows and kept == run.created

    restarted = deployment.start_worker(name)  # at once, under the same name
    time.sleep(3)
    assert restarted.poll() is None, deployment.logs()
    ann.post(1, f"/runs/{run_id}/retry", {}, page=f"/runs/{run_id}")
    _wait(lambda: db.session.get(Run, run_id).state.is_finished, 180, deployment, "the retry")
    run = fresh(db.session.get(Run, run_id))
    assert run.state is RunState.COMPLETED, run.error
    assert supporters() == rows  # nothing imported twice
    assert db.session.query(Supporter.email).distinct().count() == rows


def test_a_tracking_link_signed_on_a_worker_is_accepted_by_either_web_server(app, deployment, smtp_sink):
    from tests.test_email_campaign import campaign_for

    owner = make_user("ann@example.org", Role.USER)
    db.session.execute(
        db.insert(Supporter), [{"email": "reader@example.org", "first_name": "Rea", "opted_in": True}]
    )
    db.session.commit()
    campaign = campaign_for(owner)
    run = launches.launch(campaign.id, owner)
    _wait(lambda: smtp_sink.messages, 60, deployment, "the campaign's message")
    assert fresh(run).state is not RunState.FAILED, fresh(run).error
    message = email.message_from_bytes(smtp_sink.messages[0].content, policy=email.policy.default)
    body = html.unescape(message.get_body(("html",)).get_content())
    click = re.search(r'href="https?://[^/"]+(/t/c/[^"]+)"', body)
    unsubscribe = re.search(r'href="https?://[^/"]+(/t/u/[^"]+)"', body)
    assert click and unsubscribe, body
    for web in deployment.web:
        followed = requests.get(web + click.group(1), allow_redirects=False, timeout=10)
        assert followed.status_code in (302, 303)
        assert followed.headers["Location"].startswith("https://park.example/give")
        assert requests.get(web + unsubscribe.group(1), timeout=10).status_code == 200
