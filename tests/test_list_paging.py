"""Lists a page at a time (the product's "tables paginate"): campaigns, saved filters, API
tokens, users, supporter deletes, a campaign's sends; History by job; the filter form's
condition errors; the super admin's Dismiss all finished warning."""

from __future__ import annotations

import re

import pytest

from tests.conftest import export_job
from webapp.api import tokens
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.models.campaigns import Campaign, SavedFilter
from webapp.models.jobs import Job
from webapp.models.users import User
from webapp.rules.states import RunState


def follow(client, html: str, label: str) -> str:
    """The page behind the pager link `label` ("Older →" or "← Newer")."""
    href = re.search(rf'<a href="([^"]*)">{re.escape(label)}</a>', html)
    assert href, f"no {label} link"
    return client.get(href.group(1).replace("&amp;", "&")).get_data(as_text=True)


def campaign(owner: User, name: str, job_id: int | None = None) -> Campaign:
    found = Campaign(
        owner_id=owner.id, name=name, from_address="a@example.org", subject="Hi", text_body="x", job_id=job_id
    )
    db.session.add(found)
    db.session.commit()
    return found


def make_campaigns(users) -> None:
    for n in range(1, 4):
        campaign(users["user"], f"Appeal {n}")
    campaign(users["other"], "Not yours")


def make_filters(users) -> None:
    for n in range(1, 4):
        db.session.add(SavedFilter(owner_id=users["user"].id, name=f"Segment {n}", rule={"conditions": []}))
    db.session.add(SavedFilter(owner_id=users["other"].id, name="Theirs", rule={"conditions": []}))
    db.session.commit()


def make_tokens(users) -> None:
    for n in range(1, 4):
        tokens.issue(users["user"], f"Key {n}", read_only=True, expires_at=None)
    tokens.issue(users["other"], "Key other", read_only=True, expires_at=None)
    db.session.commit()


def make_deletes(users) -> None:
    for n in range(1, 4):
        db.session.add(
            Job(owner_id=users["user"].id, job_type="supporter_delete", name=f"Erase {n}", params={})
        )
    db.session.add(
        Job(owner_id=users["other"].id, job_type="supporter_delete", name="Erase other", params={})
    )
    db.session.commit()


LISTS = {
    "campaigns": ("/campaigns/", make_campaigns, ["Appeal 3", "Appeal 2"], ["Appeal 1"], "Not yours"),
    "saved filters": (
        "/campaigns/filters",
        make_filters,
        ["Segment 3", "Segment 2"],
        ["Segment 1"],
        "Segment other",
    ),
    "API tokens": ("/account/api-tokens/", make_tokens, ["Key 3", "Key 2"], ["Key 1"], "Key other"),
    "supporter deletes": (
        "/supporter-deletes/",
        make_deletes,
        ["Erase 3", "Erase 2"],
        ["Erase 1"],
        "Erase other",
    ),
}


@pytest.mark.parametrize("name", LISTS)
def test_a_list_shows_a_page_of_the_users_own_rows_and_links_to_the_older_ones(
    app, client, auth, users, name
):
    path, make, first, second, foreign = LISTS[name]
    app.config["PAGE_SIZE"] = 2
    make(users)
    auth.login("user@example.org")
    top = client.get(path).get_data(as_text=True)
    assert all(item in top for item in first) and second[0] not in top and foreign not in top
    assert "← Newer" not in top
    older = follow(client, top, "Older →")
    assert second[0] in older and first[0] not in older and foreign not in older
    assert "Older →" not in older
    back = follow(client, older, "← Newer")
    assert all(item in back for item in first) and second[0] not in back


def test_the_users_page_pages_every_user_newest_first(app, client, auth, users):
    app.config["PAGE_SIZE"] = 3
    auth.login("super@example.org")
    top = client.get("/admin/users").get_data(as_text=True)
    cell = "<td>{}@example.org</td>".format
    assert cell("super") in top and cell("other") in top and cell("user") not in top
    older = follow(client, top, "Older →")
    assert cell("user") in older and cell("super") not in older


