"""Opens, signed clicks, one-click unsubscribes, the bounce webhook and the collecting window."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import fresh, work
from tests.test_email_campaign import campaign_for, launch, supporters
from webapp.api.routes import bounce_token
from webapp.engine.collecting import finish_collecting
from webapp.extensions import db
from webapp.mailing.stats import contact_stats
from webapp.models import Recipient, Supporter, Suppression
from webapp.models.base import utcnow
from webapp.rules.states import RunState


@pytest.fixture
def sent(app, users):
    """A campaign sent to three supporters through the local outbox; its run and recipients."""
    supporters(3)
    run = launch(campaign_for(users["user"]), users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.COLLECTING
    import email
    import email.policy
    import os

    folder = app.config["OUTBOX_DIR"]
    messages = {}
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as raw:
            message = email.message_from_binary_file(raw, policy=email.policy.default)
        messages[str(message["To"])] = message
    return run, messages


def links(message):
    html = message.get_body(("html",)).get_content()
    hrefs = re.findall(r'(?:href|src)="([^"]+)"', html)
    return [h.replace("&amp;", "&").replace("http://conveyor.test", "") for h in hrefs]


def test_messages_go_to_the_outbox_when_no_smtp_relay_is_set(sent):
    run, messages = sent
    assert sorted(messages) == ["s0@example.org", "s1@example.org", "s2@example.org"]


def test_open_pixel_records_an_open(client, sent):
    run, messages = sent
    pixel = next(link for link in links(messages["s1@example.org"]) if "/t/o/" in link)
    response = client.get(pixel)
    assert response.status_code == 200 and response.mimetype == "image/gif"
    assert contact_stats(run)["opens"] == 1


def test_click_redirects_to_the_signed_target_and_counts(client, sent):
    run, messages = sent
    click = next(link for link in links(messages["s0@example.org"]) if "/t/c/" in link)
    response = client.get(click)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://park.example/give?a=1&b=2"
    stats = contact_stats(run)
    assert (stats["clicks"], stats["opens"]) == (1, 1)


@pytest.mark.parametrize("tamper", ["target", "signature", "token"])
def test_tampered_click_links_are_refused_never_redirected(client, sent, tamper):
    run, messages = sent
    click = next(link for link in links(messages["s0@example.org"]) if "/t/c/" in link)
    parts = urlsplit(click)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    path = parts.path
    if tamper == "target":
        query["u"] = "https://evil.example/phish"
    elif tamper == "signature":
        query["s"] = "0" * 24
    else:
        path = path[:-3] + "abc"
    response = client.get(path, query_string=query)
    assert response.status_code in (400, 404)
    assert "Location" not in response.headers
    assert contact_stats(run)["clicks"] == 0


def test_one_click_unsubscribe_suppresses_and_opts_out(client, sent):
    run, messages = sent
    message = messages["s2@example.org"]
    url = str(message["List-Unsubscribe"]).strip()[1:-1].replace("http://conveyor.test", "")
    assert "Unsubscribe" in client.get(url).get_data(as_text=True)  # GET only asks
    assert Suppression.query.count() == 0
    response = client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert "You are unsubscribed" in response.get_data(as_text=True)
    assert Suppression.query.one().email == "s2@example.org"
    assert (
        db.session.execute(db.select(Supporter.opted_in).filter_by(email="s2@example.org")).scalar() is False
    )
    assert contact_stats(run)["unsubscribes"] == 1


def test_bounce_webhook_records_and_suppresses_hard_bounces(app, client, sent):
    run, _ = sent
    token = bounce_token()
    headers = {"Authorization": f"Bearer {token}"}
    response = client.post(
        "/api/bounces",
        json={"email": "S1@example.org", "request_id": run.request_id, "type": "hard"},
        headers=headers,
    )
    assert response.status_code == 200 and response.get_json()["recorded"] is True
    assert Suppression.query.one().reason == "hard_bounce"
    stats = contact_stats(run)
    assert (stats["bounces"], stats["deliveries"], stats["sent"]) == (1, 2, 3)
    soft = client.post("/api/bounces", json={"email": "s0@example.org", "type": "soft"}, headers=headers)
    assert soft.status_code == 200 and Suppression.query.count() == 1


@pytest.mark.parametrize(
    "headers,body,status,message",
    [
        ({}, {"email": "s0@example.org"}, 401, "bearer token"),
        ({"Authorization": "Bearer wrong"}, {"email": "s0@example.org"}, 401, "bearer token"),
        (None, {"nope": 1}, 400, "send JSON"),
        (None, {"email": "s0@example.org", "type": "medium"}, 400, "type must be"),
        (None, {"email": "stranger@example.org"}, 404, "no campaign recipient"),
    ],
)
def test_bounce_webhook_bad_input_gets_json_errors(app, client, sent, headers, body, status, message):
    if headers is None:
        headers = {"Authorization": f"Bearer {bounce_token()}"}
    response = client.post("/api/bounces", json=body, headers=headers)
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_collecting_ends_with_the_window(app, sent):
    run, _ = sent
    assert finish_collecting() == 0
    run.collect_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert finish_collecting() == 1
    run = fresh(run)
    assert run.state is RunState.COMPLETED and not run.in_monitor


def test_outbox_page_lists_and_shows_messages_to_super_admins_only(client, auth, users, sent):
    auth.login(users["super_admin"].email)
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert page.count("Hello S") == 3
    name = re.search(r'href="/admin/outbox/([^"]+)"', page).group(1)
    message = client.get(f"/admin/outbox/{name}").get_data(as_text=True)
    assert "Dear S" in message
    assert client.get("/admin/outbox/../../secret_key").status_code == 404
    for role in ("admin", "user"):  # it holds every user's mail and set-password links
        auth.logout()
        auth.login(users[role].email)
        assert client.get("/admin/outbox").status_code == 404  # as the Audit page
        assert client.get(f"/admin/outbox/{name}").status_code == 404


def test_recipients_snapshot_the_audience(app, sent):
    run, _ = sent
    assert Recipient.query.filter_by(run_id=run.id).count() == 3
