"""Every route × every role × own/other's object: a guessed id answers 404, never the data."""

import re
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
PAGES = [
    "/",
    "/history",
    "/jobs/",
    "/jobs/new",
    "/jobs/new/import",
    "/jobs/new/export",
    "/supporters/",
    "/monitor/updates?ids=1&after=0",
]
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


def test_monitor_and_history_show_only_own_runs_except_for_super_admin(client, auth, users, objects):
    auth.login(users["user"].email)
    for page in ("/", "/history"):
        html = client.get(page).get_data(as_text=True)
        assert "Secret list of user" in html
        assert "Secret list of other" not in html
        assert '<th scope="col">User</th>' not in html
    auth.logout()
    auth.login(users["super_admin"].email)
    for page in ("/", "/history"):
        html = client.get(page).get_data(as_text=True)
        assert "Secret list of user" in html and "Secret list of other" in html
        assert '<th scope="col">User</th>' in html
        assert "other@example.org" in html


def test_updates_fragment_never_renders_other_users_runs(client, auth, users, objects):
    auth.login(users["user"].email)
    ids = ",".join(str(run_id) for _, run_id in objects.values())
    html = client.get(f"/monitor/updates?ids={ids}&after=0", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "Secret list of user" in html
    assert "Secret list of other" not in html and "Secret list of admin" not in html


# a run's files: path, audited kind, and the words the audit entry names it by
RUN_FILES = [
    ("result", "result", "result"),
    ("log.txt", "log", "log"),
    ("rejections.csv", "rejections", "rejected lines"),
]


def test_super_admin_download_on_behalf_is_audited_own_download_is_not(client, auth, users, objects):
    auth.login(users["super_admin"].email)
    _, other_run = objects["other"]
    _, own_run = objects["super_admin"]
    names = {}
    for path, _, _ in RUN_FILES:
        response = client.get(f"/runs/{other_run}/{path}")
        assert response.status_code == 200 and response.get_data()
        names[path] = response.headers["Content-Disposition"].split("filename=")[1].strip('"')
        response = client.get(f"/runs/{own_run}/{path}")
        assert response.status_code == 200 and response.get_data()
    entries = AuditEntry.query.filter(AuditEntry.run_id.is_not(None)).order_by(AuditEntry.id).all()
    assert len(entries) == len(RUN_FILES)
    for entry, (path, kind, words) in zip(entries, RUN_FILES, strict=True):
        assert entry.action == f"run.{kind}_downloaded_for_owner"
        assert (entry.owner_id, entry.run_id) == (users["other"].id, other_run)
        assert entry.actor_id == users["super_admin"].id
        assert names[path] in entry.detail and "other@example.org" in entry.detail
        assert f"the {words} of run #1" in entry.detail
    assert "on behalf of other@example.org" in client.get("/admin/audit").get_data(as_text=True)
    # the owner still finds the result waiting in their monitor; the super admin's own left it
    assert db.session.get(Run, other_run).in_monitor
    assert not db.session.get(Run, own_run).in_monitor


def test_every_file_of_a_run_taken_for_its_owner_is_audited(app, client, auth, users, objects):
    """Every route of a run that answers a file (any added later too) writes the audit entry."""
    auth.login(users["super_admin"].email)
    _, run_id = objects["other"]
    files = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("runs.") or "GET" not in rule.methods:
            continue
        before = AuditEntry.query.count()
        response = client.get(rule.build({"run_id": run_id})[1])
        response.get_data()  # a streamed file is made (and its request ended) as it is read
        if "attachment" in response.headers.get("Content-Disposition", ""):
            files += 1
            entry = AuditEntry.query.order_by(AuditEntry.id.desc()).first()
            assert AuditEntry.query.count() == before + 1, rule.rule
            assert entry.run_id == run_id and entry.action.endswith("_downloaded_for_owner")
        else:
            assert AuditEntry.query.count() == before, rule.rule
    assert files >= 3


def test_a_result_taken_for_its_owner_stays_in_the_owners_monitor(client, auth, users, objects):
    """The owner's row stays, on the page and in the polled refresh, until the owner downloads;
    the super admin's row stays too and says it was downloaded on the owner's behalf."""
    _, run_id = objects["user"]
    row = f'id="run-{run_id}"'
    leaves = re.compile(r"data-leaves-row|row\.remove\(")  # the hook that drops a row on click
    auth.login(users["super_admin"].email)
    assert client.get(f"/runs/{run_id}/result").status_code == 200
    page = client.get("/").get_data(as_text=True)
    mine = page.split(row, 1)[1].split("</tr>", 1)[0]
    assert "downloaded on behalf of the owner" in mine and not leaves.search(mine)
    refresh = client.get(f"/monitor/updates?ids={run_id}&after=0", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "downloaded on behalf of the owner" in refresh.split(row, 1)[1].split("</tr>", 1)[0]
    auth.logout()

    auth.login(users["user"].email)
    for html in (
        client.get("/").get_data(as_text=True),
        client.get(f"/monitor/updates?ids={run_id}&after=0", headers={"HX-Request": "true"}).get_data(
            as_text=True
        ),
    ):
        theirs = html.split(row, 1)[1].split("</tr>", 1)[0]
        assert "Download results of Secret list of user" in theirs
        assert leaves.search(theirs) and "on behalf" not in theirs
    assert client.get(f"/runs/{run_id}/result").status_code == 200
    assert row not in client.get("/").get_data(as_text=True)
    assert row not in client.get("/monitor/updates?ids=&after=0").get_data(as_text=True)


def test_admin_cannot_edit_a_super_admin(client, auth, users):
    auth.login(users["admin"].email)
    assert client.get(f"/admin/users/{users['super_admin'].id}").status_code == 404
    response = client.post(
        "/admin/users/new", data={"email": "boss@example.org", "role": "super_admin", "active": "y"}
    )
    assert "Not a valid choice" in response.get_data(as_text=True)


# a supporter is the account's, not a user's (the Supporters page lists every one to every user);
# the transactions on its page follow the runs' owner rule (tests/test_transaction_import.py)
SKIPPED_ENDPOINTS = {"static", "supporters.detail"}  # no owned object behind these ids:
# role-gated (tested above) / signed tokens / personal even to a super admin, and the API's,
# which answers a bearer token only (tests/test_api_tokens.py); receipts, the account's and
# admins' only (403 to a user; an admin opening another admin's receipt job: a 404,
# tests/test_receipts_pages.py)
SKIPPED_PREFIXES = ("admin.", "tracking.", "tokens.", "api_v1.", "receipts.")


@pytest.fixture
def others_objects(app, users):
    """One of everything owned by the "other" user, by URL parameter name."""
    from datetime import date

    from tests.test_email_campaign import campaign_for
    from webapp.api.tokens import issue
    from webapp.jobtypes.job_group import GroupDefinition
    from webapp.models import Blackout, Job
    from webapp.models.campaigns import SavedFilter

    other = users["other"]
    job = export_job(other, name="Secret list of other")
    run = start_run(job, other)
    work(app)
    campaign = campaign_for(other, name="Secret campaign of other")
    group = Job(owner_id=other.id, job_type="job_group", name="Secret group of other", params={})
    GroupDefinition(steps=[job.id, job.id], never_expires=True).save_to(group)
    blackout = Blackout(
        job_id=job.id, start_date=date(2030, 1, 1), end_date=date(2030, 1, 2), reason="Secret closure"
    )
    saved = SavedFilter(owner_id=other.id, name="Secret filter of other", rule={"conditions": []})
    db.session.add_all([group, blackout, saved])
    db.session.commit()
    return {
        "run_id": run.id,
        "job_id": job.id,
        "campaign_id": campaign.id,
        "group_id": group.id,
        "blackout_id": blackout.id,
        "filter_id": saved.id,
        "token_id": issue(other, "Secret token of other", read_only=True, expires_at=None)[0].id,
        "step": 1,
    }


def owned_object_routes(app):
    """Every route that takes an object id, with each of its methods (deletions last, so that a
    super admin's requests find every object)."""
    rules = sorted(
        app.url_map.iter_rules(), key=lambda r: ("delete" in r.endpoint or "deactivate" in r.endpoint, r.rule)
    )
    for rule in rules:
        if (
            not rule.arguments
            or rule.endpoint in SKIPPED_ENDPOINTS
            or rule.endpoint.startswith(SKIPPED_PREFIXES)
            or not any(a.endswith("_id") for a in rule.arguments)
        ):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


@pytest.mark.parametrize("role,expect_404", [("user", True), ("admin", True), ("super_admin", False)])
def test_every_route_with_an_object_id_hides_another_users_object(
    app, client, auth, users, others_objects, role, expect_404
):
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


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/x",
        "//evil.example/x",
        "/\\evil.example/x",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/runs/1\r\nLocation: https://evil.example",
    ],
)
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


