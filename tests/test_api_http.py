"""The API over real HTTP: `requests` against the real web server (gunicorn) and a real RQ worker
(worker.py), each its own process, on the test session's database and Redis (the embedded
default, or CONVEYOR_DATABASE_URL's and CONVEYOR_REDIS_URL's). A script's whole day by token
only — an import sent as CSV, polled to the end, its rejected lines read; an export job made,
run and its CSV downloaded — and the rules a token lives by: scopes, expiry and revocation
(a 401 on the very next request), the rate limit (429 with Retry-After, on a second server
started with a low limit), and each role on its own and another user's objects."""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from tests.conftest import PASSWORD, _emptied, make_user
from tests.processes import REPO, Processes
from tests.services import free_port
from webapp import create_app
from webapp.api.tokens import issue
from webapp.extensions import db
from webapp.models import ApiToken, AuditEntry, Run, Supporter
from webapp.models.base import utcnow
from webapp.models.users import Role

BIN = Path(sys.executable).parent
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
LOW_LIMIT = 3  # requests a minute per token on the second server (whose upload limit is 4 KB)


@dataclass(kw_only=True)
class Deployment(Processes):
    """The processes, where the servers answer, the tokens by name, and the app for looking at
    the database from the test."""

    url: str
    limited_url: str
    app: object
    tokens: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, token: str | None, *, server: str | None = None, **kwargs):
        """One request to the API, as a script sends it (its token's name, or None)."""
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {self.tokens.get(token, token)}"
        return requests.request(method, (server or self.url) + path, headers=headers, timeout=30, **kwargs)

    def until(self, what: str, predicate, timeout: float = 30.0):
        """Poll `predicate` until it answers something true (returned), or fail with the logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate()
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"not within {timeout:.0f} s: {what}\n{self.logs()}")

    def finished(self, run_id: int, token: str = "user") -> dict:
        """Poll the run through the API until it is finished; the run as the API last showed it."""

        def done():
            run = self.call("GET", f"/api/v1/runs/{run_id}", token).json()
            return run if run["state"] in ("completed", "failed", "cancelled") else None

        return self.until(f"run {run_id} finishes", done)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:  # not listening yet
        return False


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, redis_url, migrated_database) -> Iterator[Deployment]:
    """A web server, a second one with a low rate limit, and a worker; users of each role and
    their tokens (issued in the database as the tokens page issues them)."""
    tmp = tmp_path_factory.mktemp("api-http")
    database = migrated_database or f"sqlite:///{tmp / 'conveyor.db'}"
    queue = f"test-api-{uuid.uuid4().hex[:8]}"
    identity = {"SECRET_KEY": "api-http-secret", "BOUNCE_TOKEN": "api-http-bounce"}
    app = create_app(
        {
            "TESTING": True,
            "VAR_DIR": str(tmp / "var"),
            "SQLALCHEMY_DATABASE_URI": database,
            "REDIS_URL": redis_url,
            "QUEUE_NAME": queue,
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            **identity,
        }
    )
    ports = free_port(), free_port()
    here = Deployment(
        url=f"http://127.0.0.1:{ports[0]}", limited_url=f"http://127.0.0.1:{ports[1]}", tmp=tmp, app=app
    )
    with app.app_context():
        _emptied() if migrated_database else db.create_all()
        people = {
            "user": make_user("user@example.org"),
            "other": make_user("other@example.org"),
            "admin": make_user("admin@example.org", Role.ADMIN),
            "super": make_user("super@example.org", Role.SUPER_ADMIN),
        }
        for name, person in people.items():
            here.tokens[name] = issue(person, "Script", read_only=False, expires_at=None)[1]
        here.tokens["reader"] = issue(people["user"], "Reader", read_only=True, expires_at=None)[1]
        for name in ("expiring", "revoked", "limited", "limited2", "large"):
            here.tokens[name] = issue(people["user"], name, read_only=False, expires_at=None)[1]
        db.session.commit()
        env = {key: value for key, value in os.environ.items() if not key.startswith("CONVEYOR_")}
        env |= {
            "CONVEYOR_DATABASE_URL": database,
            "CONVEYOR_REDIS_URL": redis_url,
            "CONVEYOR_QUEUE": queue,
            "CONVEYOR_VAR_DIR": str(tmp / "var"),
            "CONVEYOR_SECRET_KEY": identity["SECRET_KEY"],
            "CONVEYOR_BOUNCE_TOKEN": identity["BOUNCE_TOKEN"],
            "CONVEYOR_HEARTBEAT_SECONDS": "0.5",
            "PYTHONUNBUFFERED": "1",
        }
        gunicorn = [str(BIN / "gunicorn"), "--workers", "2", "app:app", "--bind"]
        try:
            here.launch("web", [*gunicorn, f"127.0.0.1:{ports[0]}"], env)
            here.launch(
                "web-limited",
                [*gunicorn, f"127.0.0.1:{ports[1]}"],
                env | {"CONVEYOR_API_RATE_LIMIT": str(LOW_LIMIT), "CONVEYOR_UPLOAD_LIMIT": "4k"},
            )
            here.launch("worker", [sys.executable, str(REPO / "worker.py"), "--lane", "all"], env)
            for url in (here.url, here.limited_url):
                here.until(f"{url} answers", lambda url=url: _answers(f"{url}/login"), 60)
            yield here
        finally:
            here.stop()
            db.session.remove()
            db.engine.dispose()


def documented(deployment: Deployment, method: str, path: str) -> bool:
    """Whether the API's own document has this operation (an endpoint still being added)."""
    paths = deployment.call("GET", "/api/v1/openapi.json", None).json()["paths"]
    return method.lower() in paths.get(path, {})


