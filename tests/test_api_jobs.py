"""Jobs and groups by the API beyond reading them: change a job (PATCH), activate and deactivate
a group, and pause, resume or retry a group's run — each with the screens' checks."""

from __future__ import annotations

from tests.conftest import export_job, fresh, work
from tests.test_api_tokens import api, make_token, write_token
from tests.test_chains import broken_import, group_of
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.jobtypes.job_group import GroupDefinition
from webapp.models import AuditEntry
from webapp.models.jobs import Job
from webapp.rules.states import RunState


def test_a_job_is_changed_by_patch_with_the_pages_checks(app, client, auth, users):
    job = export_job(users["user"], name="Donors")
    secret = write_token(client, auth)
    changed = api(
        client,
        f"/api/v1/jobs/{job.id}",
        secret,
        method="PATCH",
        json={
            "name": "Donors (city)",
            "fields": ["email", "city"],
            "notify_on": "failure",
            "notify_emails": "a@example.org",
        },
    )
    assert changed.status_code == 200, changed.json
    db.session.refresh(job)
    assert job.name == "Donors (city)" and job.params["fields"] == ["email", "city"]
    assert job.params["filter"] == "all"  # what was not sent is kept
    assert (job.notify_on, job.notify_emails) == ("failure", "a@example.org")
    assert changed.json["name"] == "Donors (city)"
    assert AuditEntry.query.filter_by(action="job.edited").count() == 1

    nobody = api(client, f"/api/v1/jobs/{job.id}", secret, method="PATCH", json={"notify_emails": ""})
    assert nobody.status_code == 422 and "notify_emails" in nobody.json["error"]["problems"]
    no_fields = api(client, f"/api/v1/jobs/{job.id}", secret, method="PATCH", json={"fields": []})
    assert no_fields.status_code == 422 and "fields" in no_fields.json["error"]["problems"]
    wrong_kind = api(client, f"/api/v1/jobs/{job.id}", secret, method="PATCH", json={"notify_on": "hourly"})
    assert wrong_kind.status_code == 422
    # a script that sends every field, null for "as it is", widens nothing
    nulls = {"name": None, "filter": None, "fields": None, "bom": None, "notify_on": None}
    kept = api(client, f"/api/v1/jobs/{job.id}", secret, method="PATCH", json=nulls)
    assert kept.status_code == 422 and set(kept.json["error"]["problems"]) == set(nulls)
    db.session.refresh(job)
    assert job.name == "Donors (city)" and job.notify_emails == "a@example.org"  # nothing half-saved
    assert job.params["fields"] == ["email", "city"] and job.params["filter"] == "all"

    theirs = export_job(users["other"], name="Theirs")
    assert (
        api(client, f"/api/v1/jobs/{theirs.id}", secret, method="PATCH", json={"name": "Mine"}).status_code
        == 404
    )
    reader = make_token(client, auth, "user@example.org", name="Reader")
    assert (
        api(client, f"/api/v1/jobs/{job.id}", reader, method="PATCH", json={"name": "X"}).status_code == 403
    )


def test_export_settings_belong_to_exports_only(app, client, auth, users, tmp_path):
    importing = broken_import(users["user"], tmp_path)
    secret = write_token(client, auth)
    refused = api(client, f"/api/v1/jobs/{importing.id}", secret, method="PATCH", json={"fields": ["email"]})
    assert refused.status_code == 409 and "only an export" in refused.json["error"]["message"]
    renamed = api(client, f"/api/v1/jobs/{importing.id}", secret, method="PATCH", json={"name": "Renamed"})
    assert renamed.status_code == 200 and fresh_job(importing).name == "Renamed"


def fresh_job(job: Job) -> Job:
    db.session.expire_all()
    return db.session.get(Job, job.id)


def test_a_group_is_activated_and_deactivated_and_a_job_is_not(app, client, auth, users):
    first, second = export_job(users["user"], name="First"), export_job(users["user"], name="Second")
    group = group_of(users["user"], [first, second])
    secret = write_token(client, auth)
    on = api(client, f"/api/v1/jobs/{group.id}/activate", secret, method="POST")
    assert on.status_code == 200 and GroupDefinition.of(fresh_job(group)).activated is True
    off = api(client, f"/api/v1/jobs/{group.id}/deactivate", secret, method="POST")
    assert off.status_code == 200 and GroupDefinition.of(fresh_job(group)).activated is False
    assert {"group.activated", "group.deactivated"} <= {entry.action for entry in AuditEntry.query}

    lonely = group_of(users["user"], [first], name="Too short")
    short = api(client, f"/api/v1/jobs/{lonely.id}/activate", secret, method="POST")
    assert short.status_code == 409 and "at least 2" in short.json["error"]["message"]
    not_a_group = api(client, f"/api/v1/jobs/{first.id}/activate", secret, method="POST")
    assert not_a_group.status_code == 409
    theirs = group_of(users["other"], [export_job(users["other"]), export_job(users["other"])])
    assert api(client, f"/api/v1/jobs/{theirs.id}/activate", secret, method="POST").status_code == 404


