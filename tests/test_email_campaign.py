"""Email campaigns end to end on a real SMTP server (aiosmtpd): launch, pause, resume, cancel,
stop, extraction cancel, scheduling, failures and retries."""

import email
import email.policy
import os
import re
from datetime import timedelta

import pytest

from tests.conftest import act_midway, fresh, work
from webapp.engine import launches
from webapp.engine.firing import fire
from webapp.engine.runs import (
    RunActionError,
    cancel_paused,
    request_pause,
    request_stop,
    resume_run,
)
from webapp.extensions import db
from webapp.models import (
    Campaign,
    CampaignStatus,
    Job,
    Recipient,
    Run,
    SavedFilter,
    Supporter,
    Suppression,
)
from webapp.models.base import utcnow
from webapp.rules.states import RunState


def supporters(count, *, opted_in=True, start=0, **extra):
    rows = [
        {"email": f"s{i}@example.org", "first_name": f"S{i}", "opted_in": opted_in, **extra}
        for i in range(start, start + count)
    ]
    db.session.execute(db.insert(Supporter), rows)
    db.session.commit()


def campaign_for(user, **fields):
    job = Job(owner_id=user.id, job_type="email_campaign", name=fields.get("name", "Appeal"), params={})
    values = {
        "name": "Appeal",
        "from_address": "Park Friends <news@park.example>",
        "subject": "Hello {{ first_name }}",
        "text_body": "Dear {{ first_name }},\nThanks.",
        "html_body": '<p>Dear {{ first_name }}</p><a href="https://park.example/give?a=1&b=2">Give</a>',
        "audience": "opted_in",
        "notify_email": "owner@park.example",
    }
    values.update(fields)
    campaign = Campaign(owner_id=user.id, job=job, **values)
    db.session.add_all([job, campaign])
    db.session.flush()
    job.params = {"campaign_id": campaign.id}
    db.session.commit()
    return campaign


def launch(campaign, user):
    return launches.launch(campaign.id, user)


def outbox_messages(app):
    folder = app.config["OUTBOX_DIR"]
    result = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as raw:
            result.append(email.message_from_binary_file(raw, policy=email.policy.default))
    return result