# ------------------------------------------------- ids in forms and query strings × role × whose
# The same rule as for URLs (webapp/permissions.py): a single-id field naming an object the
# acting user may not use answers 404; a list field drops such ids. Either way nothing of the
# other user's object is stored or shown. A super admin may name anyone's object only where the
# UI offers it: in lists they read (monitor, History) and in the objects of the user they edit
# (test_a_super_admin_edits_a_users_object_with_that_users_ids_only).

CAMPAIGN_FIELDS = {
    "name": "Matrix appeal",
    "from_address": "Park <news@park.example>",
    "subject": "Hello",
    "text_body": "Dear friend",
    "audience": "filter",
}


@pytest.fixture
def everyones(app, users):
    """For each user: a saved filter, a campaign, two active exports, a group and a queued
    run, every one named "Secret … of <user>"."""
    from tests.test_email_campaign import campaign_for
    from webapp.jobtypes.job_group import GroupDefinition
    from webapp.models import Job, SavedFilter

    made = {}
    for key, user in users.items():
        saved = SavedFilter(
            owner_id=user.id,
            name=f"Secret filter of {key}",
            rule={"conditions": [{"field": "city", "op": "eq", "value": "x"}]},
        )
        db.session.add(saved)
        jobs = [export_job(user, name=f"Secret export {n} of {key}") for n in "AB"]
        group = Job(owner_id=user.id, job_type="job_group", name=f"Secret group of {key}", params={})
        GroupDefinition(never_expires=True).save_to(group)
        db.session.add(group)
        db.session.commit()
        campaign = campaign_for(user, name=f"Secret campaign of {key}")
        run = start_run(jobs[0], user)
        made[key] = {
            "user": user.id,
            "filter": saved.id,
            "jobs": [j.id for j in jobs],
            "group": group.id,
            "campaign": campaign.id,
            "run": run.id,
        }
    return made


