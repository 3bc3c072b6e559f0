"""A form that creates or starts something, sent again moments later (a browser's Resend, a
retried request, a click before the page's script loaded): the second sending answers what the
first made, on the server, rather than making a twin."""

from __future__ import annotations

import re

from tests.conftest import export_job
from tests.test_chains import group_of
from webapp.extensions import db
from webapp.models import Job, Run
from webapp.models.campaigns import Campaign, CampaignStatus, SavedFilter


def once_token(client, page: str) -> str:
    """The token of the first form on `page` that carries one (each rendering its own)."""
    return re.search(r'name="once" value="([^"]+)"', client.get(page).get_data(as_text=True)).group(1)


def test_run_now_sent_twice_starts_one_run_and_a_new_click_another(app, client, auth, users):
    job = export_job(users["user"], name="Donors")
    auth.login(users["user"].email)
    token = once_token(client, f"/jobs/{job.id}")
    first = client.post(f"/jobs/{job.id}/run", data={"once": token})
    again = client.post(f"/jobs/{job.id}/run", data={"once": token}, follow_redirects=True)
    (run,) = Run.query.filter_by(job_id=job.id).all()
    assert first.location.endswith(f"/runs/{run.id}")
    assert again.request.path == f"/runs/{run.id}"
    assert "That Run now was sent twice: it started one run." in again.get_data(as_text=True)
    # the page shown again has a new token: a new click is a new run (it waits its turn)
    client.post(f"/jobs/{job.id}/run", data={"once": once_token(client, f"/jobs/{job.id}")})
    assert Run.query.filter_by(job_id=job.id).count() == 2
    client.post(f"/jobs/{job.id}/run")  # a script sending no token: taken at its word
    assert Run.query.filter_by(job_id=job.id).count() == 3


def test_another_users_token_is_no_resend_of_mine(app, client, auth, users):
    job = export_job(users["user"], name="Donors")
    auth.login(users["super_admin"].email)
    token = once_token(client, f"/jobs/{job.id}")
    client.post(f"/jobs/{job.id}/run", data={"once": token})
    auth.logout()
    auth.login(users["user"].email)
    client.post(f"/jobs/{job.id}/run", data={"once": token})
    assert Run.query.filter_by(job_id=job.id).count() == 2


def test_a_new_job_form_sent_twice_makes_one_job_and_one_run(client, auth, users):
    auth.login(users["user"].email)
    form = {"name": "Recent", "fields": ["email"], "filter": "all", "action": "save_run"}
    first = client.post("/jobs/new/export", data=form)
    again = client.post("/jobs/new/export", data=form)
    (job,) = Job.query.filter_by(name="Recent").all()
    (run,) = Run.query.filter_by(job_id=job.id).all()
    assert first.location == again.location and again.location.endswith(f"/runs/{run.id}")
    other = client.post("/jobs/new/export", data={**form, "fields": ["email", "zip"]})  # another job
    assert other.status_code == 302 and Job.query.filter_by(name="Recent").count() == 2


def test_create_group_and_group_run_now_sent_twice_make_one_each(client, auth, users):
    auth.login(users["user"].email)
    form = {"name": "Nightly chain", "description": "Imports then exports"}
    first, again = client.post("/groups/new", data=form), client.post("/groups/new", data=form)
    assert first.location == again.location
    assert db.session.execute(db.select(Job).filter_by(job_type="job_group")).scalars().all()[0].name == (
        "Nightly chain"
    )
    assert Job.query.filter_by(job_type="job_group").count() == 1
    group = group_of(
        users["user"],
        [export_job(users["user"], name="A"), export_job(users["user"], name="B")],
        name="Chain",
    )
    token = once_token(client, f"/groups/{group.id}")
    client.post(f"/groups/{group.id}/run", data={"once": token})
    client.post(f"/groups/{group.id}/run", data={"once": token})
    assert Run.query.filter_by(job_id=group.id).count() == 1


