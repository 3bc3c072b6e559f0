"""Every route × every role × own/other's object: a guessed id answers 404, never the data."""

from pathlib import Path

import pytest

from tests.conftest import export_job, fresh, work
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.models import AuditEntry, Run

RUN_ROUTES = [
    ("GET", "/runs/{run}"),
    ("GET", "/runs/{run}/status"),
    ("GET", "/runs/{run}/log.txt"),
    ("GET", "/runs/{run}/result"),
    ("GET", "/runs/{run}/rejections.csv"),
    ("POST", "/runs/{run}/stop"),
    ("POST", "/runs/{run}/kill"),
    ("POST", "/runs/{run}/retry"),
    ("POST", "/runs/{run}/dismiss"),
    ("GET", "/jobs/{job}"),
    ("POST", "/jobs/{job}/run"),
    ("POST", "/jobs/{job}/delete"),
]
ROLES = ["user", "admin", "super_admin"]
PAGES = ["/", "/history", "/jobs/", "/jobs/new", "/jobs/new/import", "/jobs/new/export",
         "/supporters/", "/monitor/updates?ids=1&after=0"]
ADMIN_PAGES = ["/admin/users", "/admin/users/new", "/admin/settings"]
SUPER_PAGES = ["/admin/audit"]


@pytest.fixture
def objects(app, users):
    """A finished export (with a result file) owned by each user."""
    made = {}
    for key, user in users.items():
        job = export_job(user, name=f"Secret list of {key}")
        run = start_run(job, user)
        made[key] = (job, run)
    work(app)
    return {key: (job.id, fresh(run).id) for key, (job, run) in made.items()}


@pytest.mark.parametrize("method,route", RUN_ROUTES)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("whose", ["own", "other"])
def test_run_and_job_routes(client, auth, users, objects, role, whose, method, route):
    owner = role if whose == "own" else "other"
    job_id, run_id = objects[owner]
    auth.login(users[role].email)
    url = route.format(run=run_id, job=job_id)
    response = client.open(url, method=method)
    allowed = whose == "own" or role == "super_admin"
    if allowed:
        assert response.status_code != 404, url
        assert response.status_code < 500
    else:
        assert response.status_code == 404, url
        assert f"Secret list of {owner}" not in response.get_data(as_text=True)


def test_forbidden_post_changes_nothing(client, auth, users, objects):
    _, run_id = objects["other"]
    auth.login(users["admin"].email)
    client.post(f"/runs/{run_id}/dismiss")
    client.post(f"/runs/{run_id}/stop")
    assert db.session.get(Run, run_id).in_monitor


@pytest.mark.parametrize("role", ROLES)
def test_pages_by_role(client, auth, users, role):
    auth.login(users[role].email)
    for page in PAGES:
        assert client.get(page).status_code == 200, page
    for page in ADMIN_PAGES:
        assert client.get(page).status_code == (200 if role != "user" else 403), page
    for page in SUPER_PAGES:
        assert client.get(page).status_code == (200 if role == "super_admin" else 404), page


@pytest.mark.parametrize("page", PAGES + ADMIN_PAGES + SUPER_PAGES + ["/runs/1", "/jobs/1"])
def test_anonymous_is_sent_to_login(client, page):
    response = client.get(page)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_monitor_and_history_show_only_own_runs_except_for_super_admin(
        client, auth, users, objects):
    auth.login(users["user"].email)
    for page in ("/", "/history"):
        html = client.get(page).get_data(as_text=True)
        assert "Secret list of user" in html
        assert "Secret list of other" not in html
        assert "<th scope=\"col\">User</th>" not in html
    auth.logout()
    auth.login(users["super_admin"].email)
    for page in ("/", "/history"):
        html = client.get(page).get_data(as_text=True)
        assert "Secret list of user" in html and "Secret list of other" in html
        assert "<th scope=\"col\">User</th>" in html
        assert "other@example.org" in html