CSV = "email,first_name\nann@example.org,Ann\nnot-an-address,Bob\nbea@example.org,Bea\n"


def test_a_script_imports_reads_the_rejected_lines_exports_and_downloads_by_token_only(deployment):
    call = deployment.call
    assert documented(deployment, "post", "/api/v1/imports")
    sent = call(
        "POST",
        "/api/v1/imports?name=Nightly%20CRM%20sync",
        "user",
        data=CSV.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert sent.status_code == 202, sent.text
    assert sent.json()["type_label"] == "Import Service" and sent.json()["state"] in (
        "queued",
        "initializing",
    )
    imported = deployment.finished(sent.json()["id"])
    assert imported["state"] == "completed", imported
    assert imported["counts"]["created"] == 2 and imported["counts"]["rejected"] == 1
    rejected = call("GET", f"/api/v1/runs/{imported['id']}/rejections", "user").json()["rejected"]
    assert [entry["line"] for entry in rejected] == [3] and "address" in rejected[0]["reason"].lower()
    monitor = call("GET", "/api/v1/monitor", "user").json()
    assert imported["id"] in {run["id"] for run in monitor["runs"]}

    made = call(
        "POST",
        "/api/v1/jobs",
        "user",
        json={"type": "user_data_export", "name": "Donors out", "fields": ["email", "first_name"]},
    )
    assert made.status_code == 201, made.text
    started = call("POST", f"/api/v1/jobs/{made.json()['id']}/runs", "user")
    assert started.status_code == 201 and started.json()["job_id"] == made.json()["id"]
    exported = deployment.finished(started.json()["id"])
    assert exported["state"] == "completed" and exported["result_available"], exported
    result = call("GET", f"/api/v1/runs/{exported['id']}/result", "user")
    assert result.status_code == 200 and result.headers["Content-Type"].startswith("text/csv")
    lines = result.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "Email,First name"
    assert sorted(lines[1:]) == ["ann@example.org,Ann", "bea@example.org,Bea"]  # not the rejected one
    log = call("GET", f"/api/v1/runs/{exported['id']}/log", "user").json()["lines"]
    assert log and all(line["at"].endswith("+00:00") for line in log)
    history = call("GET", "/api/v1/history", "user").json()["runs"]
    assert [run["id"] for run in history][:2] == [exported["id"], imported["id"]]
    with deployment.app.app_context():
        assert {s.email for s in Supporter.query} == {"ann@example.org", "bea@example.org"}
        trigger = db.session.get(Run, imported["id"]).trigger
    assert trigger == "api"


def test_an_export_service_run_from_a_saved_job_is_downloaded(deployment):
    assert documented(deployment, "post", "/api/v1/exports")
    call = deployment.call
    made = call(
        "POST",
        "/api/v1/jobs",
        "user",
        json={"type": "user_data_export", "name": "Saved", "fields": ["email"]},
    )
    sent = call("POST", "/api/v1/exports", "user", json={"job_id": made.json()["id"]})
    assert sent.status_code == 202 and sent.json()["type_label"] == "Export Service", sent.text
    exported = deployment.finished(sent.json()["id"])
    result = call("GET", f"/api/v1/runs/{exported['id']}/result", "user")
    assert result.status_code == 200 and result.content.decode("utf-8-sig").splitlines()[0] == "Email"
    assert call("GET", f"/api/v1/runs/{exported['id']}/result", "other").status_code == 404


def test_a_read_only_token_reads_and_is_refused_every_change(deployment):
    call = deployment.call
    run_id = call("GET", "/api/v1/history", "user").json()["runs"][0]["id"]
    assert call("GET", f"/api/v1/runs/{run_id}", "reader").status_code == 200
    for method, path in (
        ("POST", f"/api/v1/runs/{run_id}/retry"),
        ("POST", f"/api/v1/runs/{run_id}/dismiss"),
        ("POST", "/api/v1/jobs"),
        ("POST", "/api/v1/imports"),
    ):
        refused = call(method, path, "reader", json={})
        assert refused.status_code == 403, (method, path)
        assert refused.json()["error"] == {"code": "forbidden", "message": "this API token is read-only"}


def test_an_expired_or_revoked_token_is_refused_on_the_very_next_request(deployment):
    call = deployment.call
    assert call("GET", "/api/v1/jobs", "expiring").status_code == 200
    with deployment.app.app_context():
        token = ApiToken.query.filter_by(name="expiring").one()
        token.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    expired = call("GET", "/api/v1/jobs", "expiring")
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "unauthorized"

    assert call("GET", "/api/v1/jobs", "revoked").status_code == 200
    browser = requests.Session()  # its owner revokes it on the API tokens page
    page = browser.get(deployment.url + "/login", timeout=10).text
    browser.post(
        deployment.url + "/login",
        data={"email": "user@example.org", "password": PASSWORD, "csrf_token": CSRF.search(page).group(1)},
        timeout=10,
    )
    tokens_page = browser.get(deployment.url + "/account/api-tokens/", timeout=10)
    assert tokens_page.status_code == 200 and "revoked" in tokens_page.text
    with deployment.app.app_context():
        token_id = ApiToken.query.filter_by(name="revoked").one().id
    done = browser.post(
        f"{deployment.url}/account/api-tokens/{token_id}/revoke",
        data={"csrf_token": CSRF.search(tokens_page.text).group(1)},
        timeout=10,
    )
    assert done.status_code == 200 and "was revoked" in done.text
    assert call("GET", "/api/v1/jobs", "revoked").status_code == 401
    cookie_only = browser.get(deployment.url + "/api/v1/jobs", timeout=10)  # the session is no token
    assert cookie_only.status_code == 401 and cookie_only.json()["error"]["code"] == "unauthorized"
    with deployment.app.app_context():
        assert AuditEntry.query.filter_by(action="api_token.revoked", object_id=token_id).count() == 1


def test_the_rate_limit_answers_429_with_retry_after_per_token(deployment):
    call, server = deployment.call, deployment.limited_url
    answers = [call("GET", "/api/v1/jobs", "limited", server=server) for _ in range(LOW_LIMIT + 1)]
    statuses = [answer.status_code for answer in answers]
    if statuses[-1] == 200:  # the minute turned between two requests: the count started again
        answers = [call("GET", "/api/v1/jobs", "limited", server=server) for _ in range(LOW_LIMIT + 1)]
        statuses = [answer.status_code for answer in answers]
    assert statuses[-1] == 429 and 200 in statuses, statuses
    refused = answers[-1]
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 61 and refused.json()["error"]["code"] == "rate_limited"
    assert refused.json()["error"]["retry_after"] == wait
    assert call("GET", "/api/v1/jobs", "limited2", server=server).status_code == 200  # another token
    assert call("GET", "/api/v1/jobs", "limited", server=deployment.url).status_code == 200  # its limit


def test_each_role_on_its_own_and_another_users_run_and_kill_for_admins_only(deployment):
    call = deployment.call
    made = call("POST", "/api/v1/jobs", "other", json={"type": "user_data_export", "name": "Theirs"})
    run = deployment.finished(
        call("POST", f"/api/v1/jobs/{made.json()['id']}/runs", "other").json()["id"], "other"
    )
    theirs = f"/api/v1/runs/{run['id']}"
    for role, status in (("user", 404), ("admin", 404), ("super", 200), ("other", 200)):
        answer = call("GET", theirs, role)
        assert answer.status_code == status, role
        if status == 404:
            assert set(answer.json()) == {"error"}  # nothing of theirs
    assert call("GET", f"/api/v1/jobs/{made.json()['id']}", "user").status_code == 404
    assert call("GET", f"/api/v1/jobs/{made.json()['id']}", "super").json()["owner"] == "other@example.org"
    assert call("POST", f"{theirs}/retry", "admin").status_code == 404  # unseen, not refused
    taken = call("GET", f"{theirs}/result", "super")
    assert taken.status_code == 200 and taken.headers["Content-Type"].startswith("text/csv")
    with deployment.app.app_context():  # a super admin's download of another's file is audited
        audited = AuditEntry.query.filter_by(run_id=run["id"], action="run.result_downloaded_for_owner").one()
        assert audited.actor.email == "super@example.org" and "other@example.org" in audited.detail

    assert call("POST", f"{theirs}/kill", "other").status_code == 403  # not an admin: its own run
    assert call("POST", f"{theirs}/kill", "user").status_code == 404
    assert call("POST", f"{theirs}/kill", "admin").status_code == 404
    by_super = call("POST", f"{theirs}/kill", "super")  # allowed, but a finished run has no work horse
    assert by_super.status_code == 409 and by_super.json()["error"]["code"] == "conflict"
    own = call("POST", "/api/v1/jobs", "admin", json={"type": "user_data_export", "name": "Admin's"}).json()
    admins_run = deployment.finished(
        call("POST", f"/api/v1/jobs/{own['id']}/runs", "admin").json()["id"], "admin"
    )
    assert call("POST", f"/api/v1/runs/{admins_run['id']}/kill", "admin").status_code == 409


def test_a_body_over_the_upload_limit_is_a_413_in_json_and_starts_nothing(deployment):
    rows = "".join(f"person{i}@example.org,Person {i}\n" for i in range(400))  # ~12 KB
    with deployment.app.app_context():
        before = Run.query.count()
    answer = deployment.call(
        "POST",
        "/api/v1/imports",
        "large",
        server=deployment.limited_url,
        data=("email,first_name\n" + rows).encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_large"
    with deployment.app.app_context():
        assert Run.query.count() == before


def test_a_json_body_sent_in_chunks_is_held_to_the_json_limit_and_nesting_is_a_400(deployment):
    """Without a Content-Length the body's size is known only as it is read: reading stops at
    the JSON limit (a 413) rather than taking up to the upload limit into memory."""

    def chunks():
        yield b'{"type": "user_data_export", "name": "'
        for _ in range(40):
            yield b"x" * 65_536  # 2.5 MB in all
        yield b'"}'

    json_body = {"Content-Type": "application/json"}
    answer = deployment.call("POST", "/api/v1/jobs", "large", data=chunks(), headers=json_body)
    assert answer.status_code == 413, answer.content
    assert answer.json()["error"]["code"] == "too_large"
    deep = "[" * 50_000 + "]" * 50_000
    nested = deployment.call("POST", "/api/v1/jobs", "large", data=deep, headers=json_body)
    assert nested.status_code == 400 and nested.json()["error"]["code"] == "malformed_json"
    null = deployment.call("POST", "/api/v1/jobs", "large", data="null", headers=json_body)
    assert null.status_code == 422  # valid JSON, not a job