def _definition(group_id: int):
    from webapp.jobtypes.job_group import GroupDefinition
    from webapp.models import Job

    db.session.expire_all()
    return GroupDefinition.of(db.session.get(Job, group_id))


def _new_campaign_filter(client, mine, theirs):
    response = client.post("/campaigns/new", data={**CAMPAIGN_FIELDS, "filter_id": theirs["filter"]})
    from webapp.models import Campaign

    stored = (
        db.session.execute(db.select(Campaign.filter_id).where(Campaign.name == CAMPAIGN_FIELDS["name"]))
        .scalars()
        .all()
    )
    return response, stored == [theirs["filter"]]


def _edited_campaign_filter(client, mine, theirs):
    from webapp.models import Campaign

    response = client.post(
        f"/campaigns/{mine['campaign']}/edit", data={**CAMPAIGN_FIELDS, "filter_id": theirs["filter"]}
    )
    db.session.expire_all()
    return response, db.session.get(Campaign, mine["campaign"]).filter_id == theirs["filter"]


def _group_steps(client, mine, theirs):
    response = client.post(f"/groups/{mine['group']}/edit/1", data={"steps": theirs["jobs"], "nav": "save"})
    return response, _definition(mine["group"]).steps == theirs["jobs"]


def _group_add_step(client, mine, theirs):
    response = client.post(f"/groups/{mine['group']}/edit/1", data={"op": f"add:{theirs['jobs'][0]}"})
    chosen = response.get_data(as_text=True).split('data-list="group"', 1)[-1]
    return response, f'name="steps" value="{theirs["jobs"][0]}"' in chosen