def test_a_groups_failed_run_is_retried_and_actions_without_such_a_run_are_409(
    app, client, auth, users, tmp_path
):
    broken = broken_import(users["user"], tmp_path)
    group = group_of(users["user"], [broken, export_job(users["user"], name="After")])
    secret = write_token(client, auth)
    nothing = api(client, f"/api/v1/groups/{group.id}/retry", secret, method="POST")
    assert nothing.status_code == 409 and "no failed run" in nothing.json["error"]["message"]
    assert api(client, f"/api/v1/groups/{group.id}/resume", secret, method="POST").status_code == 409

    run = start_run(group, users["user"])
    work(app)
    assert fresh(run).state is RunState.FAILED
    retried = api(client, f"/api/v1/groups/{group.id}/retry", secret, method="POST")
    assert retried.status_code == 200, retried.json
    assert retried.json["run"]["id"] == run.id and retried.json["run"]["state"] != "failed"
    theirs = group_of(users["other"], [export_job(users["other"]), export_job(users["other"])])
    assert api(client, f"/api/v1/groups/{theirs.id}/retry", secret, method="POST").status_code == 404


def test_a_run_started_through_the_api_says_so_on_its_page(app, client, auth, users):
    job = export_job(users["user"])
    secret = write_token(client, auth)
    started = api(client, f"/api/v1/jobs/{job.id}/runs", secret, method="POST")
    assert started.status_code == 201
    auth.login("user@example.org")
    assert "through the API" in client.get(f"/runs/{started.json['id']}").get_data(as_text=True)


def test_run_now_through_the_api_sent_again_with_its_idempotency_key_starts_one_run(app, client, auth, users):
    from webapp.models.runs import Run

    job = export_job(users["user"])
    group = group_of(users["user"], [export_job(users["user"]), export_job(users["user"])])
    secret = write_token(client, auth)
    for target, path in ((job, f"/api/v1/jobs/{job.id}/runs"), (group, f"/api/v1/groups/{group.id}/runs")):
        key = {"Idempotency-Key": f"retry-{target.id}"}
        first = api(client, path, secret, method="POST", headers=key)
        again = api(client, path, secret, method="POST", headers=key)
        assert first.status_code == again.status_code == 201, again.json
        assert again.json["id"] == first.json["id"] and again.headers["Idempotent-Replayed"] == "true"
        assert Run.query.filter_by(job_id=target.id).count() == 1
        other = api(client, path, secret, method="POST", headers={"Idempotency-Key": "a new one"})
        assert other.status_code == 201 and other.json["id"] != first.json["id"]
        assert Run.query.filter_by(job_id=target.id).count() == 2
    # the same key for another job is that job's own (a key names a request to one address)
    elsewhere = export_job(users["user"], name="Elsewhere")
    path = f"/api/v1/jobs/{elsewhere.id}/runs"
    fresh_start = api(client, path, secret, method="POST", headers={"Idempotency-Key": f"retry-{job.id}"})
    assert fresh_start.status_code == 201 and fresh_start.json["job_id"] == elsewhere.id


def test_an_email_bounces_job_is_made_through_the_api_with_its_forms_checks(app, client, auth, users):
    from tests.test_email_bounces import a_send

    own, theirs = a_send(users["user"]), a_send(users["other"])
    secret = write_token(client, auth)

    def make(**fields):
        return api(client, "/api/v1/jobs", secret, method="POST", json={"type": "email_bounces", **fields})

    made = make(name="Spring bounces", source="send", send=own.id)
    assert made.status_code == 201, made.json
    job = db.session.get(Job, made.json["id"])
    assert (job.job_type, job.owner_id) == ("email_bounces", users["user"].id)
    assert job.params == {"source": "send", "run_id": own.id, "bom": True}
    assert made.json["type_label"] == "Email Bounces"

    assert make(name="Not mine", source="send", send=theirs.id).status_code == 404
    backwards = make(name="March", source="range", start="2026-03-31", end="2026-03-01")
    assert backwards.status_code == 422 and "end" in backwards.json["error"]["problems"]
    no_send = make(name="Which?", source="send")
    assert no_send.status_code == 422 and "send" in no_send.json["error"]["problems"]
    weekly = make(name="Last week", source="recent", period="7", bom=False)
    assert weekly.status_code == 201
    assert db.session.get(Job, weekly.json["id"]).params == {"source": "recent", "period": "7", "bom": False}
    unknown = api(client, "/api/v1/jobs", secret, method="POST", json={"type": "nightly", "name": "X"})
    assert unknown.status_code == 422 and "type" in unknown.json["error"]["problems"]
    assert Job.query.filter_by(job_type="email_bounces").count() == 2
