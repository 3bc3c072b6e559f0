"""The groups screens: list, Create Group, the four-step wizard, a group's page and its runs,
the group run's page, the monitor's group names, permissions."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import pytest

from tests.conftest import export_job, import_job, work
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.jobtypes.job_group import GroupDefinition
from webapp.models import Job, Run
from webapp.models.campaigns import Campaign, CampaignStatus
from webapp.models.schedules import JobSchedule
from webapp.rules.states import RunState


def _group(owner, name="Nightly chain", steps=(), **fields) -> Job:
    group = Job(owner_id=owner.id, job_type="job_group", name=name, params={})
    GroupDefinition(steps=list(steps), **fields).save_to(group)
    db.session.add(group)
    db.session.commit()
    return group


def _definition(group_id: int) -> GroupDefinition:
    db.session.expire_all()
    return GroupDefinition.of(db.session.get(Job, group_id))


def _group_list(html: str) -> list[str]:
    """The job names in the wizard's Group list, in order."""
    panel = html.split('data-list="group"', 1)[1].split("</ol>", 1)[0]
    return re.findall(r'<span class="job-name">([^<]+)</span>', panel)


def _jobs_list(html: str) -> list[str]:
    panel = html.split('data-list="jobs"', 1)[1].split("</ul>", 1)[0]
    return re.findall(r'<span class="job-name">([^<]+)</span>', panel)


@pytest.fixture
def jobs(app, users):
    """Three exports of the user, one of another user, and an email-like job not to list."""
    user = users["user"]
    return {
        "a": export_job(user, name="Alpha export"),
        "b": export_job(user, name="Beta export"),
        "c": export_job(user, name="Gamma export"),
        "theirs": export_job(users["other"], name="Their export"),
    }


# ---------------------------------------------------------------------- list and create


def test_create_group_makes_a_draft_and_opens_step_one(client, auth, users):
    auth.login(users["user"].email)
    response = client.post(
        "/groups/new", data={"name": "Nightly chain", "description": "Imports then exports"}
    )
    group = db.session.execute(db.select(Job).where(Job.job_type == "job_group")).scalar_one()
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/groups/{group.id}/edit/1")
    definition = GroupDefinition.of(group)
    assert definition.description == "Imports then exports"
    assert definition.activated is False and definition.steps == []
    page = client.get("/groups/").get_data(as_text=True)
    assert "<h1>Groups</h1>" in page and "Nightly chain" in page and ">Draft<" in page
    assert 'aria-label="Run now Nightly chain"' in page
    assert 'aria-label="Edit Nightly chain"' in page
    assert 'aria-label="Deactivate Nightly chain"' not in page  # drafts are not active


def test_create_group_needs_a_name_and_keeps_the_description(client, auth, users):
    auth.login(users["user"].email)
    response = client.post("/groups/new", data={"name": "  ", "description": "kept text"})
    assert response.status_code == 400
    assert "kept text" in response.get_data(as_text=True)
    assert db.session.execute(db.select(Job)).first() is None


def test_groups_page_shows_state_expiry_and_next_run(client, auth, users, jobs):
    soon = (date.today() + timedelta(days=3)).isoformat()
    active = _group(
        users["user"], "Weekly chain", [jobs["a"].id, jobs["b"].id], activated=True, expires_on=soon
    )
    _group(users["user"], "Draft chain", never_expires=True)
    _group(users["other"], "Someone else's chain")
    next_at = date.today() + timedelta(days=2)
    db.session.add(
        JobSchedule(
            job_id=active.id,
            kind="once",
            start_date=next_at,
            enabled=True,
            next_run_at=datetime.combine(next_at, time(15, 30)),
        )
    )
    db.session.commit()
    auth.login(users["user"].email)
    page = client.get("/groups/").get_data(as_text=True)
    assert "Weekly chain" in page and "Draft chain" in page
    assert "Someone else&#39;s chain" not in page and "Someone else's chain" not in page
    row = page.split("Weekly chain", 1)[1].split("</tr>", 1)[0]
    assert ">Active<" in row and "Expires soon" in row
    assert re.search(r"\d{1,2}:30 [AP]M E[SD]T", row)  # the next run, local, with its zone
    assert 'aria-label="Deactivate Weekly chain"' in row
    draft_row = page.split("Draft chain", 1)[1].split("</tr>", 1)[0]
    assert ">Draft<" in draft_row and "Never expires" in draft_row and "—" in draft_row
    assert "Expires soon" not in draft_row