def _group_campaigns(client, mine, theirs):
    response = client.post(
        f"/groups/{mine['group']}/edit/2",
        data={"launch_campaigns": "y", "campaign_ids": [theirs["campaign"]], "nav": "save"},
    )
    return response, _definition(mine["group"]).campaign_ids == [theirs["campaign"]]


def _monitor_ids(client, mine, theirs):
    after = max(mine["run"], theirs["run"])  # nothing "joined since": only `ids` is rendered
    response = client.get(
        f"/monitor/updates?ids={theirs['run']}&after={after}", headers={"HX-Request": "true"}
    )
    return response, f'id="run-{theirs["run"]}"' in response.get_data(as_text=True)


def _dismiss_finished_ids(client, mine, theirs):
    from webapp.models.base import utcnow
    from webapp.rules.states import RunState

    run = db.session.get(Run, theirs["run"])
    if run is not None:  # (an unknown id: no run to finish)
        run.state, run.finished_at, run.in_monitor = RunState.FAILED, utcnow(), True
        db.session.commit()
    response = client.post("/monitor/dismiss-finished", data={"run": [theirs["run"]]})
    db.session.expire_all()
    return response, run is not None and not db.session.get(Run, theirs["run"]).in_monitor


def _history_user(client, mine, theirs):
    response = client.get(f"/history?user={theirs['user']}")
    return response, response.status_code == 200 and f'href="/runs/{theirs["run"]}"' in response.get_data(
        as_text=True
    )


def _history_job(client, mine, theirs):
    job = theirs["jobs"][0]
    response = client.get(f"/history?job={job}")
    return response, response.status_code == 200 and f'name="job" value="{job}"' in response.get_data(
        as_text=True
    )


def _supporter_delete_filter(client, mine, theirs):
    from webapp.models import Job

    response = client.post(
        "/supporter-deletes/new", data={"name": "Delete", "source": "filter", "filter_id": theirs["filter"]}
    )
    stored = [
        job.params.get("filter_id")
        for job in db.session.execute(db.select(Job).where(Job.job_type == "supporter_delete")).scalars()
    ]
    return response, stored == [theirs["filter"]]


# (endpoint, field): (how it is sent and whether it was used, single id?, a super admin may
# name anyone's object there?)
ID_FIELDS = {
    # refused on the form with what was typed kept (a filter deleted in another tab meanwhile
    # is the same case), not a 404
    ("campaigns.new", "filter_id"): (_new_campaign_filter, False, False),
    ("campaigns.edit", "filter_id"): (_edited_campaign_filter, False, False),
    ("erasure.new", "filter_id"): (_supporter_delete_filter, True, False),
    ("groups.wizard", "steps"): (_group_steps, False, False),
    ("groups.wizard", "op"): (_group_add_step, False, False),
    ("groups.wizard", "campaign_ids"): (_group_campaigns, False, False),
    ("monitor.updates", "ids"): (_monitor_ids, False, True),
    ("monitor.dismiss_finished", "run"): (_dismiss_finished_ids, False, True),
    ("monitor.history", "user"): (_history_user, True, True),
    ("monitor.history", "job"): (_history_job, True, True),
}


