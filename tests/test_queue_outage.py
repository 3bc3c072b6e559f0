"""The job queue (a real redis-server) goes away and comes back: every page still works and says
since when the queue is unreachable, actions that need it say so and save nothing half-done,
runs asked for meanwhile start once it is back, and a campaign launch makes one send."""

from __future__ import annotations

import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis

from tests.conftest import PASSWORD, free_port, fresh, make_user
from tests.conftest import import_job as make_import_job
from tests.test_email_campaign import campaign_for, supporters
from tests.test_engine import people_csv
from webapp import create_app
from webapp.engine import outage, queueing
from webapp.engine.reconciler import reconcile
from webapp.extensions import db
from webapp.models import Campaign, CampaignStatus, Run
from webapp.models.base import utcnow
from webapp.models.users import Role
from webapp.rules.states import RunState


class RedisServer:
    """A throw-away redis-server on 127.0.0.1 that a test stops and starts again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
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
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if Redis.from_url(self.url).ping():
                    break
            except Exception:
                time.sleep(0.05)
        self._forget_health()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._forget_health()

    @staticmethod
    def _forget_health() -> None:
        queueing._health["at"] = 0.0  # the next page asks Redis again


@pytest.fixture
def redis_server_tcp():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def outage_app(tmp_path, redis_server_tcp):
    """An app on its own real redis-server, which the test can take down."""
    app = create_app(
        {
            "TESTING": True,
            "VAR_DIR": str(tmp_path / "var"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.db'}",
            "REDIS_URL": redis_server_tcp.url,
            "QUEUE_NAME": f"test-{uuid.uuid4().hex[:8]}",
            "SECRET_KEY": "test-secret",
            "WTF_CSRF_ENABLED": False,
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            "IMPORT_BATCH_SIZE": 3,
            "EMAIL_BATCH_SIZE": 10,
            "BASE_URL": "http://conveyor.test",
        }
    )
    with app.app_context():
        db.create_all()
        outage._seen_down["value"] = False
        yield app
        db.session.remove()
        db.engine.dispose()


def _work(app) -> None:
    from rq import SimpleWorker

    SimpleWorker(queueing.lane_queues("all"), connection=queueing.redis_connection()).work(burst=True)


def _login(client, user) -> None:
    client.post("/login", data={"email": user.email, "password": PASSWORD})


def test_pages_say_since_when_the_queue_is_down_and_the_banner_goes_when_it_is_back(
    outage_app, redis_server_tcp
):
    user = make_user("ops@example.org", Role.ADMIN)
    client = outage_app.test_client()
    _login(client, user)
    assert "job queue has been unreachable" not in client.get("/").get_data(as_text=True)
    redis_server_tcp.stop()
    for path in ("/", "/history", "/jobs/", "/campaigns/", "/groups/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "The job queue has been unreachable since" in response.get_data(as_text=True)
    redis_server_tcp.start()
    assert "job queue has been unreachable" not in client.get("/").get_data(as_text=True)


def test_a_run_asked_for_during_the_outage_waits_and_starts_once_the_queue_is_back(
    outage_app, redis_server_tcp, tmp_path
):
    user = make_user("ops@example.org")
    client = outage_app.test_client()
    _login(client, user)
    job = make_import_job(user, people_csv(tmp_path / "p.csv", 5), ["email", "first_name"])
    redis_server_tcp.stop()
    response = client.post(f"/jobs/{job.id}/run", follow_redirects=True)
    assert response.status_code == 200
    assert "the job queue is unreachable right now" in response.get_data(as_text=True)
    run = Run.query.filter_by(job_id=job.id).one()
    assert run.state is RunState.QUEUED and run.rq_job_id is None  # saved whole, waiting
    redis_server_tcp.start()
    reconcile()  # the scheduler's next pass hands it to a worker
    _work(outage_app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED and run.created == 5


def test_a_launch_while_the_queue_is_down_changes_nothing_and_one_launch_after_sends_once(
    outage_app, redis_server_tcp
):
    user = make_user("ops@example.org")
    client = outage_app.test_client()
    _login(client, user)
    supporters(6)
    campaign = campaign_for(user)
    redis_server_tcp.stop()
    response = client.post(f"/campaigns/{campaign.id}/launch", follow_redirects=True)
    assert response.status_code == 200
    assert "The job queue is unreachable right now" in response.get_data(as_text=True)
    assert Run.query.count() == 0
    assert db.session.get(Campaign, campaign.id).status is CampaignStatus.DRAFT
    redis_server_tcp.start()
    client.post(f"/campaigns/{campaign.id}/launch")
    client.post(f"/campaigns/{campaign.id}/launch")  # a retried request
    _work(outage_app)
    run = Run.query.one()
    assert fresh(run).state is RunState.COLLECTING and fresh(run).created == 6


def test_a_scheduled_launch_saved_while_redis_dies_gets_its_timed_job_from_the_reconciler(
    outage_app, redis_server_tcp, monkeypatch
):
    from webapp.engine import launches

    user = make_user("ops@example.org")
    campaign = campaign_for(user, launch_at=utcnow() + timedelta(hours=1))
    # Redis answers the check before the launch, then goes away before the timed job is made
    monkeypatch.setattr(queueing, "require_queue", lambda: None)
    redis_server_tcp.stop()
    run = launches.launch(campaign.id, user)
    assert fresh(run).state is RunState.SCHEDULED and fresh(run).rq_job_id is None
    assert db.session.get(Campaign, campaign.id).launch_run_id == run.id
    redis_server_tcp.start()
    assert reconcile()["armed"] == 1
    job_id = fresh(run).rq_job_id
    assert job_id and job_id in queueing.scheduler()


def test_kill_is_refused_while_the_queue_is_down_and_nothing_changes(outage_app, redis_server_tcp):
    from webapp.engine.runs import RunActionError, kill_run, new_run

    admin = make_user("admin@example.org", Role.ADMIN)
    job = make_import_job(admin, people_csv(Path(outage_app.config["VAR_DIR"]) / "p.csv", 3), ["email"])
    run = new_run(job, admin, RunState.PROCESSING, trigger="manual")
    run.control, run.control_at = "stop", utcnow() - timedelta(minutes=5)
    db.session.commit()
    redis_server_tcp.stop()
    with pytest.raises((RunActionError, queueing.QueueUnavailable)):
        kill_run(run, admin)
    db.session.rollback()
    assert fresh(run).state is RunState.PROCESSING


def test_an_outage_record_left_by_exited_processes_is_cleared_by_the_scheduler(outage_app, redis_server_tcp):
    from webapp.engine.scheduler_loop import loop
    from webapp.models.settings import AccountSettings

    AccountSettings.get().queue_down_since = utcnow() - timedelta(days=3)
    db.session.commit()
    loop(once=True)
    assert db.session.get(AccountSettings, 1, populate_existing=True).queue_down_since is None


def test_a_scheduler_that_stopped_passing_is_said_on_every_page_until_it_passes_again(
    app, client, auth, users, monkeypatch
):
    from webapp import metrics

    monkeypatch.setattr(outage, "SCHEDULER_LOOKED_AT", 0.0)  # look at every page
    redis = queueing.redis_connection()
    deployment = app.config["QUEUE_NAME"]
    auth.login(users["user"].email)
    assert "The scheduler has not run since" not in client.get("/").get_data(as_text=True)  # never ran
    metrics.scheduler_passed(redis, deployment)
    assert "The scheduler has not run since" not in client.get("/").get_data(as_text=True)  # passing
    seconds, _ = redis.time()
    redis.hset(metrics.tallies_key(deployment), "scheduler_beat", seconds - 600)  # 10 minutes ago
    page = client.get("/jobs/").get_data(as_text=True)
    assert "The scheduler has not run since" in page and "Scheduled runs wait until it is back" in page
    assert "The scheduler has not run since" not in client.get(
        "/monitor/updates?ids=&after=0", headers={"HX-Request": "true"}
    ).get_data(as_text=True)  # (only full pages)
    metrics.scheduler_passed(redis, deployment)  # back
    assert "The scheduler has not run since" not in client.get("/jobs/").get_data(as_text=True)
