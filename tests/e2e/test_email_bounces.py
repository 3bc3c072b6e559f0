"""A bounce export, driven in chromium against the real launcher, worker and SMTP sink: a user
sends a campaign, the mail provider reports two bounces to POST /api/bounces (one with a reason
a spreadsheet would run as a formula), and the user exports that send's bounces from Jobs → New
job → New bounce export and downloads the CSV. Screenshots go to test-results/email-bounces/."""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import REPO_ROOT, Account, Server, _create_user, log_in
from tests.e2e.pages import RUN_TIMEOUT, ZONE, open_new_job, run_status
from tests.e2e.test_campaign_launch import create_campaign, save_filter
from tests.e2e.test_campaigns import expect_state, launch_now, opt_out_domain, sqlite_db, upsert_opted_in

pytestmark = pytest.mark.e2e

SHOTS = REPO_ROOT / "test-results" / "email-bounces"
DOMAIN = "bounces.e2e.example"
MAILBOX_FULL = "452 4.2.2 mailbox full"
FORMULA = '=HYPERLINK("http://evil.example")'


@pytest.fixture(scope="module")
def mailer(server: Server) -> Account:
    return _create_user(server, "bounce-exporter@example.org", "bounce-exporter-password-5")


@pytest.fixture
def audience(server: Server):
    people = {f"b{i}@{DOMAIN}": f"B{i}" for i in range(3)}
    upsert_opted_in(server, people)
    yield people
    opt_out_domain(server, DOMAIN)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def report_bounce(server: Server, body: dict) -> dict:
    """What a mail provider's webhook does: POST /api/bounces with the deployment's token."""
    token = (server.var_dir / "bounce_token").read_text().strip()
    request = urllib.request.Request(
        f"{server.url}/api/bounces",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def request_id_of(server: Server, run_id: int) -> str:
    with sqlite_db(server) as db:
        return db.execute("SELECT request_id FROM run WHERE id = ?", (run_id,)).fetchone()[0]


def test_a_bounce_export_of_a_send_downloads_its_bounces_formula_safe(
    page: Page, server: Server, mailer: Account, audience
):
    log_in(page, mailer)
    save_filter(page, "Bounce audience", DOMAIN)
    create_campaign(page, "Bouncy appeal", "Bounce audience")
    run_id = launch_now(page, "Bouncy appeal", len(audience))
    expect_state(page, "Collecting")
    request_id = request_id_of(server, run_id)
    hard = report_bounce(
        server, {"email": f"b0@{DOMAIN}", "request_id": request_id, "type": "hard", "reason": FORMULA}
    )
    assert hard["recorded"] and hard["reason"] == FORMULA
    report_bounce(
        server,
        {
            "email": f"B2@{DOMAIN}",
            "request_id": request_id,
            "type": "soft",
            "reason": "452 4.2.2 mailbox full",
        },
    )

    open_new_job(page, "bounce export")
    expect(page.get_by_role("heading", name="New Email Bounces export")).to_be_visible()
    page.get_by_label("Job name").fill("Bounces of the appeal")
    bounces_of = page.get_by_role("group", name="Bounces of")
    bounces_of.get_by_role("radio", name="Every send, bounces in a date range").check()
    page.get_by_label("First day").fill("2026-03-09")
    page.get_by_label("Last day").fill("2026-03-01")
    page.get_by_role("button", name="Save job").click()  # a range that ends before it starts
    expect(page.get_by_role("alert").filter(has_text="The last day is before the first day.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"account time zone, America/New_York \(E[SD]T\)"))).to_be_visible()

    bounces_of.get_by_role("radio", name="One campaign send").check()
    send = page.get_by_role("combobox", name="Campaign send")
    expect(send.get_by_role("option", name=re.compile(r"^“Bouncy appeal” send #1 \(REQ-"))).to_have_count(1)
    send.select_option(index=1)  # the newest send first: this user's only one
    shot(page, "form")
    page.get_by_role("button", name="Save and run now").click()
    expect(run_status(page)).to_contain_text(re.compile(r"State:\s*Completed\b"), timeout=RUN_TIMEOUT)
    shot(page, "run")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download results").click()
    raw = Path(info.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfEmail,")  # Excel-friendly by default
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["Email", "Campaign", "Send", "Request id", "Bounce type", "Reason", "Bounced at"]
    assert [row[:6] for row in rows[1:]] == [
        [f"b0@{DOMAIN}", "Bouncy appeal", "#1", request_id, "hard", "'" + FORMULA],
        [f"b2@{DOMAIN}", "Bouncy appeal", "#1", request_id, "soft", MAILBOX_FULL],
    ]
    for row in rows[1:]:  # ISO 8601 in the account's zone, with its offset
        bounced = datetime.fromisoformat(row[6])
        assert bounced.utcoffset() == datetime.now(ZONE).utcoffset()


def test_a_double_click_on_save_job_saves_one_bounce_export(page: Page, mailer: Account):
    log_in(page, mailer)
    open_new_job(page, "bounce export")
    page.get_by_label("Job name").fill("Double-clicked bounces")
    page.get_by_role("group", name="Bounces of").get_by_role(
        "radio", name=re.compile("days before each run")
    ).check()
    held = []

    def hold(route):  # a slow answer: the second click lands while the first is answered
        held.append((route, route.fetch(max_redirects=0)))

    page.route(
        "**/bounce-exports/new",
        lambda route: hold(route) if route.request.method == "POST" else route.continue_(),
    )
    save = page.get_by_role("button", name="Save job")
    save.scroll_into_view_if_needed()
    box = save.bounding_box()
    for _ in range(2):  # a person's double click
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(300)
    assert len(held) == 1, "the page sent the form twice"
    route, answer = held[0]
    route.fulfill(response=answer)
    expect(page.get_by_role("heading", name="Double-clicked bounces", exact=True)).to_be_visible()
    expect(page.get_by_text("Every send: the 7 days before each run")).to_be_visible()
    page.goto("/jobs/")
    expect(page.get_by_role("link", name="Double-clicked bounces", exact=True)).to_have_count(1)