def test_launch_sends_each_recipient_once_and_skips_the_suppressed(app, users, smtp_sink):
    supporters(25)
    supporters(3, opted_in=False, start=100)
    db.session.add(Suppression(email="s0@example.org", reason="hard_bounce"))
    db.session.commit()
    campaign = campaign_for(users["user"])
    run = launch(campaign, users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.COLLECTING, run.error
    assert run.request_id.startswith("REQ-")
    received = smtp_sink.recipients()
    assert sorted(received) == sorted(f"s{i}@example.org" for i in range(1, 25))
    assert (run.checked, run.skipped, run.created) == (25, 1, 24)
    assert run.collect_until > utcnow() + timedelta(days=29)
    first = email.message_from_bytes(smtp_sink.messages[0].content, policy=email.policy.default)
    assert first["Subject"].startswith("Hello S")
    assert first["List-Unsubscribe"].strip().startswith("<http://conveyor.test/t/u/")


def test_supporter_data_cannot_inject_markup_or_template_code(app, users, smtp_sink):
    db.session.add(
        Supporter(email="evil@example.org", opted_in=True, first_name="<script>alert(1)</script>{{ 7*7 }}")
    )
    db.session.commit()
    run = launch(campaign_for(users["user"]), users["user"])
    work(app)
    assert fresh(run).created == 1
    message = email.message_from_bytes(smtp_sink.messages[0].content, policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "{{ 7*7 }}" in text and "49" not in text
    # links go through the signed click redirect
    assert "http://conveyor.test/t/c/" in html and "park.example%2Fgive" in html


def test_pause_then_resume_sends_the_rest_exactly_once(app, users, smtp_sink):
    supporters(120)
    campaign = campaign_for(users["user"])
    run = launch(campaign, users["user"])
    smtp_sink.delay = 0.005
    run = act_midway(app, run, users["user"], request_pause, after=20)
    assert run.state is RunState.PAUSED
    sent_while = len(smtp_sink.recipients())
    assert 20 <= sent_while < 120 and run.created == sent_while
    assert 0 < run.percent < 100
    supporters(5, start=500)  # joins after extraction: not in the snapshot
    resume_run(run, users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.COLLECTING
    received = smtp_sink.recipients()
    assert len(received) == len(set(received)) == 120
    assert not any(r.startswith("s50") and len(r) == len("s500@example.org") for r in received)


def test_cancel_is_only_offered_for_a_paused_run_and_sends_no_notification(app, users, smtp_sink):
    supporters(40)
    campaign = campaign_for(users["user"])
    run = launch(campaign, users["user"])
    run.state, run.request_id = RunState.PROCESSING, "REQ-X"  # as if sending had started
    db.session.commit()
    with pytest.raises(RunActionError, match="Pause the run first"):
        cancel_paused(run, users["user"])
    run.state = RunState.PAUSED
    db.session.commit()
    cancel_paused(run, users["user"])
    assert fresh(run).state is RunState.CANCELLED
    assert smtp_sink.recipients() == []  # no notification for a job cancel
    assert db.session.get(Campaign, campaign.id).status is CampaignStatus.STOPPED  # some may have been sent


def test_stop_on_a_processing_run_pauses_then_cancels_and_keeps_what_was_sent(app, users, smtp_sink):
    supporters(120)
    run = launch(campaign_for(users["user"]), users["user"])
    smtp_sink.delay = 0.005
    run = act_midway(app, run, users["user"], request_stop, after=20)
    assert run.state is RunState.CANCELLED
    assert 20 <= run.created < 120 == run.progress_total
    assert len(smtp_sink.recipients()) == run.created
    messages = [line.message for line in run_log(run)]
    assert any(f"{run.created:,} of 120 messages were sent" in m for m in messages)


def run_log(run):
    from webapp.models import RunLogLine

    return RunLogLine.query.filter_by(run_id=run.id).order_by(RunLogLine.id).all()


def test_extraction_cancel_contacts_nobody_and_notifies(app, users):
    supporters(30)
    campaign = campaign_for(users["user"])
    run = launch(campaign, users["user"])
    run.control = "stop"  # Stop was pressed while the audience was being extracted
    db.session.commit()
    work(app)
    run = fresh(run)
    assert run.state is RunState.CANCELLED and run.request_id is None
    assert Recipient.query.filter_by(run_id=run.id, status="sent").count() == 0
    notes = outbox_messages(app)
    assert len(notes) == 1
    assert notes[0]["To"] == "owner@park.example"
    assert "Nobody was contacted" in notes[0].get_content()
    assert db.session.get(Campaign, campaign.id).status is CampaignStatus.DRAFT


def test_scheduled_run_waits_and_cancelling_it_returns_the_campaign_to_draft(app, client, auth, users):
    supporters(3)
    campaign = campaign_for(users["user"], launch_at=utcnow() + timedelta(days=2))
    auth.login("user@example.org")
    page = client.get(f"/campaigns/{campaign.id}/launch").get_data(as_text=True)
    assert "Schedule campaign" in page
    response = client.post(f"/campaigns/{campaign.id}/launch")
    run = Run.query.filter_by(job_id=campaign.job_id).one()
    assert response.headers["Location"] == f"/runs/{run.id}"
    assert run.state is RunState.SCHEDULED and run.rq_job_id.startswith(f"run-{run.id}-")
    assert db.session.get(Campaign, campaign.id).status is CampaignStatus.SCHEDULED
    monitor = client.get("/").get_data(as_text=True)
    assert "Scheduled" in monitor
    row = client.post(f"/runs/{run.id}/stop?from=monitor", headers={"HX-Request": "true"})
    html = row.get_data(as_text=True)
    assert "Edit campaign" in html
    assert fresh(run).state is RunState.CANCELLED
    assert db.session.get(Campaign, campaign.id).status is CampaignStatus.DRAFT
    assert client.get(f"/campaigns/{campaign.id}/edit").status_code == 200


def test_a_scheduled_launch_is_cancelled_from_the_campaigns_own_page(app, client, auth, users):
    supporters(3)
    campaign = campaign_for(users["user"], launch_at=utcnow() + timedelta(days=2))
    auth.login("user@example.org")
    client.post(f"/campaigns/{campaign.id}/launch")
    run = Run.query.filter_by(job_id=campaign.job_id).one()
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Cancel scheduled launch" in page and f'action="/runs/{run.id}/stop"' in page
    back = client.post(
        f"/runs/{run.id}/stop", data={"next": f"/campaigns/{campaign.id}"}, follow_redirects=True
    )
    assert back.request.path == f"/campaigns/{campaign.id}"
    assert fresh(run).state is RunState.CANCELLED
    assert db.session.get(Campaign, campaign.id).status is CampaignStatus.DRAFT
    html = back.get_data(as_text=True)
    assert "Cancel scheduled launch" not in html and "Edit campaign" in html
    twice = client.post(  # the same form sent again
        f"/runs/{run.id}/stop", data={"next": f"/campaigns/{campaign.id}"}, follow_redirects=True
    )
    assert "This run is cancelled already: there is nothing to stop." in twice.get_data(as_text=True)


def test_scheduled_launch_is_promoted_at_its_time(app, users, smtp_sink):
    supporters(4)
    campaign = campaign_for(users["user"], launch_at=utcnow() + timedelta(minutes=5))
    run = launch(campaign, users["user"])
    assert run.state is RunState.SCHEDULED and run.rq_job_id
    assert db.session.get(Campaign, campaign.id).status is CampaignStatus.SCHEDULED
    fire({run.id: None})
    assert fresh(run).state is RunState.QUEUED
    work(app)
    assert fresh(run).state is RunState.COLLECTING
    assert db.session.get(Campaign, campaign.id).status is CampaignStatus.LAUNCHED
    assert len(smtp_sink.recipients()) == 4


def test_a_scheduled_run_that_is_not_the_campaigns_launch_never_fires(app, users, smtp_sink):
    from webapp.engine.runs import schedule_run

    supporters(4)
    campaign = campaign_for(users["user"], launch_at=utcnow() + timedelta(minutes=5))
    orphan = schedule_run(campaign.job, users["user"], utcnow() + timedelta(minutes=5))
    current = launch(campaign, users["user"])
    fire({orphan.id: None, current.id: None})
    assert fresh(orphan).state is RunState.SKIPPED
    assert "no longer the campaign's launch" in fresh(orphan).error
    work(app)
    assert fresh(current).state is RunState.COLLECTING
    assert len(smtp_sink.recipients()) == 4  # one send, not two


def test_login_refused_fails_the_run_with_the_reason(app, users):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from tests.conftest import SmtpSink, free_port

    port = free_port()
    controller = Controller(
        SmtpSink(),
        hostname="127.0.0.1",
        port=port,
        authenticator=lambda *a: AuthResult(success=False, handled=False),
        auth_require_tls=False,
    )
    controller.start()
    try:
        app.config["SMTP_URL"] = f"smtp://news:wrong@127.0.0.1:{port}"
        supporters(2)
        run = launch(campaign_for(users["user"]), users["user"])
        work(app)
    finally:
        controller.stop()
    run = fresh(run)
    assert run.state is RunState.FAILED
    assert "the SMTP server refused the login: 535" in run.error


def test_template_that_cannot_render_fails_the_run(app, users, smtp_sink):
    supporters(2)
    campaign = campaign_for(users["user"], text_body="Hi {{ first_name ")
    run = launch(campaign, users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.FAILED and "the template cannot be rendered" in run.error
    assert smtp_sink.recipients() == []


def test_invalid_audience_rule_fails_the_run(app, users, smtp_sink):
    supporters(2)
    rule = SavedFilter(
        owner_id=users["user"].id,
        name="Broken",
        rule={"conditions": [{"field": "shoe_size", "op": "equals", "value": "9"}]},
    )
    db.session.add(rule)
    db.session.commit()
    run = launch(campaign_for(users["user"], audience="filter", filter_id=rule.id), users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.FAILED
    assert "the audience rule is invalid: unknown field 'shoe_size'" in run.error


def test_saved_filter_audience_suppresses_the_not_opted_in(app, users, smtp_sink):
    supporters(3, state="MA")
    supporters(2, opted_in=False, start=10, state="MA")
    supporters(4, start=20, state="NY")
    rule = SavedFilter(
        owner_id=users["user"].id,
        name="Massachusetts",
        rule={"conditions": [{"field": "state", "op": "equals", "value": "MA"}]},
    )
    db.session.add(rule)
    db.session.commit()
    run = launch(campaign_for(users["user"], audience="filter", filter_id=rule.id), users["user"])
    work(app)
    run = fresh(run)
    assert (run.checked, run.skipped, run.created) == (5, 2, 3)
    assert sorted(smtp_sink.recipients()) == ["s0@example.org", "s1@example.org", "s2@example.org"]


def test_temporary_failures_are_retried_without_losing_or_duplicating(app, users, smtp_sink):
    supporters(12)
    smtp_sink.data_replies["s3@example.org"] = ["451 try again later", "421 busy"]
    smtp_sink.drop_before_reply.add("s7@example.org")
    smtp_sink.data_replies["s9@example.org"] = ["550 no such mailbox"]
    run = launch(campaign_for(users["user"]), users["user"])
    work(app)
    run = fresh(run)
    received = smtp_sink.recipients()
    assert run.state is RunState.COLLECTING
    assert len(received) == len(set(received)) == 11
    assert "s3@example.org" in received and "s7@example.org" in received
    assert "s9@example.org" not in received
    assert (run.created, run.rejected) == (11, 1)
    failed = Recipient.query.filter_by(run_id=run.id, status="failed").one()
    assert failed.email == "s9@example.org" and failed.error.startswith("550")


def test_launch_page_confirms_with_the_audience_size_and_lands_on_the_run(
    app, client, auth, users, smtp_sink
):
    supporters(7)
    supporters(2, opted_in=False, start=50)
    campaign = campaign_for(users["user"])
    auth.login("user@example.org")
    page = client.get(f"/campaigns/{campaign.id}/launch").get_data(as_text=True)
    assert re.search(r"<strong>7 supporters</strong>; <strong>0</strong> of them are", page)
    response = client.post(f"/campaigns/{campaign.id}/launch")
    run = Run.query.filter_by(job_id=campaign.job_id).one()
    assert response.headers["Location"] == f"/runs/{run.id}"
    work(app)
    page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert run.request_id is None or True
    assert fresh(run).request_id in page
    assert 'aria-label="Contact results"' in page
    assert re.search(r"<dt>Sent</dt><dd>7</dd>", page)


def test_campaign_form_refuses_unknown_merge_fields_and_bad_templates(client, auth, users):
    auth.login("user@example.org")
    response = client.post(
        "/campaigns/new",
        data={
            "name": "x",
            "from_address": "a@b.org",
            "subject": "Hi {{ frist_name }}",
            "text_body": "Hello {% if %}",
            "audience": "opted_in",
        },
    )
    html = response.get_data(as_text=True)
    assert "unknown merge field {{ frist_name }}" in html
    assert "template error" in html
    assert Campaign.query.count() == 0


def test_preview_renders_for_a_chosen_supporter(client, auth, users):
    supporters(2)
    campaign = campaign_for(users["user"])
    auth.login("user@example.org")
    page = client.get(f"/campaigns/{campaign.id}/preview?email=s1@example.org").get_data(as_text=True)
    assert "Hello S1" in page and "Dear S1" in page
    missing = client.get(f"/campaigns/{campaign.id}/preview?email=nobody@example.org")
    assert "No supporter has the email nobody@example.org." in missing.get_data(as_text=True)


def test_other_users_campaigns_are_404(client, auth, users):
    campaign = campaign_for(users["other"])
    auth.login("user@example.org")
    for url in (
        f"/campaigns/{campaign.id}",
        f"/campaigns/{campaign.id}/edit",
        f"/campaigns/{campaign.id}/preview",
        f"/campaigns/{campaign.id}/launch",
    ):
        assert client.get(url).status_code == 404
    assert client.post(f"/campaigns/{campaign.id}/launch").status_code == 404


@pytest.mark.parametrize(
    "status,words",
    [
        ("scheduled", "Cancel its scheduled launch first (on this page), then edit it."),
        ("launched", "It was launched: its emails went out as they were."),
    ],
)
def test_editing_a_campaign_that_is_no_draft_says_why_by_its_state(client, auth, users, status, words):
    campaign = campaign_for(users["user"], status=CampaignStatus(status))
    db.session.commit()
    auth.login(users["user"].email)
    page = client.get(f"/campaigns/{campaign.id}/edit", follow_redirects=True).get_data(as_text=True)
    assert f"Only a draft can be edited. {words}" in page
