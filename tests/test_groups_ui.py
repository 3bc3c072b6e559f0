"""The groups screens: list, Create Group, the four-step wizard, a group's page and its runs,
the group run's page, the monitor's group names, permissions."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import pytest

from tests.conftest import export_job
from webapp.extensions import db
from webapp.jobtypes.job_group import GroupDefinition
from webapp.models import Job
from webapp.models.schedules import JobSchedule


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
    response = client.post("/groups/new", data={"name": "Nightly chain",
                                                "description": "Imports then exports"})
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
    active = _group(users["user"], "Weekly chain", [jobs["a"].id, jobs["b"].id],
                    activated=True, expires_on=soon)
    _group(users["user"], "Draft chain", never_expires=True)
    _group(users["other"], "Someone else's chain")
    next_at = date.today() + timedelta(days=2)
    db.session.add(JobSchedule(job_id=active.id, kind="once", start_date=next_at, enabled=True,
                               next_run_at=datetime.combine(next_at, time(15, 30))))
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


def test_step_one_add_move_remove_then_save(client, auth, users, jobs):
    group = _group(users["user"])
    auth.login(users["user"].email)
    url = f"/groups/{group.id}/edit/1"
    page = client.get(url).get_data(as_text=True)
    assert 'aria-current="step"' in page and "Step 1: Jobs" in page
    assert _jobs_list(page) == ["Alpha export", "Beta export", "Gamma export"]  # not theirs
    assert _group_list(page) == []
    a, b, c = jobs["a"].id, jobs["b"].id, jobs["c"].id

    page = client.post(url, data={"op": f"add:{a}"}).get_data(as_text=True)
    assert _group_list(page) == ["Alpha export"]
    assert 'aria-label="Add Alpha export"' not in page
    assert 'aria-label="Remove Alpha export"' in page
    page = client.post(url, data={"steps": [a], "op": f"add:{b}"}).get_data(as_text=True)
    page = client.post(url, data={"steps": [a, b], "op": f"add:{c}"}).get_data(as_text=True)
    assert _group_list(page) == ["Alpha export", "Beta export", "Gamma export"]
    assert _jobs_list(page) == []
    page = client.post(url, data={"steps": [a, b, c], "op": f"up:{c}"}).get_data(as_text=True)
    assert _group_list(page) == ["Alpha export", "Gamma export", "Beta export"]
    page = client.post(url, data={"steps": [a, c, b], "op": f"down:{a}"}).get_data(as_text=True)
    assert _group_list(page) == ["Gamma export", "Alpha export", "Beta export"]
    assert 'aria-label="Move Gamma export up"' in page
    page = client.post(url, data={"steps": [c, a, b], "op": f"remove:{a}"}).get_data(as_text=True)
    assert _group_list(page) == ["Gamma export", "Beta export"]
    assert _jobs_list(page) == ["Alpha export"]
    assert "Not saved yet" in page
    assert _definition(group.id).steps == []  # the buttons change the list, Save keeps it

    response = client.post(url, data={"steps": [c, b], "nav": "next"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/edit/2")
    assert _definition(group.id).steps == [c, b]


def test_step_one_refuses_jobs_of_others_and_groups(client, auth, users, jobs):
    group = _group(users["user"])
    other_group = _group(users["user"], "Another chain")
    auth.login(users["user"].email)
    url = f"/groups/{group.id}/edit/1"
    page = client.post(url, data={"op": f"add:{jobs['theirs'].id}"}).get_data(as_text=True)
    assert _group_list(page) == []
    client.post(url, data={"steps": [jobs["a"].id, jobs["theirs"].id, other_group.id,
                                     jobs["b"].id, "x"], "nav": "save"})
    assert _definition(group.id).steps == [jobs["a"].id, jobs["b"].id]


def test_step_one_drag_and_drop_order_is_kept(client, auth, users, jobs):
    group = _group(users["user"], steps=[jobs["a"].id, jobs["b"].id])
    auth.login(users["user"].email)
    page = client.post(f"/groups/{group.id}/edit/1",
                       data={"steps": [jobs["b"].id, jobs["c"].id, jobs["a"].id], "op": "order"},
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    assert page.lstrip().startswith('<section id="wizard"')  # only the wizard region
    assert _group_list(page) == ["Beta export", "Gamma export", "Alpha export"]


def test_step_one_fewer_than_two_jobs_is_refused_but_saved(client, auth, users, jobs):
    group = _group(users["user"])
    auth.login(users["user"].email)
    response = client.post(f"/groups/{group.id}/edit/1",
                           data={"steps": [jobs["a"].id], "nav": "next"})
    assert response.status_code == 400
    assert "A group needs at least 2 jobs." in response.get_data(as_text=True)
    assert _definition(group.id).steps == [jobs["a"].id]