def test_super_admin_sees_every_group_with_its_user(client, auth, users):
    _group(users["other"], "Their chain")
    auth.login(users["super_admin"].email)
    page = client.get("/groups/").get_data(as_text=True)
    assert "Their chain" in page and "other@example.org" in page
    assert '<th scope="col">User</th>' in page


def test_jobs_list_leaves_groups_out_and_job_page_redirects(client, auth, users, jobs):
    group = _group(users["user"], "Nightly chain")
    auth.login(users["user"].email)
    page = client.get("/jobs/").get_data(as_text=True)
    assert "Alpha export" in page and "Nightly chain" not in page
    response = client.get(f"/jobs/{group.id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/groups/{group.id}")
    assert 'href="/groups/"' in page  # the Main nav links to Groups


# ----------------------------------------------------------------------------- step 1


def test_step_one_saves_every_add_move_and_remove_at_once(client, auth, users, jobs):
    group = _group(users["user"])
    auth.login(users["user"].email)
    url = f"/groups/{group.id}/edit/1"
    page = client.get(url).get_data(as_text=True)
    assert 'aria-current="step"' in page and "Step 1: Jobs" in page
    assert "Every change is saved at once." in page
    assert _jobs_list(page) == ["Alpha export", "Beta export", "Gamma export"]  # not theirs
    assert _group_list(page) == []
    a, b, c = jobs["a"].id, jobs["b"].id, jobs["c"].id

    page = client.post(url, data={"op": f"add:{a}"}).get_data(as_text=True)
    assert _group_list(page) == ["Alpha export"]
    assert 'aria-label="Add Alpha export"' not in page
    assert 'aria-label="Remove Alpha export"' in page
    assert _definition(group.id).steps == [a]  # saved by the button
    assert _group_list(client.get(url).get_data(as_text=True)) == ["Alpha export"]  # a reload keeps it
    page = client.post(url, data={"steps": [a], "op": f"add:{b}"}).get_data(as_text=True)
    assert _definition(group.id).steps == [a, b]
    assert '<div class="flash success" role="status">Saved.</div>' in page
    page = client.post(url, data={"steps": [a, b], "op": f"add:{c}"}).get_data(as_text=True)
    assert _group_list(page) == ["Alpha export", "Beta export", "Gamma export"]
    assert _jobs_list(page) == []
    page = client.post(url, data={"steps": [a, b, c], "op": f"up:{c}"}).get_data(as_text=True)
    assert _group_list(page) == ["Alpha export", "Gamma export", "Beta export"]
    assert _definition(group.id).steps == [a, c, b]
    page = client.post(url, data={"steps": [a, c, b], "op": f"down:{a}"}).get_data(as_text=True)
    assert _group_list(page) == ["Gamma export", "Alpha export", "Beta export"]
    assert 'aria-label="Move Gamma export up"' in page
    page = client.post(url, data={"steps": [c, a, b], "op": f"remove:{a}"}).get_data(as_text=True)
    assert _group_list(page) == ["Gamma export", "Beta export"]
    assert _jobs_list(page) == ["Alpha export"]
    assert "Not saved yet" not in page and "Saved." in page
    assert _definition(group.id).steps == [c, b]
    assert _group_list(client.get(url).get_data(as_text=True)) == ["Gamma export", "Beta export"]

    response = client.post(url, data={"steps": [c, b], "nav": "next"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/edit/2")
    assert _definition(group.id).steps == [c, b]


def test_step_one_with_htmx_saves_a_button_change_and_keeps_the_address(client, auth, users, jobs):
    group = _group(users["user"], steps=[jobs["a"].id])
    auth.login(users["user"].email)
    url = f"/groups/{group.id}/edit/1"
    response = client.post(
        url, data={"steps": [jobs["a"].id], "op": f"add:{jobs['b'].id}"}, headers={"HX-Request": "true"}
    )
    page = response.get_data(as_text=True)
    assert page.lstrip().startswith('<section id="wizard"')
    assert response.headers["HX-Push-Url"] == url  # a reload asks for the saved list
    assert "Saved." in page and _definition(group.id).steps == [jobs["a"].id, jobs["b"].id]


@pytest.mark.parametrize("htmx", [False, True])
def test_step_one_with_fewer_than_two_jobs_says_only_what_is_missing(client, auth, users, jobs, htmx):
    group = _group(users["user"])
    auth.login(users["user"].email)
    url = f"/groups/{group.id}/edit/1"
    headers = {"HX-Request": "true"} if htmx else {}
    page = client.get(url).get_data(as_text=True)
    assert '<div class="flash info" role="status">Add at least 2 jobs to the group.</div>' in page
    page = client.post(url, data={"op": f"add:{jobs['a'].id}"}, headers=headers).get_data(as_text=True)
    assert page.count("Add at least 2 jobs to the group.") == 1
    assert "Saved" not in page and "needs at least" not in page
    assert _definition(group.id).steps == [jobs["a"].id]  # saved all the same
    page = client.post(url, data={"steps": [jobs["a"].id], "nav": "next"}, headers=headers).get_data(
        as_text=True
    )
    assert '<div class="flash error" role="alert">Add at least 2 jobs to the group.</div>' in page
    assert "Saved" not in page and page.count("at least 2 jobs") == 1
    page = client.post(url, data={"op": f"remove:{jobs['a'].id}", "steps": [jobs["a"].id]}).get_data(
        as_text=True
    )
    assert "Saved 0 jobs." not in page and "Saved" not in page
    assert page.count("at least 2 jobs") == 1 and _definition(group.id).steps == []
    client.post(url, data={"op": f"add:{jobs['a'].id}"})
    page = client.post(
        url, data={"steps": [jobs["a"].id], "op": f"add:{jobs['b'].id}"}, headers=headers
    ).get_data(as_text=True)
    assert "Saved." in page and "at least 2 jobs" not in page


def test_step_one_in_two_tabs_loses_neither_tabs_change(client, auth, users, jobs):
    """Buttons change the list as saved; a whole list (dragged, or Next) from a page that showed
    another list than the saved one is refused with the list as saved now."""
    group = _group(users["user"])
    auth.login(users["user"].email)
    url = f"/groups/{group.id}/edit/1"
    a, b, c = jobs["a"].id, jobs["b"].id, jobs["c"].id
    client.post(url, data={"op": f"add:{a}"})
    client.post(url, data={"op": f"add:{b}"})
    # tab B opened now shows [a, b]; tab A removes a and adds c: [b, c]
    client.post(url, data={"op": f"remove:{a}", "steps": [a, b], "seen": f"{a},{b}"})
    client.post(url, data={"op": f"add:{c}", "steps": [b], "seen": f"{b}"})
    assert _definition(group.id).steps == [b, c]
    # tab B, not reloaded, moves b down: on the list as saved, A's changes stay
    client.post(url, data={"op": f"down:{b}", "steps": [a, b], "seen": f"{a},{b}"})
    assert _definition(group.id).steps == [c, b]
    # tab B drags its old list into another order: refused, nothing lost
    answer = client.post(url, data={"op": "order", "steps": [b, a], "seen": f"{a},{b}"})
    assert answer.status_code == 409 and "were changed meanwhile" in answer.get_data(as_text=True)
    assert _definition(group.id).steps == [c, b]
    emptied = client.post(url, data={"op": "order", "seen": f"{a},{b}"})  # no steps: nothing emptied
    assert emptied.status_code == 409 and _definition(group.id).steps == [c, b]


def test_step_one_refuses_jobs_of_others_and_groups(client, auth, users, jobs):
    group = _group(users["user"])
    other_group = _group(users["user"], "Another chain")
    auth.login(users["user"].email)
    url = f"/groups/{group.id}/edit/1"
    page = client.post(url, data={"op": f"add:{jobs['theirs'].id}"}).get_data(as_text=True)
    assert _group_list(page) == []
    client.post(
        url,
        data={"steps": [jobs["a"].id, jobs["theirs"].id, other_group.id, jobs["b"].id, "x"], "nav": "save"},
    )
    assert _definition(group.id).steps == [jobs["a"].id, jobs["b"].id]


def test_step_one_drag_and_drop_order_is_kept(client, auth, users, jobs):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id])
    auth.login(users["user"].email)
    page = client.post(
        f"/groups/{group.id}/edit/1",
        data={"steps": [jobs["b"].id, jobs["c"].id, jobs["a"].id], "op": "order"},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert page.lstrip().startswith('<section id="wizard"')  # only the wizard region
    assert _group_list(page) == ["Beta export", "Gamma export", "Alpha export"]
    assert "Saved." in page  # saved at once, as a button's change is
    assert _definition(group.id).steps == [jobs["b"].id, jobs["c"].id, jobs["a"].id]


def test_step_one_fewer_than_two_jobs_is_refused_but_saved(client, auth, users, jobs):
    group = _group(users["user"])
    auth.login(users["user"].email)
    response = client.post(f"/groups/{group.id}/edit/1", data={"steps": [jobs["a"].id], "nav": "next"})
    assert response.status_code == 400
    assert "Add at least 2 jobs to the group." in response.get_data(as_text=True)
    assert _definition(group.id).steps == [jobs["a"].id]


# ------------------------------------------------------------------------- steps 2 and 3


def test_deleting_a_job_that_groups_use_is_refused_naming_them_and_the_groups_still_run(
    app, client, auth, users, jobs
):
    auth.login(users["user"].email)
    a, b, c = jobs["a"].id, jobs["b"].id, jobs["c"].id
    night = _group(users["user"], "Night chain", [a, b], never_expires=True)
    _group(users["user"], "Weekly", [c, a], never_expires=True)
    _group(users["user"], "Unrelated", [b, c], never_expires=True)
    page = client.post(f"/jobs/{a}/delete", follow_redirects=True).get_data(as_text=True)
    assert (
        "“Alpha export” is a step of the groups “Night chain”, “Weekly”. Remove it from them first."
    ) in page
    assert db.session.get(Job, a).active is True
    run = start_run(db.session.get(Job, night.id), users["user"])
    work(app)
    db.session.expire_all()
    assert db.session.get(Run, run.id).state.value == "completed"

    client.post(f"/groups/{night.id}/edit/1", data={"steps": [b, c], "nav": "save"})
    page = client.post(f"/jobs/{a}/delete", follow_redirects=True).get_data(as_text=True)
    assert "is a step of the group “Weekly”. Remove it from it first." in page
    assert db.session.get(Job, a).active is True
    page = client.post(f"/jobs/{c}/delete", follow_redirects=True).get_data(as_text=True)
    assert "the groups “Night chain”, “Unrelated”, “Weekly”" in page
    client.post(f"/groups/{night.id}/edit/1", data={"steps": [b], "nav": "save"})
    weekly = db.session.execute(db.select(Job).filter_by(name="Weekly")).scalar_one()
    client.post(f"/groups/{weekly.id}/edit/1", data={"steps": [c], "nav": "save"})
    page = client.post(f"/jobs/{a}/delete", follow_redirects=True).get_data(as_text=True)
    assert "“Alpha export” was deleted." in page
    db.session.expire_all()
    assert db.session.get(Job, a).active is False


def test_step_two_warns_about_a_campaign_with_its_own_launch_time(client, auth, users):
    group = _group(users["user"])
    plain = Campaign(
        owner_id=users["user"].id, name="Thank-you mail", from_address="a@b.org", subject="Thanks"
    )
    timed = Campaign(
        owner_id=users["user"].id,
        name="Spring appeal",
        from_address="a@b.org",
        subject="Spring",
        launch_at=datetime(2031, 3, 2, 15, 0),
        status=CampaignStatus.SCHEDULED,
    )
    draft = Campaign(  # a launch time chosen, not launched: it waits for its Launch
        owner_id=users["user"].id,
        name="Autumn appeal",
        from_address="a@b.org",
        subject="Autumn",
        launch_at=datetime(2031, 9, 2, 15, 0),
    )
    theirs = Campaign(owner_id=users["other"].id, name="Their appeal", from_address="a@b.org", subject="x")
    db.session.add_all([plain, timed, draft, theirs])
    db.session.commit()
    auth.login(users["user"].email)
    url = f"/groups/{group.id}/edit/2"
    page = client.get(url).get_data(as_text=True)
    assert "Thank-you mail" in page and "Spring appeal" in page and "Their appeal" not in page
    assert "also has its own launch time" not in page
    response = client.post(url, data={"launch_campaigns": "y", "nav": "save"})
    assert response.status_code == 400
    assert "Select at least one campaign" in response.get_data(as_text=True)
    response = client.post(url, data={"launch_campaigns": "y", "campaign_ids": [theirs.id], "nav": "save"})
    assert response.status_code == 400 and _definition(group.id).campaign_ids == []
    response = client.post(
        url, data={"launch_campaigns": "y", "campaign_ids": [plain.id, timed.id, draft.id], "nav": "save"}
    )
    assert response.status_code == 302
    definition = _definition(group.id)
    assert definition.launch_campaigns and definition.campaign_ids == [plain.id, timed.id, draft.id]
    page = client.get(url).get_data(as_text=True)
    assert (
        "“Spring appeal” also has its own launch time (Mar 2, 2031 10:00 AM EST): it will "
        "launch on its own schedule whether or not the group run has finished, and each "
        "successful group run sends it once more."
    ) in page
    assert "“Thank-you mail” also has" not in page and "“Autumn appeal” also has" not in page


def test_step_three_validates_every_address_and_keeps_the_input(client, auth, users):
    group = _group(users["user"])
    auth.login(users["user"].email)
    url = f"/groups/{group.id}/edit/3"
    assert "sent once, after all jobs in the group" in client.get(url).get_data(as_text=True)
    response = client.post(
        url, data={"notify_success": "ops@example.org, nope\nbad@", "notify_failure": "", "nav": "next"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "“nope” is not an email address." in page
    assert "“bad@” is not an email address." in page
    assert "ops@example.org, nope" in page  # what was typed stays
    assert _definition(group.id).notify_success == []
    response = client.post(
        url,
        data={
            "notify_success": "ops@example.org\nlead@example.org",
            "notify_failure": "oncall@example.org",
            "nav": "next",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/edit/4")
    definition = _definition(group.id)
    assert definition.notify_success == ["ops@example.org", "lead@example.org"]
    assert definition.notify_failure == ["oncall@example.org"]


# ---------------------------------------------------------------- step 4: save and activate


@pytest.mark.parametrize("nav", ["save", "activate"])
def test_save_and_activate_need_an_expiration(client, auth, users, jobs, nav):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id])
    auth.login(users["user"].email)
    url = f"/groups/{group.id}/edit/4"
    response = client.post(url, data={"nav": nav})
    assert response.status_code == 400
    assert "Set an expiration date or choose Never expires before saving." in response.get_data(as_text=True)
    past = (date.today() - timedelta(days=2)).isoformat()
    response = client.post(url, data={"nav": nav, "expires_on": past})
    assert response.status_code == 400
    assert "in the past" in response.get_data(as_text=True)
    response = client.post(url, data={"nav": nav, "expires_on": "not a date"})
    assert response.status_code == 400
    definition = _definition(group.id)
    assert definition.expires_on is None and not definition.never_expires
    assert definition.activated is False


@pytest.mark.parametrize("nav", ["save", "activate"])
def test_save_and_activate_need_two_jobs(client, auth, users, jobs, nav):
    group = _group(users["user"], steps=[jobs["a"].id])
    auth.login(users["user"].email)
    response = client.post(f"/groups/{group.id}/edit/4", data={"nav": nav, "never_expires": "y"})
    assert response.status_code == 400
    assert "A group needs at least 2 jobs." in response.get_data(as_text=True)
    assert not _definition(group.id).never_expires and not _definition(group.id).activated


def _with_schedule(group: Job) -> JobSchedule:
    schedule = JobSchedule(
        job_id=group.id,
        kind="days_of_week",
        start_date=date.today(),
        time=time(3, 0),
        weekdays=list(range(7)),
        enabled=False,
    )
    db.session.add(schedule)
    db.session.commit()
    return schedule


def _planned(group_id: int) -> list[Run]:
    db.session.expire_all()
    return list(
        db.session.execute(db.select(Run).where(Run.job_id == group_id, Run.state == "scheduled")).scalars()
    )


def test_activate_plans_the_next_run_and_save_withdraws_it(client, auth, users, jobs):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id])
    _with_schedule(group)
    auth.login(users["user"].email)
    url = f"/groups/{group.id}/edit/4"
    expires = (date.today() + timedelta(days=30)).isoformat()
    response = client.post(url, data={"nav": "activate", "expires_on": expires})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/groups/{group.id}")
    definition = _definition(group.id)
    assert definition.activated and definition.expires_on == expires
    planned = _planned(group.id)
    assert len(planned) == 1
    schedule = db.session.get(Job, group.id).schedule
    assert schedule.enabled and schedule.next_run_at == planned[0].planned_for
    page = client.get(f"/groups/{group.id}").get_data(as_text=True)
    assert "is active. Next run:" in page and ">Active<" in page

    response = client.post(url, data={"nav": "save", "never_expires": "y"})
    assert response.status_code == 302
    definition = _definition(group.id)
    assert not definition.activated and definition.never_expires
    assert definition.expires_on is None
    assert _planned(group.id) == []
    assert not db.session.get(Job, group.id).schedule.enabled
    listing = client.get("/groups/").get_data(as_text=True)
    row = listing.split(">Nightly chain</a>", 1)[1].split("</tr>", 1)[0]
    assert ">Draft<" in row and "—" in row


def test_activate_with_htmx_sends_the_browser_to_the_group_page(client, auth, users, jobs):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id])
    auth.login(users["user"].email)
    response = client.post(
        f"/groups/{group.id}/edit/4",
        data={"nav": "activate", "never_expires": "y"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/groups/{group.id}"  # a full load: the address too
    assert "HX-Push-Url" not in response.headers
    assert _definition(group.id).activated
    page = client.get(f"/groups/{group.id}").get_data(as_text=True)
    assert "It has no schedule: it runs on demand only." in page


def test_activate_without_schedule_runs_on_demand_only(client, auth, users, jobs):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id])
    auth.login(users["user"].email)
    response = client.post(
        f"/groups/{group.id}/edit/4", data={"nav": "activate", "never_expires": "y"}, follow_redirects=True
    )
    assert "It has no schedule: it runs on demand only." in response.get_data(as_text=True)
    assert _definition(group.id).activated


