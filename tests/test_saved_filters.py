"""Saved filters are edited and deleted from their page: a filter a campaign still needs is not
deleted (the page says which), and a Supporter Delete keeps the conditions it was made with."""

from __future__ import annotations

from tests.conftest import fresh, work
from tests.test_email_campaign import campaign_for
from tests.test_supporter_delete import confirm, emails_stored, job_id_of, saved_filter
from webapp.extensions import db
from webapp.models import AuditEntry, Run, SavedFilter, Supporter
from webapp.models.campaigns import CampaignStatus
from webapp.rules.states import RunState


def again(obj):
    """Re-read a row after a request changed it (None once deleted)."""
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


EMPTY_ROWS = {
    **{f"conditions-{n}-{part}": "" for n in (1, 2) for part in ("field", "value")},
    **{f"conditions-{n}-op": "equals" for n in (1, 2)},
}


def edit(client, saved, city, name="Renamed"):
    return client.post(
        f"/campaigns/filters/{saved.id}/edit",
        data={
            "name": name,
            "conditions-0-field": "city",
            "conditions-0-op": "equals",
            "conditions-0-value": city,
            **EMPTY_ROWS,
        },
    )


def test_a_filter_is_edited_from_its_page_prefilled_and_audited(app, client, auth, users):
    saved = saved_filter(users["user"])
    auth.login(users["user"].email)
    listing = client.get("/campaigns/filters").get_data(as_text=True)
    assert f'href="/campaigns/filters/{saved.id}/edit"' in listing and "Delete filter In Boston" in listing
    page = client.get(f"/campaigns/filters/{saved.id}/edit").get_data(as_text=True)
    assert 'value="In Boston"' in page and 'value="Boston"' in page
    assert '<option selected value="city">' in page
    response = edit(client, saved, "Salem")
    assert response.status_code == 302 and response.location.endswith("/campaigns/filters")
    saved = again(saved)
    assert saved.name == "Renamed"
    assert saved.rule == {"conditions": [{"field": "city", "op": "equals", "value": "Salem"}]}
    assert AuditEntry.query.filter_by(action="filter.edited").one().owner_id == users["user"].id


def test_an_edit_that_makes_no_sense_is_refused_and_changes_nothing(app, client, auth, users):
    saved = saved_filter(users["user"])
    auth.login(users["user"].email)
    response = client.post(
        f"/campaigns/filters/{saved.id}/edit",
        data={"name": "", "conditions-0-field": "city", "conditions-0-op": "equals", **EMPTY_ROWS},
    )
    assert response.status_code == 200 and 'aria-invalid="true"' in response.get_data(as_text=True)
    assert again(saved).name == "In Boston"


def test_a_filter_a_draft_campaign_uses_is_not_deleted_and_the_page_says_which(app, client, auth, users):
    saved = saved_filter(users["user"])
    campaign_for(users["user"], name="Boston appeal", audience="filter", filter_id=saved.id)
    auth.login(users["user"].email)
    page = client.post(f"/campaigns/filters/{saved.id}/delete", follow_redirects=True).get_data(as_text=True)
    assert "“In Boston” was not deleted: it is the audience of “Boston appeal”." in page
    assert db.session.get(SavedFilter, saved.id) is not None
    assert "Boston appeal" in client.get(f"/campaigns/filters/{saved.id}/edit").get_data(as_text=True)


def test_a_filter_only_sent_campaigns_used_is_deleted(app, client, auth, users):
    saved, unused = saved_filter(users["user"]), saved_filter(users["user"], city="Salem")
    campaign = campaign_for(users["user"], name="Sent", audience="filter", filter_id=saved.id)
    run = Run(
        job_id=campaign.job_id,
        owner_id=users["user"].id,
        job_type="email_campaign",
        job_name="Sent",
        number=1,
        state=RunState.COMPLETED,
    )
    db.session.add(run)
    db.session.flush()
    campaign.status, campaign.launch_run_id = CampaignStatus.LAUNCHED, run.id
    db.session.commit()
    auth.login(users["user"].email)
    for gone in (saved, unused):
        response = client.post(f"/campaigns/filters/{gone.id}/delete", follow_redirects=True)
        assert f"Filter “{gone.name}” deleted." in response.get_data(as_text=True)
    assert SavedFilter.query.count() == 0
    assert again(campaign).filter_id is None
    assert AuditEntry.query.filter_by(action="filter.deleted").count() == 2


def test_another_users_filter_is_a_404_to_edit_or_delete(app, client, auth, users):
    saved = saved_filter(users["other"])
    auth.login(users["user"].email)
    assert client.get(f"/campaigns/filters/{saved.id}/edit").status_code == 404
    assert edit(client, saved, "Salem").status_code == 404
    assert client.post(f"/campaigns/filters/{saved.id}/delete").status_code == 404
    assert again(saved).name == "In Boston"


def test_a_supporter_delete_keeps_the_conditions_it_was_confirmed_with(app, client, auth, users):
    db.session.add_all(
        [Supporter(email=f"b{i}@example.org", city="Boston") for i in range(3)]
        + [Supporter(email=f"s{i}@example.org", city="Salem") for i in range(4)]
    )
    db.session.commit()
    saved = saved_filter(users["admin"])
    auth.login(users["admin"].email)
    job_id = job_id_of(
        client.post(
            "/supporter-deletes/new", data={"name": "Boston", "source": "filter", "filter_id": saved.id}
        )
    )
    assert edit(client, saved, "Salem").status_code == 302  # after the delete was made
    assert "3 supporters" in client.get(f"/supporter-deletes/{job_id}").get_data(as_text=True)
    confirm(client, job_id, "3")
    client.post(f"/campaigns/filters/{saved.id}/delete")  # gone before the run: no matter
    assert db.session.get(SavedFilter, saved.id) is None
    work(app)
    run = fresh(Run.query.filter_by(job_id=job_id).one())
    assert run.state is RunState.COMPLETED and run.updated == 3
    assert emails_stored() == {f"s{i}@example.org" for i in range(4)}


def test_a_campaign_form_naming_a_filter_deleted_meanwhile_is_refused_with_what_was_typed(
    app, client, auth, users
):
    from tests.test_resent_forms import CAMPAIGN

    saved = saved_filter(users["user"])
    auth.login(users["user"].email)
    db.session.delete(saved)  # in another tab, while this form was open
    db.session.commit()
    answer = client.post("/campaigns/new", data={**CAMPAIGN, "audience": "filter", "filter_id": saved.id})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "The saved filter chosen is not one of the saved filters now" in html
    assert 'value="Spring appeal"' in html  # what was typed is kept
