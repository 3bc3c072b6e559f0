"""Personal API tokens: made on the API tokens page (shown once, stored as a hash), used as
`Authorization: Bearer` on /api/v1 with the screens' rules, revoked, expired, audited."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from datetime import date, datetime, timedelta
from types import SimpleNamespace

from tests.conftest import export_job, fresh
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.models import ApiToken, AuditEntry
from webapp.models.base import utcnow


def make_token(client, auth, email: str, name: str = "CRM sync", **fields) -> str:
    auth.login(email)
    page = client.post("/account/api-tokens/", data={"name": name, "access": "read"} | fields)
    assert page.status_code == 201, page.get_data(as_text=True)
    secret = re.search(r'id="new-token"[^>]*value="([^"]+)"', page.get_data(as_text=True)).group(1)
    auth.logout()
    return secret


def api(client, path: str, secret: str | None, method: str = "GET", headers: dict | None = None, **kwargs):
    sent = {**({"Authorization": f"Bearer {secret}"} if secret else {}), **(headers or {})}
    return client.open(path, method=method, headers=sent, **kwargs)


def test_a_new_token_is_shown_once_and_stored_only_as_its_hash(client, auth, users):
    secret = make_token(client, auth, "user@example.org")
    token = ApiToken.query.one()
    assert secret.startswith("cvy_") and len(secret) > 40
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {token.name, token.prefix} and secret.startswith(token.prefix)
    auth.login("user@example.org")
    listed = client.get("/account/api-tokens/").get_data(as_text=True)
    assert "CRM sync" in listed and token.prefix in listed and secret not in listed
    assert "Never" in listed  # not used yet
    entry = AuditEntry.query.filter_by(action="api_token.created").one()
    assert entry.actor_id == users["user"].id and "read-only" in entry.detail


def test_a_token_reads_its_users_runs_and_another_users_run_is_a_404(app, client, auth, users):
    own = start_run(export_job(users["user"]), users["user"])
    theirs = start_run(export_job(users["other"]), users["other"])
    secret = make_token(client, auth, "user@example.org")
    answer = api(client, f"/api/v1/runs/{own.id}", secret)
    assert answer.status_code == 200
    assert answer.json["id"] == own.id and answer.json["state"] == own.state.value
    assert set(answer.json["counts"]) >= {"checked", "created", "rejected"}
    missing = api(client, f"/api/v1/runs/{theirs.id}", secret)
    assert missing.status_code == 404 and missing.json["error"]
    assert api(client, f"/api/v1/runs/{theirs.id + 1000}", secret).status_code == 404


def test_a_super_admins_token_sees_every_users_run(client, auth, users):
    theirs = start_run(export_job(users["other"]), users["other"])
    secret = make_token(client, auth, "super@example.org")
    assert api(client, f"/api/v1/runs/{theirs.id}", secret).status_code == 200


def test_without_a_usable_token_the_api_answers_401_in_json(client, auth, users):
    run = start_run(export_job(users["user"]), users["user"])
    assert api(client, f"/api/v1/runs/{run.id}", None).status_code == 401
    assert (
        api(client, f"/api/v1/runs/{run.id}", "cvy_wrong")
        .json["error"]["message"]
        .startswith("send a usable")
    )
    auth.login("user@example.org")  # a browser session is not a token
    assert client.get(f"/api/v1/runs/{run.id}").status_code == 401


def test_a_token_on_a_page_of_the_screens_signs_nobody_in(client, auth, users):
    secret = make_token(client, auth, "user@example.org")
    page = api(client, "/", secret)
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_a_token_sent_with_a_session_cookie_is_the_tokens(client, auth, users):
    """A script that signed in to make its token and kept its session: the token decides who
    calls (the cookie's user is another here), and the cookie alone still calls nothing."""
    run = start_run(export_job(users["user"]), users["user"])
    secret = make_token(client, auth, "user@example.org")
    auth.login("other@example.org")
    assert api(client, f"/api/v1/runs/{run.id}", secret).status_code == 200  # the user's run
    assert api(client, f"/api/v1/runs/{run.id}", None).status_code == 401  # the cookie alone
    assert client.get("/jobs/").status_code == 200  # the session itself goes on


def test_a_read_only_token_may_not_write(client, auth, users):
    run = start_run(export_job(users["user"]), users["user"])
    secret = make_token(client, auth, "user@example.org")
    refused = api(client, f"/api/v1/runs/{run.id}/stop", secret, method="POST")
    assert refused.status_code == 403 and refused.json["error"] == {
        "code": "forbidden",
        "message": "this API token is read-only",
    }
    assert fresh(run).control is None and not fresh(run).state.is_finished  # nothing happened


def test_a_read_write_token_stops_a_run_as_the_button_does_and_it_is_audited(client, auth, users):
    run = start_run(export_job(users["user"]), users["user"])
    theirs = start_run(export_job(users["other"]), users["other"])
    secret = make_token(client, auth, "user@example.org", access="write")
    assert api(client, f"/api/v1/runs/{theirs.id}/stop", secret, method="POST").status_code == 404
    stopped = api(client, f"/api/v1/runs/{run.id}/stop", secret, method="POST")
    assert stopped.status_code == 200, stopped.json
    assert stopped.json["run"]["state"] == "cancelled" and stopped.json["message"]
    entry = AuditEntry.query.filter_by(action="run.cancelled").one()  # stopped before it ran
    assert entry.actor_id == users["user"].id and "(API)" in entry.detail
    again = api(client, f"/api/v1/runs/{run.id}/stop", secret, method="POST")
    assert again.status_code == 409 and again.json["error"]


def test_a_revoked_token_stops_working_at_once_and_only_its_owner_may_revoke_it(client, auth, users):
    run = start_run(export_job(users["user"]), users["user"])
    secret = make_token(client, auth, "user@example.org")
    token = ApiToken.query.one()
    auth.login("other@example.org")  # another user's token id is a 404
    assert client.post(f"/account/api-tokens/{token.id}/revoke").status_code == 404
    auth.logout()
    assert api(client, f"/api/v1/runs/{run.id}", secret).status_code == 200
    auth.logout()
    auth.login("user@example.org")
    done = client.post(f"/account/api-tokens/{token.id}/revoke", follow_redirects=True)
    assert "was revoked" in done.get_data(as_text=True)
    assert api(client, f"/api/v1/runs/{run.id}", secret).status_code == 401
    assert AuditEntry.query.filter_by(action="api_token.revoked").count() == 1


def test_an_expired_token_stops_working(client, auth, users):
    run = start_run(export_job(users["user"]), users["user"])
    secret = make_token(
        client, auth, "user@example.org", expires_on=(date.today() + timedelta(days=2)).isoformat()
    )
    assert api(client, f"/api/v1/runs/{run.id}", secret).status_code == 200
    token = ApiToken.query.one()
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert api(client, f"/api/v1/runs/{run.id}", secret).status_code == 401


def test_the_form_refuses_a_past_expiry_and_a_second_token_of_the_same_name(client, auth, users):
    auth.login("user@example.org")
    past = client.post(
        "/account/api-tokens/", data={"name": "Sync", "access": "read", "expires_on": "2020-01-01"}
    )
    assert past.status_code == 400 and "Choose a day after today" in past.get_data(as_text=True)
    far = client.post(
        "/account/api-tokens/", data={"name": "Sync", "access": "read", "expires_on": "9999-12-31"}
    )  # (its last second in UTC would be past year 9999: a 500)
    assert far.status_code == 400 and "on or before Dec 31, 2100" in far.get_data(as_text=True)
    assert client.post("/account/api-tokens/", data={"name": "Sync", "access": "write"}).status_code == 201
    again = client.post("/account/api-tokens/", data={"name": "Sync", "access": "write"})  # sent twice
    assert again.status_code == 400 and "already have a token named" in again.get_data(as_text=True)
    assert ApiToken.query.count() == 1


def test_the_expiry_day_is_checked_against_the_account_day_not_the_servers(
    app, client, auth, users, monkeypatch
):
    # 02:00 UTC on Oct 2 is still Oct 1 in New York: Oct 2 is tomorrow there, Oct 1 today
    # (whatever day the machine running the test is on)
    app.config["TIMEZONE"] = "America/New_York"
    monkeypatch.setattr("webapp.formutil.utcnow", lambda: datetime(2026, 10, 2, 2, 0))
    auth.login("user@example.org")
    today = client.post(
        "/account/api-tokens/", data={"name": "A", "access": "read", "expires_on": "2026-10-01"}
    )
    assert today.status_code == 400 and "Choose a day after today" in today.get_data(as_text=True)
    tomorrow = client.post(
        "/account/api-tokens/", data={"name": "B", "access": "read", "expires_on": "2026-10-02"}
    )
    assert tomorrow.status_code == 201
    assert ApiToken.query.one().expires_at == datetime(2026, 10, 3, 3, 59, 59)  # its end, in New York


def test_use_is_noted_and_a_new_address_is_audited_once(client, auth, users):
    run = start_run(export_job(users["user"]), users["user"])
    secret = make_token(client, auth, "user@example.org")
    for _ in range(3):
        api(client, f"/api/v1/runs/{run.id}", secret, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    api(client, f"/api/v1/runs/{run.id}", secret, environ_base={"REMOTE_ADDR": "10.0.0.8"})
    token = ApiToken.query.one()
    assert token.last_used_at is not None and token.last_used_ip == "10.0.0.8"
    used = AuditEntry.query.filter_by(action="api_token.used").all()
    assert [entry.ip for entry in used] == ["10.0.0.7", "10.0.0.8"]


def write_token(client, auth, email: str = "user@example.org") -> str:
    return make_token(client, auth, email, name=f"Writer {email}", access="write")


def test_a_job_is_listed_read_and_run_and_its_result_log_and_actions_work_through_the_api(
    app, client, auth, users
):
    from tests.conftest import work
    from webapp.models import Supporter

    db.session.add(Supporter(email="ann@example.org", first_name="Ann"))
    db.session.commit()
    job = export_job(users["user"], name="Nightly export")
    other = export_job(users["other"], name="Their export")
    secret = write_token(client, auth)
    listed = api(client, "/api/v1/jobs", secret).json["jobs"]
    assert [entry["name"] for entry in listed] == ["Nightly export"]
    assert api(client, f"/api/v1/jobs/{job.id}", secret).json["type"] == "user_data_export"
    assert api(client, f"/api/v1/jobs/{other.id}", secret).status_code == 404
    assert api(client, f"/api/v1/jobs/{other.id}/runs", secret, method="POST").status_code == 404

    started = api(client, f"/api/v1/jobs/{job.id}/runs", secret, method="POST")
    assert started.status_code == 201 and started.json["state"] in ("queued", "initializing", "processing")
    run_id = started.json["id"]
    work(app)
    assert api(client, f"/api/v1/runs/{run_id}", secret).json["state"] == "completed"
    result = api(client, f"/api/v1/runs/{run_id}/result", secret)
    assert result.status_code == 200 and "ann@example.org" in result.get_data(as_text=True)
    lines = api(client, f"/api/v1/runs/{run_id}/log", secret).json["lines"]
    assert lines and all(line["at"].endswith("+00:00") for line in lines)
    refused = api(client, f"/api/v1/runs/{run_id}/pause", secret, method="POST")
    assert refused.status_code == 409 and "paused" in refused.json["error"]["message"]
    assert api(client, f"/api/v1/runs/{run_id}/kill", secret, method="POST").status_code == 403
    assert api(client, f"/api/v1/runs/{run_id}/explode", secret, method="POST").status_code == 404


def test_a_result_deleted_after_its_retention_is_a_410(app, client, auth, users):
    run = start_run(export_job(users["user"]), users["user"])
    run.result_path, run.result_deleted_at = f"results/run-{run.id}-export.csv", utcnow()
    db.session.commit()
    secret = make_token(client, auth, "user@example.org")
    gone = api(client, f"/api/v1/runs/{run.id}/result", secret)
    assert gone.status_code == 410 and "retention" in gone.json["error"]["message"]


def test_history_pages_by_cursor_with_its_filters_and_shows_only_the_users_runs(app, client, auth, users):
    app.config["PAGE_SIZE"] = 2
    job = export_job(users["user"])
    own = [start_run(job, users["user"]) for _ in range(3)]
    start_run(export_job(users["other"]), users["other"])
    secret = make_token(client, auth, "user@example.org")
    first = api(client, "/api/v1/history?type=user_data_export", secret).json
    assert [run["id"] for run in first["runs"]] == [own[2].id, own[1].id] and first["previous"] is None
    assert "type=user_data_export" in first["next"] and f"before={own[1].id}" in first["next"]
    second = api(client, first["next"], secret).json
    assert [run["id"] for run in second["runs"]] == [own[0].id] and second["next"] is None
    assert api(client, "/api/v1/history?state=nonsense", secret).status_code == 400
    assert api(client, f"/api/v1/history?user={users['other'].id}", secret).status_code == 404
    monitor = api(client, "/api/v1/monitor", secret).json
    assert monitor["total"] == 3 and len(monitor["runs"]) == 2 and "cursor=" in monitor["next"]
    start_run(job, users["user"])  # a new run arrives while the client pages: the cursor holds
    rest = api(client, monitor["next"], secret).json
    assert [run["id"] for run in rest["runs"]] == [own[0].id] and rest["next"] is None
    assert rest["total"] == 4
    garbled = api(client, "/api/v1/monitor?cursor=!!!", secret)
    assert garbled.status_code == 400 and garbled.json["error"]["code"] == "bad_request"
    for forged in (
        "2026-01-01T00:00:00|9223372036854775808",
        "2026-01-01T00:00:00|-5",
        "2026-01-01T00:00:00+05:00|5",
    ):
        cursor = base64.urlsafe_b64encode(forged.encode()).decode()
        assert api(client, f"/api/v1/monitor?cursor={cursor}", secret).status_code == 400, forged


def test_rejected_lines_and_dismiss_through_the_api(app, client, auth, users, tmp_path):
    from tests.conftest import import_job, work

    path = tmp_path / "people.csv"
    path.write_text("email\nann@example.org\nnot-an-address\n")
    run = start_run(import_job(users["user"], path, ["email"]), users["user"])
    work(app)
    secret = write_token(client, auth)
    rejected = api(client, f"/api/v1/runs/{run.id}/rejections", secret).json["rejected"]
    assert [entry["line"] for entry in rejected] == [3] and rejected[0]["reason"]
    dismissed = api(client, f"/api/v1/runs/{run.id}/dismiss", secret, method="POST")
    assert dismissed.status_code == 200 and dismissed.json["dismissed"] == [run.id]
    assert fresh(run).in_monitor is False
    waiting = start_run(export_job(users["user"]), users["user"])
    refused = api(client, f"/api/v1/runs/{waiting.id}/dismiss", secret, method="POST")
    assert refused.status_code == 409 and "finished" in refused.json["error"]["message"]


def test_groups_are_listed_read_and_run_through_the_api(app, client, auth, users):
    from tests.conftest import work
    from tests.test_chains import group_of

    first, second = export_job(users["user"], name="First"), export_job(users["user"], name="Second")
    group = group_of(users["user"], [first, second])
    theirs = group_of(users["other"], [export_job(users["other"]), export_job(users["other"])])
    secret = write_token(client, auth)
    listed = api(client, "/api/v1/groups", secret).json["groups"]
    assert [(entry["id"], entry["steps"]) for entry in listed] == [(group.id, [first.id, second.id])]
    assert api(client, f"/api/v1/groups/{theirs.id}", secret).status_code == 404
    assert api(client, f"/api/v1/groups/{first.id}", secret).status_code == 404  # a job, not a group
    started = api(client, f"/api/v1/groups/{group.id}/runs", secret, method="POST")
    assert started.status_code == 201 and started.json["type"] == "job_group"
    work(app)
    assert api(client, f"/api/v1/runs/{started.json['id']}", secret).json["state"] == "completed"


def test_an_export_job_is_made_and_deleted_through_the_api_with_each_problem_named(app, client, auth, users):
    from tests.test_chains import group_of
    from webapp.models import Job

    secret = write_token(client, auth)
    made = api(
        client,
        "/api/v1/jobs",
        secret,
        method="POST",
        json={
            "type": "user_data_export",
            "name": "Donors",
            "fields": ["email", "city"],
            "filter": "opted_in",
        },
    )
    assert made.status_code == 201, made.json
    job = db.session.get(Job, made.json["id"])
    assert job.owner_id == users["user"].id and job.params["fields"] == ["email", "city"]
    assert AuditEntry.query.filter_by(action="job.created").count() == 1

    nameless = api(client, "/api/v1/jobs", secret, method="POST", json={"type": "user_data_export"})
    assert nameless.status_code == 422 and nameless.json["error"]["code"] == "invalid"
    assert set(nameless.json["error"]["problems"]) == {"name"}
    bad = api(
        client,
        "/api/v1/jobs",
        secret,
        method="POST",
        json={"type": "user_data_export", "name": "X", "fields": []},
    )
    assert bad.status_code == 422 and set(bad.json["error"]["problems"]) == {"fields"}
    since = {"type": "user_data_export", "name": "New ones", "filter": "created_since"}
    assert "since" in api(client, "/api/v1/jobs", secret, method="POST", json=since).json["error"]["problems"]
    assert api(client, "/api/v1/jobs", secret, method="POST", data="not json").status_code == 415
    broken = api(client, "/api/v1/jobs", secret, method="POST", data="{nope", content_type="application/json")
    assert broken.status_code == 400 and broken.json["error"]["code"] == "malformed_json"
    other_type = api(client, "/api/v1/jobs", secret, method="POST", json={"type": "job_group", "name": "G"})
    assert other_type.status_code == 422 and "type" in other_type.json["error"]["problems"]
    unknown = api(
        client,
        "/api/v1/jobs",
        secret,
        method="POST",
        json={"type": "user_data_export", "name": "Y", "colour": 1},
    )
    assert unknown.status_code == 422 and "colour" in unknown.json["error"]["problems"]

    second = export_job(users["user"], name="Second")
    group_of(users["user"], [job, second])
    held = api(client, f"/api/v1/jobs/{job.id}", secret, method="DELETE")
    assert held.status_code == 409 and "is a step of the group" in held.json["error"]["message"]
    alone = export_job(users["user"], name="Alone")
    assert api(client, f"/api/v1/jobs/{alone.id}", secret, method="DELETE").json == {"deleted": alone.id}
    assert db.session.get(Job, alone.id).active is False
    shown = api(client, f"/api/v1/jobs/{alone.id}", secret)  # as its page still shows it
    assert shown.status_code == 200 and shown.json["deleted"] is True
    assert api(client, f"/api/v1/jobs/{second.id}", secret).json["deleted"] is False
    theirs = export_job(users["other"], name="Theirs")
    assert api(client, f"/api/v1/jobs/{theirs.id}", secret, method="DELETE").status_code == 404


def test_a_token_over_its_rate_limit_waits_and_a_huge_json_body_is_refused(
    app, client, auth, users, monkeypatch
):
    app.config["API_RATE_LIMIT"] = 3
    # the limit counts in one-minute windows: hold the clock half way through one, so that
    # the four requests cannot straddle two windows however slow the machine is
    half_way = (time.time() // 60) * 60 + 30
    monkeypatch.setattr("webapp.api.v1.core.time", SimpleNamespace(time=lambda: half_way))
    secret = make_token(client, auth, "user@example.org")
    answers = [api(client, "/api/v1/jobs", secret) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.json["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "31"  # the window's 30 s left, rounded up
    other = make_token(client, auth, "other@example.org", access="write")  # the limit is per token
    assert api(client, "/api/v1/jobs", other).status_code == 200

    app.config["API_RATE_LIMIT"] = 100
    huge = '{"type": "user_data_export", "name": "' + "x" * (2 * 1024 * 1024) + '"}'
    too_big = api(client, "/api/v1/jobs", other, method="POST", data=huge, content_type="application/json")
    assert too_big.status_code == 413 and too_big.json["error"]["code"] == "too_large"
    assert too_big.json["error"]["message"] == "a JSON body may be up to 1024 KB; send less at a time"