def test_deactivate_turns_the_schedule_off(client, auth, users, jobs):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id], activated=True, never_expires=True)
    schedule = _with_schedule(group)
    schedule.enabled = True
    db.session.commit()
    from webapp.engine.planner import plan

    plan(schedule)
    assert len(_planned(group.id)) == 1
    auth.login(users["user"].email)
    client.post(f"/groups/{group.id}/deactivate")
    assert _planned(group.id) == [] and not _definition(group.id).activated


def test_schedule_page_saves_back_to_the_wizard(client, auth, users, jobs):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id])
    auth.login(users["user"].email)
    page = client.get(f"/groups/{group.id}/edit/4").get_data(as_text=True)
    assert f'href="/jobs/{group.id}/schedule"' in page and "Set schedule" in page
    response = client.post(
        f"/jobs/{group.id}/schedule",
        data={
            "kind": "days_of_week",
            "start_date": date.today().isoformat(),
            "time": "03:00",
            "weekdays": ["0", "1"],
            "overlap_policy": "skip",
            "misfire_policy": "run_once",
            "misfire_grace_minutes": "60",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert response.headers["Location"].endswith(f"/groups/{group.id}/edit/4")
    page = client.get(f"/groups/{group.id}/edit/4").get_data(as_text=True)
    assert "every Monday and Tuesday at 3:00 AM" in page


# ------------------------------------------------------------------ runs and their steps


def test_group_page_shows_each_run_with_its_step_timeline(app, client, auth, users, jobs):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id], never_expires=True)
    run = start_run(group, users["user"])
    work(app)
    db.session.expire_all()
    run = db.session.get(Run, run.id)
    assert run.state.value == "completed"
    auth.login(users["user"].email)
    page = client.get(f"/groups/{group.id}").get_data(as_text=True)
    assert f'href="/runs/{run.id}"' in page and 'aria-label="Group run #1"' in page
    timeline = page.split('aria-label="Steps of run #1"', 1)[1].split("</ol>", 1)[0]
    items = re.findall(r"<li class=\"timeline-step[^\"]*\">(.*?)</li>", timeline, re.S)
    assert len(items) == 2
    for item, name in zip(items, ["Alpha export", "Beta export"], strict=True):
        assert name in item and ">Completed<" in item
        assert re.search(r'<span class="small muted">\d+ s</span>', item)  # its duration
    run_page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert 'aria-label="Steps of run #1"' in run_page
    step = db.session.execute(db.select(Run).where(Run.parent_run_id == run.id, Run.step == 2)).scalar_one()
    step_page = client.get(f"/runs/{step.id}").get_data(as_text=True)
    assert "Step 2 of group “Nightly chain” run #1" in step_page
    assert f'href="/runs/{run.id}"' in step_page


