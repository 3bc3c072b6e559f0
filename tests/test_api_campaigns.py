"""Campaigns through the API: listed and read as their owner sees them (another user's is a 404),
previewed, launched only with a confirmation after the audience size, launched once however often
it is asked, and a scheduled launch cancelled."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest

from tests.conftest import free_port, work
from tests.test_api_tokens import api, make_token
from tests.test_email_campaign import campaign_for, supporters
from webapp.api.v1.campaigns import CampaignDetail, CampaignList, LaunchOut, PreviewOut
from webapp.engine import launches, queueing
from webapp.extensions import db
from webapp.models import AuditEntry, Campaign, CampaignStatus, Run, Suppression
from webapp.models.base import utcnow
from webapp.rules.states import RunState


def status_of(campaign: Campaign) -> CampaignStatus:
    return db.session.get(Campaign, campaign.id, populate_existing=True).status


@pytest.fixture
def audience(app):
    """Four opted-in supporters (one on the suppression list) and one not opted in."""
    supporters(4)
    supporters(1, opted_in=False, start=4)
    db.session.add(Suppression(email="s0@example.org", reason="unsubscribed"))
    db.session.commit()


def test_campaigns_are_listed_and_read_as_their_owner_sees_them(client, auth, users):
    own = campaign_for(users["user"], name="Spring appeal")
    theirs = campaign_for(users["other"], name="Secret campaign of other")
    secret = make_token(client, auth, "user@example.org", access="write")
    listed = api(client, "/api/v1/campaigns", secret)
    assert [found.name for found in CampaignList.model_validate(listed.json).campaigns] == ["Spring appeal"]
    read = api(client, f"/api/v1/campaigns/{own.id}", secret)
    assert read.status_code == 200
    detail = CampaignDetail.model_validate(read.json)
    assert (detail.status, detail.audience, detail.sends) == ("draft", "opted_in", [])
    assert detail.subject == "Hello {{ first_name }}" and detail.owner == "user@example.org"
    for path in ("", "/preview", "/launch", "/cancel"):
        method = "POST" if path in ("/launch", "/cancel") else "GET"
        hidden = api(client, f"/api/v1/campaigns/{theirs.id}{path}", secret, method=method, json={})
        assert hidden.status_code == 404, path
        assert "Secret" not in hidden.get_data(as_text=True)
    boss = make_token(client, auth, "super@example.org")
    assert len(api(client, "/api/v1/campaigns", boss).json["campaigns"]) == 2
    assert api(client, f"/api/v1/campaigns/{theirs.id}", boss).status_code == 200


def test_the_preview_renders_for_a_chosen_supporter_or_the_first(client, auth, users, audience):
    campaign = campaign_for(users["user"])
    secret = make_token(client, auth, "user@example.org")
    chosen = api(client, f"/api/v1/campaigns/{campaign.id}/preview?email=S2@example.org", secret)
    assert chosen.status_code == 200
    shown = PreviewOut.model_validate(chosen.json)
    assert shown.supporter == "s2@example.org" and shown.subject == "Hello S2"
    assert "Dear S2" in shown.text and "Dear S2" in shown.html and shown.to == "s2@example.org"
    first = api(client, f"/api/v1/campaigns/{campaign.id}/preview", secret).json
    assert first["supporter"] == "s0@example.org"
    missing = api(client, f"/api/v1/campaigns/{campaign.id}/preview?email=nobody@example.org", secret)
    assert missing.status_code == 404 and "nobody@example.org" in missing.json["error"]["message"]
    broken = campaign_for(users["user"], text_body="{% include 'footer.html' %}")
    refused = api(client, f"/api/v1/campaigns/{broken.id}/preview", secret)
    assert refused.status_code == 409 and "include" in refused.json["error"]["message"]


def test_a_launch_without_confirm_answers_the_audience_size_and_sends_nothing(client, auth, users, audience):
    campaign = campaign_for(users["user"])
    secret = make_token(client, auth, "user@example.org", access="write")
    asked = api(client, f"/api/v1/campaigns/{campaign.id}/launch", secret, method="POST", json={})
    assert asked.status_code == 409
    assert asked.json["error"]["code"] == "confirmation_required"
    assert asked.json["error"]["audience"] == {"total": 4, "suppressed": 1, "to_send": 3}
    assert "3 of 4 supporters would be emailed" in asked.json["error"]["message"]
    no = api(
        client, f"/api/v1/campaigns/{campaign.id}/launch", secret, method="POST", json={"confirm": False}
    )
    assert no.status_code == 409 and no.json["error"]["code"] == "confirmation_required"
    for loose in ("yes", "true", 1):  # only JSON's true confirms (a script's "yes" is no answer)
        sloppy = api(
            client, f"/api/v1/campaigns/{campaign.id}/launch", secret, method="POST", json={"confirm": loose}
        )
        assert sloppy.status_code == 422 and "confirm" in sloppy.json["error"]["problems"]
    assert Run.query.count() == 0 and status_of(campaign) is CampaignStatus.DRAFT


def test_a_confirmed_launch_sends_once_however_often_it_is_asked(app, client, auth, users, audience):
    campaign = campaign_for(users["user"])
    secret = make_token(client, auth, "user@example.org", access="write")
    url = f"/api/v1/campaigns/{campaign.id}/launch"
    launched = api(client, url, secret, method="POST", json={"confirm": True})
    assert launched.status_code == 201, launched.json
    answer = LaunchOut.model_validate(launched.json)
    assert answer.audience.to_send == 3 and answer.run.state == "queued"
    assert answer.campaign.status == "launched" and answer.campaign.launch_run_id == answer.run.id
    entry = AuditEntry.query.filter_by(action="campaign.launched").one()
    assert (
        entry.actor_id == users["user"].id
        and entry.detail.startswith("4 supporters")
        and "(API)" in entry.detail
    )
    again = api(client, url, secret, method="POST", json={"confirm": True})
    assert again.status_code == 409 and again.json["error"]["message"] == launches.ALREADY_LAUNCHED
    assert again.json["error"]["launch_run_id"] == answer.run.id
    with pytest.raises(launches.LaunchRefused):  # the page's own guard, underneath both
        launches.launch(campaign.id, users["user"])
    assert Run.query.filter_by(job_id=campaign.job_id).count() == 1


def test_concurrent_confirmed_launches_make_one_send(app, client, auth, users, smtp_sink):
    supporters(5)
    campaign = campaign_for(users["user"])
    secret = make_token(client, auth, "user@example.org", access="write")
    url = f"/api/v1/campaigns/{campaign.id}/launch"
    barrier, statuses = threading.Barrier(6), []

    def attempt():
        barrier.wait()
        statuses.append(
            api(app.test_client(), url, secret, method="POST", json={"confirm": True}).status_code
        )

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert Counter(statuses) == {201: 1, 409: 5}
    assert Run.query.filter_by(job_id=campaign.job_id).count() == 1
    work(app)
    assert sorted(smtp_sink.recipients()) == [f"s{i}@example.org" for i in range(5)]  # each once


def test_a_scheduled_launch_is_cancelled_back_to_a_draft(client, auth, users, audience):
    campaign = campaign_for(users["user"], launch_at=utcnow() + timedelta(days=2))
    secret = make_token(client, auth, "user@example.org", access="write")
    base = f"/api/v1/campaigns/{campaign.id}"
    assert api(client, f"{base}/cancel", secret, method="POST").status_code == 409  # a draft
    asked = api(client, f"{base}/launch", secret, method="POST", json={})
    assert "scheduled for its launch time" in asked.json["error"]["message"]
    scheduled = api(client, f"{base}/launch", secret, method="POST", json={"confirm": True})
    assert scheduled.status_code == 201
    assert (
        scheduled.json["run"]["state"] == "scheduled" and scheduled.json["campaign"]["status"] == "scheduled"
    )
    assert AuditEntry.query.filter_by(action="campaign.scheduled").count() == 1
    cancelled = api(client, f"{base}/cancel", secret, method="POST")
    assert cancelled.status_code == 200, cancelled.json
    assert (
        cancelled.json["campaign"]["status"] == "draft"
        and cancelled.json["campaign"]["launch_run_id"] is None
    )
    assert "cancelled before it started" in cancelled.json["message"]
    run = db.session.get(Run, scheduled.json["run"]["id"], populate_existing=True)
    assert run.state is RunState.CANCELLED and status_of(campaign) is CampaignStatus.DRAFT
    assert "(API)" in AuditEntry.query.filter_by(action="run.cancelled").one().detail
    again = api(client, f"{base}/cancel", secret, method="POST")
    assert again.status_code == 409 and "this campaign is draft" in again.json["error"]["message"]


def test_a_launch_is_refused_with_the_right_status(app, client, auth, users, audience, monkeypatch):
    campaign = campaign_for(users["user"])
    url = f"/api/v1/campaigns/{campaign.id}/launch"
    reader = make_token(client, auth, "user@example.org", name="Reader")
    assert api(client, url, reader, method="POST", json={"confirm": True}).status_code == 403
    secret = make_token(client, auth, "user@example.org", access="write")
    assert api(client, url, secret, method="POST", data="confirm").status_code == 415
    malformed = api(client, url, secret, method="POST", data="{", content_type="application/json")
    assert malformed.status_code == 400
    for body in ({"confirm": "maybe"}, {"confirm": True, "force": True}):
        refused = api(client, url, secret, method="POST", json=body)
        assert refused.status_code == 422 and refused.json["error"]["problems"], body
    lost = campaign_for(users["user"], audience="filter")  # its saved filter is gone
    invalid = api(
        client, f"/api/v1/campaigns/{lost.id}/launch", secret, method="POST", json={"confirm": True}
    )
    assert invalid.status_code == 409 and "saved filter no longer exists" in invalid.json["error"]["message"]
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # the queue is unreachable
    app.extensions.pop("conveyor_redis", None)
    monkeypatch.setitem(queueing._health, "at", 0.0)  # asked afresh, and put back for the next test
    monkeypatch.setitem(queueing._health, "ok", True)
    down = api(client, url, secret, method="POST", json={"confirm": True})
    assert down.status_code == 503 and down.json["error"]["message"]
    assert Run.query.count() == 0 and status_of(campaign) is CampaignStatus.DRAFT
