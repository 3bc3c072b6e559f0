"""The audit log: the actions of every family are written with who, what, object and IP; the
Audit page shows, links, filters, pages and exports them (super admins only, never editable);
the retention sweep removes entries past the account's setting."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy.orm.attributes import set_committed_value

from tests.conftest import export_job
from webapp import audit
from webapp.engine import scheduler_loop
from webapp.engine.runs import new_run, start_run
from webapp.extensions import db
from webapp.jobs.deletion import delete_job
from webapp.models import Job, Run
from webapp.models.audit import AuditEntry
from webapp.models.base import utcnow
from webapp.models.campaigns import Campaign
from webapp.models.schedules import JobSchedule
from webapp.models.settings import AccountSettings
from webapp.rules.clock import local_to_utc, to_local
from webapp.rules.states import RunState

CAMPAIGN = {
    "name": "Spring appeal",
    "from_address": "a@example.org",
    "subject": "Spring",
    "text_body": "Hello",
    "audience": "opted_in",
}


def entries(action: str | None = None) -> list[AuditEntry]:
    """The audit entries (of one action), oldest first."""
    query = AuditEntry.query.order_by(AuditEntry.id)
    return query.filter_by(action=action).all() if action else query.all()


def only(action: str) -> AuditEntry:
    """The one entry of `action`."""
    found = entries(action)
    assert len(found) == 1, [e.action for e in entries()]
    return found[0]


def page(client, **args) -> str:
    response = client.get("/admin/audit", query_string=args)
    assert response.status_code == 200
    return response.get_data(as_text=True)


# ------------------------------------------------------------------- what each family writes


def test_creating_running_and_deleting_a_job_is_audited_with_who_what_object_and_ip(client, auth, users):
    auth.login(users["user"].email)
    client.post("/jobs/new/export", data={"name": "Everyone", "fields": ["email"], "filter": "all"})
    job = Job.query.filter_by(name="Everyone").one()
    created = only("job.created")
    assert (created.actor_id, created.owner_id) == (users["user"].id, users["user"].id)
    assert (created.object_type, created.object_id, created.object_label) == ("job", job.id, "Everyone")
    assert created.ip == "127.0.0.1"
    client.post(f"/jobs/{job.id}/run")
    run = Run.query.filter_by(job_id=job.id).one()
    started = only("run.started")
    assert (started.object_type, started.object_id, started.run_id) == ("run", run.id, run.id)
    client.post(f"/jobs/{job.id}/delete")
    assert only("job.deleted").object_id == job.id
    # a second Delete that read the job before the first one wrote deletes nothing more
    set_committed_value(job, "active", True)
    assert delete_job(job) is False
    assert only("job.deleted").object_id == job.id


def test_a_job_scheduled_paused_and_blacked_out_is_audited(client, auth, users):
    job = export_job(users["user"], name="Nightly")
    auth.login(users["user"].email)
    client.post(
        f"/jobs/{job.id}/schedule",
        data={
            "kind": "days_of_week",
            "start_date": "2030-01-01",
            "time": "03:00",
            "weekdays": ["0", "2"],
            "enabled": "y",
        },
    )
    assert db.session.execute(db.select(JobSchedule)).scalar_one().job_id == job.id
    set_ = only("schedule.set")
    assert (set_.object_type, set_.object_id, set_.actor_id) == ("job", job.id, users["user"].id)
    assert "at 3:00 AM" in set_.detail
    client.post(f"/jobs/{job.id}/schedule/pause", data={"reason": "Data cleanup"})
    assert "Data cleanup" in only("schedule.paused").detail
    client.post(
        f"/jobs/{job.id}/blackouts",
        data={"start_date": "2030-05-01", "end_date": "2030-05-02", "reason": "Closed"},
    )
    assert only("blackout.added").detail == "May 1, 2030 to May 2, 2030: Closed"


def test_a_group_created_edited_and_activated_is_audited(client, auth, users):
    steps = [export_job(users["user"], name=f"Step {i}").id for i in range(2)]
    auth.login(users["user"].email)
    client.post("/groups/new", data={"name": "Nightly chain", "description": ""})
    group = Job.query.filter_by(name="Nightly chain").one()
    created = only("group.created")
    assert (created.object_type, created.object_id, created.object_label) == (
        "group",
        group.id,
        "Nightly chain",
    )
    client.post(f"/groups/{group.id}/edit/1", data={"steps": [str(s) for s in steps]})
    assert only("group.edited").detail == "Jobs: 2 steps"
    client.post(f"/groups/{group.id}/edit/4", data={"never_expires": "y", "nav": "activate"})
    assert only("group.activated").object_id == group.id


def test_a_campaign_created_and_copied_is_audited(client, auth, users):
    auth.login(users["user"].email)
    client.post("/campaigns/new", data=CAMPAIGN)
    campaign = Campaign.query.one()
    created = only("campaign.created")
    assert (created.object_type, created.object_id, created.object_label, created.ip) == (
        "campaign",
        campaign.id,
        "Spring appeal",
        "127.0.0.1",
    )
    client.post(f"/campaigns/{campaign.id}/copy")
    copied = only("campaign.copied")
    assert copied.object_label == "Copy of Spring appeal" and f"campaign {campaign.id}" in copied.detail


def test_stopping_a_running_run_and_cancelling_a_queued_one_are_audited(client, auth, users):
    job = export_job(users["user"], name="Big export")
    running = new_run(job, users["user"], RunState.PROCESSING, trigger="manual")
    db.session.commit()
    auth.login(users["user"].email)
    client.post(f"/runs/{running.id}/stop")
    stopped = only("run.stopped")
    assert (stopped.object_type, stopped.object_id, stopped.actor_id, stopped.owner_id) == (
        "run",
        running.id,
        users["user"].id,
        users["user"].id,
    )
    assert stopped.object_label == "Big export" and stopped.ip == "127.0.0.1"
    queued = start_run(export_job(users["user"], name="Waiting"), users["user"])
    client.post(f"/runs/{queued.id}/stop")
    assert only("run.cancelled").object_id == queued.id
    client.post(f"/runs/{queued.id}/pause")  # refused (not processing): nothing written
    assert entries("run.paused") == []


def test_changing_settings_is_audited_with_old_and_new_values(client, auth, users):
    auth.login(users["admin"].email)
    response = client.post("/admin/settings", data={"retention_days": "30", "audit_retention_days": "400"})
    assert response.status_code == 302
    assert AccountSettings.get().audit_retention_days == 400
    changed = only("settings.changed")
    assert changed.detail == "Keep audit entries for (days): 365 → 400"
    assert (changed.actor_id, changed.object_type) == (users["admin"].id, "settings")
    client.post("/admin/settings", data={"retention_days": "30", "audit_retention_days": "10"})
    assert AccountSettings.get().audit_retention_days == 400  # under 30 days is refused
    assert len(entries("settings.changed")) == 1


# ---------------------------------------------------------------------------- the Audit page


@pytest.fixture
def logged(app, users):
    """Entries by two users on a run, a deleted job and a campaign, a day apart."""
    job = export_job(users["user"], name="Gone job")
    run = new_run(
        export_job(users["other"], name="Other export"), users["other"], RunState.QUEUED, trigger="manual"
    )
    db.session.commit()
    made = [
        audit.record("job.deleted", job, actor=users["user"]),
        audit.record("run.stopped", run, actor=users["other"], detail="Run #1: stopping"),
        audit.record("run.started", run, actor=users["user"]),
    ]
    job.active = False
    zone = app.config["TIMEZONE"]
    today = to_local(utcnow(), zone).date()
    for days_ago, entry in zip((3, 2, 1), made, strict=True):
        # 10:30 PM account time on each of the last three days: already the next day in UTC, and
        # one entry an account day (24 hours apart, two could share a day across a DST change)
        entry.at = local_to_utc(datetime.combine(today - timedelta(days=days_ago), time(22, 30)), zone)
    db.session.commit()
    return {"job": job.id, "run": run.id, "today": today}


def test_the_audit_page_shows_entries_with_their_object_linked_while_it_exists(client, auth, users, logged):
    auth.login(users["super_admin"].email)
    html = page(client)
    assert "Run stopped" in html and "other@example.org" in html and "Run #1: stopping" in html
    assert f'<a href="/runs/{logged["run"]}">run {logged["run"]}</a>' in html
    assert f"job {logged['job']}" in html and f'href="/jobs/{logged["job"]}"' not in html
    assert "Job deleted" in html and "“Gone job”" in html
    assert " EST" in html or " EDT" in html


@pytest.mark.parametrize(
    "args, shown",
    [
        ({"user": "other"}, ["Run #1: stopping"]),
        ({"action": "job.deleted"}, ["Gone job"]),
        ({"object": "run"}, ["Run #1: stopping", "Run started"]),
        ({"object": "job {job}"}, ["Gone job"]),
    ],
)
def test_the_audit_filters_narrow_the_entries(client, auth, users, logged, args, shown):
    auth.login(users["super_admin"].email)
    args = {
        name: users[value].id if name == "user" else value.format(**logged) for name, value in args.items()
    }
    html = page(client, **args).split("<tbody>")[1]
    for text in shown:
        assert text in html
    assert html.count("<tr>") == len(shown)


def test_the_audit_date_range_is_in_account_days(client, auth, users, logged, app):
    auth.login(users["super_admin"].email)
    two_days_ago = logged["today"] - timedelta(days=2)  # the fixture's today, even past midnight
    html = page(client, date_from=two_days_ago.isoformat(), date_to=two_days_ago.isoformat()).split(
        "<tbody>"
    )[1]
    assert html.count("<tr>") == 1 and "Run #1: stopping" in html
    yesterday = two_days_ago + timedelta(days=1)
    html = page(client, date_from=two_days_ago.isoformat(), date_to=yesterday.isoformat()).split("<tbody>")[1]
    assert html.count("<tr>") == 2 and "Gone job" not in html


def test_the_audit_page_is_paged_and_keeps_its_filter(client, auth, users, app):
    app.config["PAGE_SIZE"] = 2
    for number in range(5):
        audit.record("run.retried", None, actor=users["user"], detail=f"entry {number}")
    audit.record("job.deleted", None, actor=users["user"], detail="not a retry")
    auth.login(users["super_admin"].email)
    first = page(client, action="run.retried")
    assert "entry 4" in first and "entry 3" in first and "entry 2" not in first
    older = first.split('href="')[-1].split('"')[0].replace("&amp;", "&")
    assert "action=run.retried" in older and "before=" in older
    second = client.get(older).get_data(as_text=True)
    assert "entry 2" in second and "entry 1" in second and "← Newer</a>" in second
    assert "not a retry" not in first + second


def test_the_csv_export_has_every_filtered_entry_and_neutralises_formulas(client, auth, users, app):
    app.config["PAGE_SIZE"] = 2
    auth.login(users["user"].email)
    client.post(
        "/jobs/new/export",
        data={"name": '=HYPERLINK("http://evil.example","x")', "fields": ["email"], "filter": "all"},
    )
    for number in range(3):
        audit.record("run.retried", None, actor=users["user"], detail=f"entry {number}")
    auth.logout()
    auth.login(users["super_admin"].email)
    assert 'href="/admin/audit.csv?action=job.created"' in page(client, action="job.created")
    response = client.get("/admin/audit.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0][:4] == ["When (UTC)", "When (America/New_York)", "Who", "Action"]
    body = [row for row in table[1:] if not row[4].startswith("auth.")]  # not the sign-ins
    assert len(body) == 4  # every page, not only the first
    created = next(row for row in body if row[4] == "job.created")
    assert created[2] == "user@example.org" and created[3] == "Job created"
    assert created[7] == "'" + '=HYPERLINK("http://evil.example","x")'
    only_created = client.get("/admin/audit.csv", query_string={"action": "job.created"})
    assert len(list(csv.reader(io.StringIO(only_created.get_data(as_text=True))))) == 2


def test_only_super_admins_see_the_audit_log_and_its_export_and_nobody_can_change_them(client, auth, users):
    urls = ["/admin/audit", "/admin/audit.csv"]
    for role in ("user", "admin"):
        auth.login(users[role].email)
        assert [client.get(url).status_code for url in urls] == [404, 404]
        auth.logout()
    auth.login(users["super_admin"].email)
    assert [client.get(url).status_code for url in urls] == [200, 200]
    assert [client.post(url).status_code for url in urls] == [405, 405]  # no edit, no delete


MALFORMED = [
    {"user": "abc"},
    {"user": "-1"},
    {"action": "run.exploded"},
    {"object": "planet 3"},
    {"object": "run twelve"},
    {"object": "run " + "9" * 30},
    {"date_from": "2026-13-01"},
    {"date_to": "yesterday"},
    {"date_from": "0001-01-01"},
]


@pytest.mark.parametrize(
    "url, args",
    [
        *(("/admin/audit", args) for args in [*MALFORMED, {"after": "1.5"}]),
        *(("/admin/audit.csv", args) for args in MALFORMED),
    ],
)
def test_malformed_audit_filters_answer_400(client, auth, users, url, args):
    auth.login(users["super_admin"].email)
    assert client.get(url, query_string=args).status_code == 400


# ------------------------------------------------------------------------------- retention


def test_the_sweep_deletes_entries_older_than_the_audit_retention_and_keeps_newer(app, users):
    AccountSettings.get().audit_retention_days = 90
    old = audit.record("run.stopped", None, actor=users["user"], detail="old")
    kept = audit.record("run.stopped", None, actor=users["user"], detail="kept")
    old.at = utcnow() - timedelta(days=91)
    kept.at = utcnow() - timedelta(days=89)
    db.session.commit()
    scheduler_loop.loop(once=True)  # its hourly sweep
    assert [e.detail for e in entries()] == ["kept"]


def test_the_action_filter_names_each_wording_once_and_finds_older_codes_too(client, auth, users):
    for action, label in (("download_result", "old entry"), ("run.result_downloaded_for_owner", "new entry")):
        db.session.add(AuditEntry(actor_id=users["super_admin"].id, action=action, detail=label))
    db.session.commit()
    auth.login(users["super_admin"].email)
    page = client.get("/admin/audit").get_data(as_text=True)
    assert page.count(">Result downloaded for its owner</option>") == 1
    found = client.get("/admin/audit?action=run.result_downloaded_for_owner").get_data(as_text=True)
    assert "old entry" in found and "new entry" in found


def test_every_action_the_code_records_can_be_filtered_on_with_its_words(client, auth, users):
    """An action written without a line in ACTIONS is shown from its code and cannot be chosen
    in the Action filter (receipts, rollbacks and Supporter Deletes were missing)."""
    import pathlib
    import re

    from webapp.admin.audit_log import ACTIONS

    recorded = set()
    for path in pathlib.Path("webapp").rglob("*.py"):
        recorded |= set(re.findall(r"record\(\s*\"([a-z_]+\.[a-z_]+)\"", path.read_text(encoding="utf-8")))
    assert len(recorded) >= 30
    assert recorded <= set(ACTIONS), sorted(recorded - set(ACTIONS))
    auth.login(users["super_admin"].email)
    for query in ("action=receipt.voided", "action=rollback.started", "object=receipt", "object=receipt 3"):
        assert client.get(f"/admin/audit?{query}").status_code == 200, query