def test_steps_never_started_show_not_started(app, client, auth, users, jobs):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id])
    run = start_run(group, users["user"])  # not worked: step 1 queued, step 2 not started
    auth.login(users["user"].email)
    page = client.get(f"/groups/{group.id}").get_data(as_text=True)
    timeline = page.split(f'aria-label="Steps of run #{run.number}"', 1)[1].split("</ol>")[0]
    assert "Alpha export" in timeline and "Beta export" in timeline
    assert "not started" in timeline.split("Beta export", 1)[1]


def test_a_step_whose_job_was_deleted_shows_failed_with_the_reason(app, client, auth, users, jobs):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id])
    jobs["b"].active = False  # deleted before deleting a job a group uses was refused
    db.session.commit()
    run = start_run(group, users["user"])  # fails at once: step 2's job was deleted
    db.session.expire_all()
    assert db.session.get(Run, run.id).state.value == "failed"
    auth.login(users["user"].email)
    reason = "Step 2&#39;s job “Beta export” was deleted: remove it from the group"
    for url in (f"/groups/{group.id}", f"/runs/{run.id}"):
        page = client.get(url).get_data(as_text=True)
        timeline = page.split(f'aria-label="Steps of run #{run.number}"', 1)[1].split("</ol>")[0]
        step_two = timeline.split("Beta export", 1)[1]
        assert "not started" not in timeline, url
        assert '<li class="timeline-step state-failed">' in timeline
        assert ">Failed<" in step_two and reason in step_two, url