def test_updates_fragment_never_renders_other_users_runs(client, auth, users, objects):
    auth.login(users["user"].email)
    ids = ",".join(str(run_id) for _, run_id in objects.values())
    html = client.get(f"/monitor/updates?ids={ids}&after=0",
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Secret list of user" in html
    assert "Secret list of other" not in html and "Secret list of admin" not in html


def test_super_admin_download_on_behalf_is_audited_own_download_is_not(
        client, auth, users, objects):
    auth.login(users["super_admin"].email)
    _, other_run = objects["other"]
    _, own_run = objects["super_admin"]
    assert client.get(f"/runs/{other_run}/result").status_code == 200
    assert client.get(f"/runs/{own_run}/result").status_code == 200
    entries = AuditEntry.query.all()
    assert len(entries) == 1
    assert (entries[0].owner_id, entries[0].run_id) == (users["other"].id, other_run)
    assert "on behalf of other@example.org" in client.get("/admin/audit").get_data(as_text=True)
    # the owner still finds the result waiting in their monitor; the super admin's own left it
    assert db.session.get(Run, other_run).in_monitor
    assert not db.session.get(Run, own_run).in_monitor


def test_admin_cannot_edit_a_super_admin(client, auth, users):
    auth.login(users["admin"].email)
    assert client.get(f"/admin/users/{users['super_admin'].id}").status_code == 404
    response = client.post("/admin/users/new", data={
        "email": "boss@example.org", "role": "super_admin", "active": "y"})
    assert "Not a valid choice" in response.get_data(as_text=True)


SKIPPED_ENDPOINTS = {"static"}  # no owned object behind these ids:
SKIPPED_PREFIXES = ("admin.", "tracking.")  # role-gated (tested above) / signed tokens


@pytest.fixture
def others_objects(app, users):
    """One of everything owned by the "other" user, by URL parameter name."""
    from datetime import date

    from tests.test_email_campaign import campaign_for
    from webapp.jobtypes.job_group import GroupDefinition
    from webapp.models import Blackout, Job

    other = users["other"]
    job = export_job(other, name="Secret list of other")
    run = start_run(job, other)
    work(app)
    campaign = campaign_for(other, name="Secret campaign of other")
    group = Job(owner_id=other.id, job_type="job_group", name="Secret group of other", params={})
    GroupDefinition(steps=[job.id, job.id], never_expires=True).save_to(group)
    blackout = Blackout(job_id=job.id, start_date=date(2030, 1, 1), end_date=date(2030, 1, 2),
                        reason="Secret closure")
    db.session.add_all([group, blackout])
    db.session.commit()
    return {"run_id": run.id, "job_id": job.id, "campaign_id": campaign.id,
            "group_id": group.id, "blackout_id": blackout.id, "step": 1}


def owned_object_routes(app):
    """Every route that takes an object id, with each of its methods (deletions last, so that a
    super admin's requests find every object)."""
    rules = sorted(app.url_map.iter_rules(),
                   key=lambda r: (r.endpoint.endswith(("delete", "deactivate")), r.rule))
    for rule in rules:
        if not rule.arguments or rule.endpoint in SKIPPED_ENDPOINTS \
                or rule.endpoint.startswith(SKIPPED_PREFIXES) \
                or not any(a.endswith("_id") for a in rule.arguments):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


@pytest.mark.parametrize("role,expect_404", [("user", True), ("admin", True),
                                             ("super_admin", False)])
def test_every_route_with_an_object_id_hides_another_users_object(
        app, client, auth, users, others_objects, role, expect_404):
    auth.login(users[role].email)
    checked = 0
    for method, rule in owned_object_routes(app):
        url = rule.build({name: others_objects[name] for name in rule.arguments})[1]
        response = client.open(url, method=method)
        if expect_404:
            assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
            assert "Secret" not in response.get_data(as_text=True), url
        else:
            assert response.status_code < 500, f"{method} {url} answered {response.status_code}"
            assert response.status_code != 404, f"{method} {url}"
        checked += 1
    assert checked >= 35  # runs, jobs, schedules, blackouts, campaigns, groups


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example/x",
                                    "/\\evil.example/x", "\\\\evil.example", "javascript:alert(1)",
                                    "/runs/1\r\nLocation: https://evil.example"])
def test_run_actions_redirect_only_to_paths_on_this_site(app, client, auth, users, target):
    from tests.conftest import import_job
    from webapp.engine.runs import start_run

    job = import_job(users["user"], Path(app.config["VAR_DIR"]) / "none.csv", ["email"])
    run = start_run(job, users["user"])
    auth.login(users["user"].email)
    response = client.post(f"/runs/{run.id}/stop", data={"next": target})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/runs/{run.id}")
    response = client.post(f"/runs/{run.id}/dismiss", data={"next": "/history?page=2"})
    assert response.headers["Location"].endswith("/history?page=2")
