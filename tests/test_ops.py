"""Operators can watch the deployment: /healthz and /metrics (deployment-wide numbers kept in
Redis and read from the database at scrape time), only for allowed addresses or an admin."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PASSWORD, _settings, export_job, free_port, fresh, import_job, work
from webapp import create_app, metrics
from webapp.engine import queueing, scheduler_loop
from webapp.engine.reconciler import reconcile
from webapp.engine.runner import _rehearse_a_hand_over
from webapp.engine.runs import new_run, retry_run, start_run
from webapp.engine.transitions import db_now
from webapp.extensions import db
from webapp.models import Supporter
from webapp.rules.states import RunState

ELSEWHERE = {"REMOTE_ADDR": "10.1.2.3"}


def scrape(client, **kwargs) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_healthz_is_ok_once_the_scheduler_has_passed(app, client):
    before = client.get("/healthz")
    assert before.status_code == 503  # no scheduler has ever passed
    assert before.json["scheduler_heartbeat_age_seconds"] is None
    assert before.json["database"] is True and before.json["redis"] is True

    scheduler_loop.loop(once=True)
    response = client.get("/healthz")
    assert response.status_code == 200, response.json
    report = response.json
    assert report["ok"] is True and report["database"] is True and report["redis"] is True
    assert report["workers"] == {"data": 0, "email": 0}
    assert 0 <= report["scheduler_heartbeat_age_seconds"] < 5


def test_healthz_fails_when_the_scheduler_stopped_passing(app, client):
    scheduler_loop.loop(once=True)
    app.config["SCHEDULER_STALE_SECONDS"] = 0.2
    time.sleep(0.3)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["ok"] is False and response.json["scheduler_heartbeat_age_seconds"] >= 0.2


def test_healthz_fails_and_metrics_say_so_when_redis_does_not_answer(app, tmp_path, monkeypatch):
    scheduler_loop.loop(once=True)  # (on the working Redis)
    monkeypatch.setitem(queueing._health, "at", 0.0)  # restored for the tests after this one
    monkeypatch.setitem(queueing._health, "ok", True)
    settings = _settings(tmp_path / "closed", f"sqlite:///{tmp_path / 'closed.db'}", "")
    settings["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings["BOUNCE_TOKEN"] = "t"
    down = create_app(settings)
    with down.app_context():
        db.create_all()
        response = down.test_client().get("/healthz")
        assert response.status_code == 503
        assert response.json == {
            "database": True,
            "redis": False,
            "workers": None,
            "scheduler_heartbeat_age_seconds": None,
            "ok": False,
        }
        samples = scrape(down.test_client())
        assert value(samples, "conveyor_up", component="redis") == 0
        assert value(samples, "conveyor_up", component="database") == 1
        db.session.remove()
        db.engine.dispose()


def test_metrics_count_a_finished_run_its_rows_and_its_duration(app, client, users):
    db.session.add_all(Supporter(email=f"p{i}@example.org", first_name="P") for i in range(7))
    db.session.commit()
    run = start_run(export_job(users["user"]), users["user"])
    waiting = start_run(export_job(users["user"], name="Second"), users["user"])
    samples = scrape(client)
    assert value(samples, "conveyor_runs", type="user_data_export", state="queued") == 2
    assert value(samples, "conveyor_queue_depth", lane="data") == 1  # one at a time on the lane
    assert value(samples, "conveyor_queue_depth", lane="email") == 0

    work(app)
    assert fresh(run).state is RunState.COMPLETED and fresh(waiting).state is RunState.COMPLETED
    samples = scrape(client)
    assert value(samples, "conveyor_runs", type="user_data_export", state="completed") == 2
    assert value(samples, "conveyor_runs_ended_total", type="user_data_export", state="completed") == 2
    assert value(samples, "conveyor_rows_processed_total", type="user_data_export") == 14
    assert value(samples, "conveyor_run_duration_seconds_count", type="user_data_export") == 2
    assert value(samples, "conveyor_run_duration_seconds_bucket", type="user_data_export", le="+Inf") == 2
    assert value(samples, "conveyor_run_duration_seconds_bucket", type="user_data_export", le="86400.0") == 2
    assert 0 <= value(samples, "conveyor_run_duration_seconds_sum", type="user_data_export") < 60
    assert value(samples, "conveyor_queue_depth", lane="data") == 0
    assert value(samples, "conveyor_up", component="database") == 1
    assert value(samples, "conveyor_up", component="redis") == 1


def test_a_retried_run_counts_its_rows_once(app, users, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("email\n" + "".join(f"r{i}@example.org\n" for i in range(9)))
    run = start_run(import_job(users["user"], path, ["email"]), users["user"])
    # a first attempt that died after 4 rows: the reconciler fails it
    run.state, run.started_at, run.progress_done = RunState.PROCESSING, db_now(), 4
    run.heartbeat_at = db_now() - timedelta(minutes=5)
    db.session.commit()
    assert reconcile()["failed"] == 1
    tallies = metrics.read(queueing.redis_connection(), app.config["QUEUE_NAME"])
    assert tallies.rows == {"user_data_import": 4}
    assert tallies.reconciler["failed"] == 1
    retry_run(fresh(run), users["user"])
    work(app)
    assert fresh(run).state is RunState.COMPLETED and fresh(run).progress_done == 9
    tallies = metrics.read(queueing.redis_connection(), app.config["QUEUE_NAME"])
    assert tallies.rows == {"user_data_import": 9}  # not 4 + 9
    assert tallies.runs_ended == {("user_data_import", "failed"): 1, ("user_data_import", "completed"): 1}


def test_metrics_count_messages_sent(app, client, users, smtp_sink):
    from tests.test_email_campaign import campaign_for, launch, supporters

    supporters(5)
    run = launch(campaign_for(users["user"]), users["user"])
    work(app)
    assert fresh(run).state is RunState.COLLECTING, fresh(run).error
    samples = scrape(client)
    assert value(samples, "conveyor_messages_sent_total", type="email_campaign") == 5
    assert value(samples, "conveyor_runs_ended_total", type="email_campaign", state="collecting") == 1
    assert value(samples, "conveyor_rows_processed_total", type="email_campaign") is None


def test_a_rolled_back_end_is_not_counted(app, users):
    """The worker rehearses a group step's end before it forks, in a transaction it rolls back."""
    _rehearse_a_hand_over()
    tallies = metrics.read(queueing.redis_connection(), app.config["QUEUE_NAME"])
    assert tallies.runs_ended == {} and tallies.durations == {}