def test_a_step_whose_job_is_deleted_since_the_run_shows_failed_once_the_run_ended(
    app, client, auth, users, jobs
):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id])
    run = start_run(group, users["user"])
    step_one = db.session.execute(db.select(Run).where(Run.parent_run_id == run.id)).scalar_one()
    step_one.state = db.session.get(Run, run.id).state = RunState.FAILED  # step 2 never ran
    jobs["b"].active = False
    db.session.commit()
    auth.login(users["user"].email)
    page = client.get(f"/groups/{group.id}").get_data(as_text=True)
    step_two = page.split(f'aria-label="Steps of run #{run.number}"', 1)[1].split("</ol>")[0]
    step_two = step_two.split("Beta export", 1)[1]
    assert ">Failed<" in step_two and "The job “Beta export” was deleted." in step_two


def test_monitor_names_the_group_of_a_step_run(app, client, auth, users, jobs):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id])
    start_run(group, users["user"])
    work(app)
    auth.login(users["user"].email)
    page = client.get("/").get_data(as_text=True)
    rows = re.findall(r'<tr id="run-\d+".*?</tr>', page, re.S)
    step_rows = [r for r in rows if "Alpha export" in r or "Beta export" in r]
    assert len(step_rows) == 2
    assert all("in group “Nightly chain”" in r for r in step_rows)
    assert not any("in group" in r for r in rows if r not in step_rows)