def test_an_import_mapping_sent_again_leads_to_the_job_and_run_it_made(app, client, auth, users):
    from tests.test_data_files import new_upload

    auth.login(users["user"].email)
    token = new_upload(client)
    form = {"name": "Mapped", "col_0": "email", "col_1": "zip", "action": "save_run"}
    first = client.post(f"/jobs/new/import/{token}", data=form)
    again = client.post(f"/jobs/new/import/{token}", data=form)  # the upload's record is gone now
    (job,) = Job.query.filter_by(name="Mapped").all()
    (run,) = Run.query.filter_by(job_id=job.id).all()
    assert first.location == again.location == f"/runs/{run.id}"
    back = client.get(f"/jobs/new/import/{token}")  # Back to the mapping page
    assert back.status_code == 302 and back.location == f"/jobs/{job.id}"
    auth.logout()
    auth.login(users["other"].email)
    assert client.get(f"/jobs/new/import/{token}").status_code == 404  # not theirs


CAMPAIGN = {
    "name": "Spring appeal",
    "from_address": "news@park.example",
    "subject": "Spring",
    "text_body": "Hello",
    "audience": "opted_in",
}


def test_a_new_campaign_sent_twice_saves_one_draft(client, auth, users):
    auth.login(users["user"].email)
    token = once_token(client, "/campaigns/new")
    first = client.post("/campaigns/new", data={**CAMPAIGN, "once": token})
    again = client.post("/campaigns/new", data={**CAMPAIGN, "once": token}, follow_redirects=True)
    (campaign,) = Campaign.query.all()
    assert first.location == again.request.path == f"/campaigns/{campaign.id}"
    assert "The form was sent twice: it saved one campaign." in again.get_data(as_text=True)
    # a refused sending (launch time past) claims nothing: the same token saves once corrected
    token = once_token(client, "/campaigns/new")
    refused = client.post("/campaigns/new", data={**CAMPAIGN, "launch_at": "2001-01-01T09:00", "once": token})
    assert refused.status_code == 200 and Campaign.query.count() == 1
    assert client.post("/campaigns/new", data={**CAMPAIGN, "once": token}).status_code == 302
    assert Campaign.query.count() == 2


def test_copy_sent_twice_makes_one_draft(client, auth, users):
    auth.login(users["user"].email)
    client.post("/campaigns/new", data=CAMPAIGN)
    (original,) = Campaign.query.all()
    original.status = CampaignStatus.STOPPED  # (a draft is edited, not copied)
    db.session.commit()
    token = once_token(client, f"/campaigns/{original.id}")
    first = client.post(f"/campaigns/{original.id}/copy", data={"once": token})
    again = client.post(f"/campaigns/{original.id}/copy", data={"once": token})
    assert Campaign.query.count() == 2 and first.location == again.location


def test_a_new_saved_filter_sent_twice_saves_one(client, auth, users):
    auth.login(users["user"].email)
    token = once_token(client, "/campaigns/filters")
    form = {
        "name": "Boston",
        "conditions-0-field": "city",
        "conditions-0-op": "equals",
        "conditions-0-value": "Boston",
        **{f"conditions-{n}-{part}": "" for n in (1, 2) for part in ("field", "value")},
        **{f"conditions-{n}-op": "equals" for n in (1, 2)},
        "once": token,
    }
    assert client.post("/campaigns/filters", data=form).status_code == 302
    again = client.post("/campaigns/filters", data=form, follow_redirects=True)
    assert SavedFilter.query.count() == 1
    assert "The form was sent twice: it saved one filter." in again.get_data(as_text=True)


def test_a_new_supporter_delete_sent_twice_makes_one(client, auth, users):
    from tests.test_supporter_delete import saved_filter

    auth.login(users["user"].email)
    chosen = saved_filter(users["user"])
    form = {"name": "Requests", "source": "filter", "filter_id": chosen.id}
    token = once_token(client, "/supporter-deletes/new")
    first = client.post("/supporter-deletes/new", data={**form, "once": token})
    again = client.post("/supporter-deletes/new", data={**form, "once": token})
    (job,) = Job.query.filter_by(job_type="supporter_delete").all()
    assert first.location == again.location == f"/supporter-deletes/{job.id}"