@pytest.mark.parametrize("field", list(ID_FIELDS), ids="{0[0]}:{0[1]}".format)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("whose", ["own", "other"])
def test_every_id_in_a_form_or_query_follows_the_url_rule(client, auth, users, everyones, field, role, whose):
    send, single, super_admin_names_anyone = ID_FIELDS[field]
    auth.login(users[role].email)
    theirs = everyones[role if whose == "own" else "other"]
    response, used = send(client, everyones[role], theirs)
    assert response.status_code < 500
    if whose == "own" or (role == "super_admin" and super_admin_names_anyone):
        assert response.status_code != 404 and used, f"{field} {response.status_code}"
        return
    assert not used, field
    assert "of other" not in response.get_data(as_text=True), field
    if single:
        assert response.status_code == 404, f"{field} answered {response.status_code}"


def test_a_super_admin_edits_a_users_object_with_that_users_ids_only(client, auth, users, everyones):
    auth.login(users["super_admin"].email)
    theirs, own = everyones["other"], everyones["super_admin"]
    for send in (_edited_campaign_filter, _group_steps, _group_campaigns):
        response, used = send(client, theirs, theirs)  # the user's object, the user's ids: as
        assert used and response.status_code == 302, send.__name__  # the UI offers them
        response, used = send(client, theirs, own)  # the super admin's own ids: not there
        assert not used and response.status_code in (200, 400, 404), send.__name__
    response, used = _group_add_step(client, theirs, own)
    assert not used and "Secret export A of super_admin" not in response.get_data(as_text=True)


def test_an_unknown_id_is_answered_as_another_users(client, auth, users, everyones):
    auth.login(users["user"].email)
    missing = {"user": 10**9, "filter": 10**9, "jobs": [10**9], "campaign": 10**9, "run": 10**9}
    for (endpoint, name), (send, single, _) in ID_FIELDS.items():
        response, used = send(client, everyones["user"], missing)
        assert not used and response.status_code < 500, (endpoint, name)
        if single:
            assert response.status_code == 404, (endpoint, name)


# Values read from forms and query strings that are not object ids, each with why. A new field or
# value that is neither here nor in ID_FIELDS fails test_every_id_field_is_in_the_matrix.
NOT_OBJECT_IDS = {
    # form fields holding numbers that are not object ids
    ("ScheduleForm", "times_per_day"): "a count",
    ("ScheduleForm", "day_of_month"): "a day",
    ("ScheduleForm", "week_of_month"): "first…last",
    ("ScheduleForm", "weekday"): "Mon…Sun",
    ("ScheduleForm", "hour"): "an hour",
    ("ScheduleForm", "slot"): "a quarter hour",
    ("ScheduleForm", "weekdays"): "Mon…Sun",
    ("ScheduleForm", "misfire_grace_minutes"): "minutes",
    ("SettingsForm", "retention_days"): "days",
    ("SettingsForm", "audit_retention_days"): "days",
    ("ReceiptFilters", "number"): "a receipt number: receipts are the account's, admins see all",
    ("ReceiptFilters", "year"): "a tax year",
    ("AnnualForm", "year"): "a tax year",
    # values read by hand
    ("before",): "a keyset cursor in the viewer's own list",
    ("after",): "the same",
    ("page",): "a page number",
    ("type",): "a job type",
    ("state",): "a run state",
    ("q",): "search text",
    ("email",): "a supporter's email for a preview",
    ("next",): "a path on this site (safe_path)",
    ("from",): "where an action came from",
    ("nav",): "a wizard button",
    ("seen",): "the step list a wizard page showed, compared with the saved one, never looked up",
    ("back",): "a page to go back to",
    ("action",): "a button or an audit action name",
    ("u",): "a signed link",
    ("s",): "its signature",
    # the Audit page (admin/audit_log.py): a 404 to anyone but a super admin, who may name any
    # user or object there (test_pages_by_role)
    ("admin/audit_log.py", "user"): "super admins only",
    ("admin/audit_log.py", "object"): "super admins only",
    # the API's History takes a bearer token, not the session these tests sign in with: its
    # `user` goes through History's own check (history_user_or_404), tests/test_api_tokens.py
    ("api/v1/lists.py", "user"): "history_user_or_404, as History's",
    ("api/v1/imports.py", "map"): "Column:field pairs naming the body's columns (job_id: job_or_404)",
    ("api/v1/transactions.py", "map"): "Column:field pairs naming the body's columns",
    ("transactions/routes.py", "appeal"): "an appeal code (text)",
    ("transactions/routes.py", "method"): "a payment method (text)",
    # a filter within the viewer's own transactions (visible_transactions): another user's
    # import run id narrows them to none, and shows nothing of that run
    ("transactions/routes.py", "run"): "narrows the viewer's own transactions only",
}
HAND_READ = re.compile(
    r'(?:int_arg|ids_arg|choice_arg|page_arg)\(\s*"(\w+)"'
    r'|request\.(?:form|args|values)\.get(?:list)?\(\s*"(\w+)"'
)


