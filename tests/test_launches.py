"""A campaign's sends: one launch however often it is asked, send to the remaining after a stop
(nobody gets it twice), copy into a draft, and a group's sends that leave the campaign's own
launch alone."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest

from tests.conftest import act_midway, fresh, work
from tests.test_chains import group_of
from tests.test_email_campaign import campaign_for, supporters
from webapp.engine import launches
from webapp.engine.chains import after_group_run
from webapp.engine.runs import new_run, request_stop
from webapp.extensions import db
from webapp.models import Campaign, CampaignStatus, Job, Run, User
from webapp.models.base import utcnow
from webapp.rules.states import RunState


def _stopped_campaign(app, users, smtp_sink, count=60):
    supporters(count)
    campaign = campaign_for(users["user"])
    run = launches.launch(campaign.id, users["user"])
    smtp_sink.delay = 0.005
    run = act_midway(app, run, users["user"], request_stop, after=10)
    assert run.state is RunState.CANCELLED and 10 <= run.created < count
    smtp_sink.delay = 0
    return db.session.get(Campaign, campaign.id), run


def test_concurrent_launches_make_one_run(app, users, smtp_sink):
    supporters(5)
    campaign_id, user_id = campaign_for(users["user"]).id, users["user"].id
    barrier, outcomes = threading.Barrier(8), []

    def attempt():
        with app.app_context():
            barrier.wait()
            try:
                user = db.session.get(User, user_id)
                outcomes.append(launches.launch(campaign_id, user).id)
            except launches.LaunchRefused:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert Counter(isinstance(o, int) for o in outcomes) == {True: 1, False: 7}
    assert Run.query.count() == 1
    work(app)
    assert sorted(smtp_sink.recipients()) == sorted({*smtp_sink.recipients()})
    assert len(smtp_sink.recipients()) == 5


def test_a_stopped_campaign_is_sent_to_the_remaining_and_nobody_gets_it_twice(
    app, users, smtp_sink, client, auth
):
    campaign, stopped = _stopped_campaign(app, users, smtp_sink)
    assert campaign.status is CampaignStatus.STOPPED
    auth.login(users["user"].email)
    page = client.get(f"/campaigns/{campaign.id}/remaining").get_data(as_text=True)
    assert f"<strong>{60 - stopped.created} supporters</strong> of its audience have not" in page
    client.post(f"/campaigns/{campaign.id}/remaining")
    client.post(f"/campaigns/{campaign.id}/remaining")  # a double submit sends nothing more
    work(app)
    runs = Run.query.filter_by(job_id=campaign.job_id).order_by(Run.id).all()
    assert len(runs) == 2 and runs[1].state is RunState.COLLECTING
    assert runs[1].created == 60 - stopped.created
    received = Counter(smtp_sink.recipients())
    assert len(received) == 60 and set(received.values()) == {1}
    assert db.session.get(Campaign, campaign.id).status is CampaignStatus.LAUNCHED


def test_a_remaining_send_cancelled_before_it_starts_leaves_the_campaign_stopped(app, users, smtp_sink):
    campaign, stopped = _stopped_campaign(app, users, smtp_sink)
    run = launches.send_remaining(campaign.id, users["user"])
    request_stop(fresh(run), users["user"])
    campaign = db.session.get(Campaign, campaign.id, populate_existing=True)
    assert campaign.status is CampaignStatus.STOPPED and campaign.launch_run_id == stopped.id
    with pytest.raises(launches.LaunchRefused):
        launches.launch(campaign.id, users["user"])  # never a full relaunch to everybody


def test_a_stopped_campaign_can_be_copied_into_a_new_draft(app, users, smtp_sink, client, auth):
    campaign, _ = _stopped_campaign(app, users, smtp_sink)
    auth.login(users["user"].email)
    response = client.post(f"/campaigns/{campaign.id}/copy")
    draft = Campaign.query.filter(Campaign.id != campaign.id).one()
    assert response.headers["Location"].endswith(f"/campaigns/{draft.id}")
    assert draft.status is CampaignStatus.DRAFT and draft.name == "Copy of Appeal"
    assert draft.subject == campaign.subject and draft.job_id != campaign.job_id
    assert db.session.get(Job, draft.job_id).params == {"campaign_id": draft.id}


def test_a_group_send_leaves_the_campaigns_own_scheduled_launch_in_place(app, users, smtp_sink):
    supporters(4)
    campaign = campaign_for(users["user"], launch_at=utcnow() + timedelta(days=2))
    scheduled = launches.launch(campaign.id, users["user"])
    export = Job(
        owner_id=users["user"].id,
        job_type="user_data_export",
        name="E",
        params={"fields": ["email"], "filter": "all"},
    )
    db.session.add(export)
    db.session.commit()
    group = group_of(users["user"], [export, export], launch_campaigns=True, campaign_ids=[campaign.id])
    for _ in range(2):  # every successful group run sends it again
        group_run = new_run(group, users["user"], RunState.COMPLETED, trigger="manual")
        db.session.commit()
        after_group_run(group_run.id)
        work(app)
    campaign = db.session.get(Campaign, campaign.id, populate_existing=True)
    assert campaign.status is CampaignStatus.SCHEDULED and campaign.launch_run_id == scheduled.id
    assert fresh(scheduled).state is RunState.SCHEDULED and campaign.launch_at is not None
    sends = Run.query.filter_by(job_id=campaign.job_id, trigger="group").all()
    assert len(sends) == 2 and all(s.state is RunState.COLLECTING for s in sends)
    assert all(s.origin_run_id for s in sends)
    supporters_reached = [r for r in smtp_sink.recipients() if r.startswith("s")]
    assert len(supporters_reached) == 8  # two sends of four (and the group's notifications)


def test_a_group_that_completes_while_the_queue_is_down_still_sends_its_campaigns_once(
    app, users, smtp_sink, monkeypatch
):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from webapp.engine import queueing
    from webapp.engine.chains import FOLLOWUP_FUNCTION

    supporters(3)
    campaign = campaign_for(users["user"])
    export = Job(
        owner_id=users["user"].id, job_type="user_data_export", name="E", params={"fields": ["email"]}
    )
    db.session.add(export)
    db.session.commit()
    group = group_of(users["user"], [export, export], launch_campaigns=True, campaign_ids=[campaign.id])
    group_run = new_run(group, users["user"], RunState.COMPLETED, trigger="manual")
    db.session.commit()

    def unreachable():
        raise RedisConnectionError("down")

    with monkeypatch.context() as down:
        down.setattr(queueing, "run_queue", unreachable)
        queueing.enqueue_followup(FOLLOWUP_FUNCTION, group_run.id)  # as the group's end does
    (send,) = Run.query.filter_by(job_id=campaign.job_id, trigger="group").all()  # waiting: not lost
    after_group_run(group_run.id)  # the follow-up done again (its queued copy ran after all)
    assert Run.query.filter_by(job_id=campaign.job_id, trigger="group").count() == 1
    assert send.origin_run_id == group_run.id


def test_run_now_on_a_campaign_job_goes_to_its_confirmation_and_sends_nothing(
    app, users, client, auth, smtp_sink
):
    supporters(3)
    campaign = campaign_for(users["user"])
    auth.login(users["user"].email)
    response = client.post(f"/jobs/{campaign.job_id}/run")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/campaigns/{campaign.id}/launch")
    assert Run.query.count() == 0
    assert client.get(f"/jobs/{campaign.job_id}/schedule").status_code == 404
    jobs_page = client.get("/jobs/").get_data(as_text=True)
    assert "Launch Appeal…" in jobs_page and "Run Appeal now" not in jobs_page


def test_a_launch_time_after_2100_is_refused_with_a_message_and_nothing_is_saved(app, client, auth, users):
    auth.login(users["user"].email)
    response = client.post(
        "/campaigns/new",
        data={
            "name": "Far appeal",
            "from_address": "a@example.org",
            "subject": "Far",
            "text_body": "Hello",
            "audience": "opted_in",
            "launch_at": "9999-12-31T23:30",
        },
    )
    assert response.status_code == 200
    assert "Conveyor cannot plan later dates" in response.get_data(as_text=True)
    assert Campaign.query.count() == 0