def test_a_campaigns_sends_page_and_link_to_its_runs_in_history(app, client, auth, users):
    app.config["PAGE_SIZE"] = 2
    job = export_job(users["user"], name="Appeal sends")
    runs = [start_run(job, users["user"]) for _ in range(3)]
    found = campaign(users["user"], "Appeal", job_id=job.id)
    auth.login("user@example.org")
    top = client.get(f"/campaigns/{found.id}").get_data(as_text=True)
    numbers = re.findall(r'href="/runs/(\d+)"', top)
    assert numbers == [str(runs[2].id), str(runs[1].id)]
    older = follow(client, top, "Older sends →")
    assert re.findall(r'href="/runs/(\d+)"', older) == [str(runs[0].id)]
    assert f'href="/history?job={job.id}"' in top


def test_history_filtered_by_a_job_lists_only_its_runs(app, client, auth, users):
    wanted, other = (
        export_job(users["user"], name="Wanted export"),
        export_job(users["user"], name="Other export"),
    )
    for _ in range(2):
        start_run(wanted, users["user"])
    start_run(other, users["user"])
    auth.login("user@example.org")
    html = client.get(f"/history?job={wanted.id}").get_data(as_text=True)
    assert html.count("Wanted export") >= 2 and "Other export" not in html.replace("Runs of the job", "")
    assert html.count('small">run #') == 2
    assert f'name="job" value="{wanted.id}"' in html  # the filter form keeps it


def test_history_of_another_users_job_is_a_404_but_a_super_admin_may_filter_by_any(app, client, auth, users):
    theirs = export_job(users["other"], name="Their export")
    start_run(theirs, users["other"])
    auth.login("user@example.org")
    assert client.get(f"/history?job={theirs.id}").status_code == 404
    assert client.get("/history?job=999999").status_code == 404
    auth.logout()
    auth.login("super@example.org")
    html = client.get(f"/history?job={theirs.id}").get_data(as_text=True)
    assert html.count('small">run #') == 1 and "Their export" in html


def test_the_job_page_links_to_all_its_runs_in_history_with_their_count(app, client, auth, users):
    job = export_job(users["user"], name="Nightly export")
    for _ in range(3):
        start_run(job, users["user"])
    start_run(export_job(users["user"], name="Another"), users["user"])
    auth.login("user@example.org")
    html = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert f'<a href="/history?job={job.id}">All 3 runs in History</a>' in html


def test_a_too_long_condition_value_says_so_and_saves_nothing(app, client, auth, users):
    auth.login("user@example.org")
    response = client.post(
        "/campaigns/filters",
        data={
            "name": "Long one",
            "conditions-0-field": "email",
            "conditions-0-op": "contains",
            "conditions-0-value": "x" * 300,
        },
    )
    html = response.get_data(as_text=True)
    assert "Condition 1 value: A value can be at most 200 characters." in html
    assert 'aria-invalid="true"' in html and 'maxlength="200"' in html
    assert db.session.query(SavedFilter).count() == 0


def test_a_super_admins_dismiss_all_warns_it_clears_other_users_monitors(app, client, auth, users):
    for who in ("user", "super_admin"):
        start_run(export_job(users[who], name=f"{who} export"), users[who]).state = RunState.COMPLETED
    db.session.commit()
    auth.login("super@example.org")
    assert "clears their finished runs from their own monitors" in client.get("/").get_data(as_text=True)
    auth.logout()
    auth.login("user@example.org")
    plain = client.get("/").get_data(as_text=True)
    assert "Dismiss every finished run shown here from the monitor?" in plain
    assert "other users" not in plain


def test_the_jobs_list_pages_by_name(app, client, auth, users):
    app.config["PAGE_SIZE"] = 2
    for name in ("Cherry export", "Apple export", "Banana export"):
        export_job(users["user"], name=name)
    export_job(users["other"], name="Aardvark export")  # another user's: never listed
    auth.login("user@example.org")
    top = client.get("/jobs/").get_data(as_text=True)
    assert "Apple export" in top and "Banana export" in top and "Cherry export" not in top
    assert "Aardvark" not in top and "← Previous" not in top
    rest = follow(client, top, "Next →")
    assert "Cherry export" in rest and "Apple export" not in rest and "Next →" not in rest