def test_metrics_show_the_reconciler_and_the_scheduler(app, client, users):
    dead = new_run(export_job(users["user"]), users["user"], RunState.PROCESSING, trigger="manual")
    dead.started_at = dead.heartbeat_at = db_now() - timedelta(minutes=5)
    db.session.commit()
    scheduler_loop.loop(once=True)
    samples = scrape(client)
    assert value(samples, "conveyor_reconciler_actions_total", action="failed") == 1
    assert value(samples, "conveyor_reconciler_actions_total", action="redispatched") == 0
    assert value(samples, "conveyor_scheduler_lag_seconds") == 0  # nothing was due
    assert 0 <= value(samples, "conveyor_scheduler_heartbeat_age_seconds") < 5
    assert value(samples, "conveyor_runs_ended_total", type="user_data_export", state="failed") == 1


def test_the_scheduler_lag_is_how_late_the_oldest_due_run_was(app):
    scheduler = queueing.scheduler()
    key, redis = scheduler.scheduled_jobs_key, scheduler.connection
    # rq-scheduler's sorted set is one per Redis: set aside what earlier tests left in it
    left = dict(redis.zrange(key, 0, -1, withscores=True))
    if left:
        redis.zrem(key, *left)
    redis.zadd(key, {"late-job": time.time() - 7})
    try:
        assert 6.5 < scheduler.lateness() < 30
        redis.zrem(key, "late-job")
        assert scheduler.lateness() == 0
    finally:
        redis.zrem(key, "late-job")
        if left:
            redis.zadd(key, left)


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_from_an_address_not_allowed_they_do_not_exist_without_a_session(app, client, path):
    assert client.get(path, environ_base=ELSEWHERE).status_code == 404
    assert client.get(path, environ_base={"REMOTE_ADDR": "::1"}).status_code != 404
    assert client.get(path, environ_base={"REMOTE_ADDR": "::ffff:127.0.0.1"}).status_code != 404
    app.config["METRICS_ALLOW"] = "127.0.0.1, 10.0.0.0/8"
    assert client.get(path, environ_base=ELSEWHERE).status_code != 404
    assert client.get(path, environ_base={"REMOTE_ADDR": "11.1.2.3"}).status_code == 404


@pytest.mark.parametrize(
    ("who", "sees"), [("user@example.org", False), ("admin@example.org", True), ("super@example.org", True)]
)
def test_from_elsewhere_only_a_signed_in_admin_sees_them(app, client, users, who, sees):
    client.post("/login", data={"email": who, "password": PASSWORD}, environ_base=ELSEWHERE)
    for path in ("/healthz", "/metrics"):
        status = client.get(path, environ_base=ELSEWHERE).status_code
        assert (status != 404) is sees, (who, path, status)


def test_a_forwarded_address_counts_only_behind_a_trusted_proxy(app, tmp_path, redis_url):
    forged = {"environ_base": ELSEWHERE, "headers": {"X-Forwarded-For": "127.0.0.1"}}
    assert app.test_client().get("/metrics", **forged).status_code == 404  # nobody to believe
    settings = _settings(tmp_path / "proxied", app.config["SQLALCHEMY_DATABASE_URI"], redis_url)
    proxied = create_app({**settings, "TRUST_PROXY": 1, "BOUNCE_TOKEN": "t"})
    with proxied.app_context():
        assert proxied.test_client().get("/metrics", **forged).status_code == 200
        passed_on = {"environ_base": {"REMOTE_ADDR": "127.0.0.1"}, "headers": {"X-Forwarded-For": "10.1.2.3"}}
        assert proxied.test_client().get("/metrics", **passed_on).status_code == 404
        db.session.remove()


@pytest.mark.parametrize("header", ["X-Forwarded-For", "X-Real-IP", "Forwarded"])
def test_through_a_proxy_not_believed_the_proxys_own_address_lets_nobody_in(app, client, users, header):
    # nginx on the same machine with TRUST_PROXY=0: every request comes from 127.0.0.1, whoever
    # sent it. The address then proves nothing; a signed-in admin still sees them
    through_nginx = {"environ_base": {"REMOTE_ADDR": "127.0.0.1"}, "headers": {header: "203.0.113.9"}}
    assert client.get("/metrics", **through_nginx).status_code == 404
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    client.post("/login", data={"email": "admin@example.org", "password": PASSWORD}, **through_nginx)
    assert client.get("/metrics", **through_nginx).status_code == 200


def test_a_mistyped_allowed_address_stops_the_start(tmp_path):
    with pytest.raises(ValueError, match=re.escape("not an address or network: 'localhost'")):
        create_app(
            {
                "VAR_DIR": str(tmp_path),
                "SECRET_KEY": "k",
                "BOUNCE_TOKEN": "t",
                "METRICS_ALLOW": "127.0.0.1,localhost",
            }
        )