# ---------------------------------------------------------------------------- permissions

GROUP_ROUTES = [
    ("GET", "/groups/{id}"),
    ("GET", "/groups/{id}/edit/1"),
    ("POST", "/groups/{id}/edit/1"),
    ("GET", "/groups/{id}/edit/2"),
    ("POST", "/groups/{id}/edit/2"),
    ("GET", "/groups/{id}/edit/3"),
    ("POST", "/groups/{id}/edit/3"),
    ("GET", "/groups/{id}/edit/4"),
    ("POST", "/groups/{id}/edit/4"),
    ("POST", "/groups/{id}/run"),
    ("POST", "/groups/{id}/deactivate"),
    ("POST", "/groups/{id}/delete"),
]


@pytest.mark.parametrize("method,route", GROUP_ROUTES)
def test_another_users_group_is_404(client, auth, users, jobs, method, route):
    group = _group(users["other"], "Their secret chain", activated=True, never_expires=True)
    auth.login(users["user"].email)
    response = client.open(route.format(id=group.id), method=method, data={"nav": "save"})
    assert response.status_code == 404
    assert "Their secret chain" not in response.get_data(as_text=True)
    assert db.session.get(Job, group.id) is not None and _definition(group.id).activated


@pytest.mark.parametrize("method,route", GROUP_ROUTES)
def test_super_admin_may_act_on_any_group(client, auth, users, method, route):
    group = _group(users["other"], "Their chain", never_expires=True)
    auth.login(users["super_admin"].email)
    response = client.open(route.format(id=group.id), method=method, data={"nav": "save"})
    assert response.status_code != 404 and response.status_code < 500