def _form_classes():
    """Every FlaskForm subclass of the app (after importing every module of webapp)."""
    import importlib
    import pkgutil

    from flask_wtf import FlaskForm

    import webapp

    for module in pkgutil.walk_packages(webapp.__path__, "webapp."):
        if not module.name.startswith("webapp.migrations"):
            importlib.import_module(module.name)
    found, todo = [], [FlaskForm]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def id_like_form_fields() -> set[tuple[str, str]]:
    """(form class, field) for every field that may carry an id: named *_id(s), hidden, or a
    number (IntegerField, or a choice coerced to int)."""
    from wtforms import HiddenField, IntegerField
    from wtforms.fields.core import UnboundField

    fields = set()
    for form in _form_classes():
        for name, value in vars(form).items():
            if not isinstance(value, UnboundField):
                continue
            numeric = (
                issubclass(value.field_class, IntegerField | HiddenField) or value.kwargs.get("coerce") is int
            )
            if numeric or re.search(r"_ids?$", name):
                fields.add((form.__name__, name))
    return fields


def hand_read_values() -> set[tuple[str, str]]:
    """(module under webapp/, name) for every form or query value a view reads by hand."""
    root = Path(__file__).resolve().parents[1] / "webapp"
    found = set()
    for path in root.rglob("*.py"):
        if path.name == "request_args.py" or "migrations" in path.parts:
            continue
        for match in HAND_READ.finditer(path.read_text(encoding="utf-8")):
            found.add((str(path.relative_to(root)), match.group(1) or match.group(2)))
    return found


def test_every_id_field_is_in_the_matrix(app):
    covered_fields = {
        ("CampaignForm", "filter_id"),
        ("CampaignsForm", "campaign_ids"),
        ("DeleteForm", "filter_id"),
    }
    covered_values = {
        ("groups/wizard.py", "steps"),
        ("groups/wizard.py", "op"),
        ("monitor/routes.py", "ids"),
        ("monitor/routes.py", "run"),
        ("monitor/routes.py", "user"),
        ("monitor/routes.py", "job"),
    }
    assert {name for _, name in ID_FIELDS} == {n for _, n in covered_fields | covered_values}
    unclassified = [
        field
        for field in id_like_form_fields()
        if field not in covered_fields and field not in NOT_OBJECT_IDS
    ] + [
        (module, name)
        for module, name in hand_read_values()
        if (module, name) not in covered_values
        and (module, name) not in NOT_OBJECT_IDS
        and (name,) not in NOT_OBJECT_IDS
    ]
    assert not unclassified, (
        f"{unclassified}: a new field or query value that may carry an id. Check it with "
        "webapp.permissions (usable_or_404 / usable_ids) and add it to ID_FIELDS, or say why "
        "it is no id in NOT_OBJECT_IDS."
    )