def test_a_plain_job_is_not_a_group(client, auth, users, jobs):
    auth.login(users["user"].email)
    assert client.get(f"/groups/{jobs['a'].id}").status_code == 404
    assert client.get(f"/groups/{jobs['a'].id}/edit/9").status_code == 404


def test_group_run_page_offers_the_actions_of_its_state(app, client, auth, users, jobs, tmp_path):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id])
    run = start_run(group, users["user"])
    auth.login(users["user"].email)
    page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert ">Pause</button>" in page and ">Stop</button>" in page and "Retry" not in page
    client.post(f"/runs/{run.id}/pause")
    work(app)
    db.session.expire_all()
    assert db.session.get(Run, run.id).state.value == "paused"
    page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert ">Resume</button>" in page and ">Stop</button>" in page
    assert ">Pause</button>" not in page and "Cancel run" not in page
    steps = page.split('aria-label="Steps of run #1"', 1)[1].split("</ol>", 1)[0]
    assert ">Completed<" in steps.split("Beta export")[0] and "not started" in steps

    broken = import_job(users["user"], tmp_path / "missing.csv", ["email"], name="Broken")
    failing = _group(users["user"], "Failing chain", steps=[broken.id, jobs["c"].id])
    failed_run = start_run(failing, users["user"])
    work(app)
    db.session.expire_all()
    assert db.session.get(Run, failed_run.id).state.value == "failed"
    page = client.get(f"/runs/{failed_run.id}").get_data(as_text=True)
    assert ">Retry from the failed step</button>" in page
    steps = page.split('aria-label="Steps of run #1"', 1)[1].split("</ol>", 1)[0]
    assert ">Failed<" in steps.split("Gamma export")[0] and ">Skipped<" in steps


@pytest.mark.parametrize(
    "step,data",
    [
        (1, {"steps": ["abc", "-1"], "op": "up:zz"}),
        (1, {"op": "nonsense"}),
        (2, {"campaign_ids": ["abc"], "nav": "save"}),
        (3, {"notify_success": "@@,,;", "nav": "x"}),
        (4, {"expires_on": "2020-99-99", "nav": "activate"}),
        (4, {"nav": "???"}),
    ],
)
def test_bad_input_never_fails(client, auth, users, step, data):
    group = _group(users["user"])
    auth.login(users["user"].email)
    response = client.post(f"/groups/{group.id}/edit/{step}", data=data)
    assert response.status_code in (200, 302, 400)
    assert _definition(group.id).activated is False
