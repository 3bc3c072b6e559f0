"""A campaign goes out once, driven in chromium against the real launcher and SMTP sink:

1. a double-click on "Launch now" whose second click reaches the server while the first is still
   being answered makes one send: both answers lead to its run, the campaign page lists one
   send, and each supporter of its audience receives one message;
2. the Jobs page offers "Launch…" for a campaign's job, never "Run now", and refuses to run it
   from there; following "Launch…" shows the confirmation with the audience size and sends
   nothing until it is confirmed;
3. a group that launches a campaign after success, where the campaign has its own launch time
   ahead: the group's send is one more send, and the campaign stays Scheduled with its launch
   time and its scheduled run.

Each audience is a saved filter over a domain of its own, so what other tests put in the shared
database does not change the counts. Screenshots go to test-results/campaign-launch/.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import Counter
from datetime import datetime, timedelta
from datetime import time as dtime

import pytest
from playwright.sync_api import Error, Page, expect

from tests.e2e.conftest import REPO_ROOT, Account, Server, _create_user, log_in
from tests.e2e.pages import RUN_TIMEOUT, ZONE, main_nav, run_status
from tests.e2e.test_campaigns import (
    FROM,
    HTML_BODY,
    SUBJECT,
    TEXT_BODY,
    expect_state,
    flash,
    land_on_run,
    opt_out_domain,
    upsert_opted_in,
)
from tests.e2e.test_launch_exactly_once import (
    ALREADY,
    campaign_row,
    database,
    received_by,
    runs_of,
)
from tests.e2e.test_schedules import create_export_job, local_text

pytestmark = pytest.mark.e2e

SHOTS = REPO_ROOT / "test-results" / "campaign-launch"
RUN_LINK = re.compile(r"^#\d+$")
LAUNCH_URL = re.compile(r".*/campaigns/\d+/launch$")


@pytest.fixture(scope="module")
def sender(server: Server) -> Account:
    return _create_user(server, "sender@example.org", "sender-secret-password-8")


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


@pytest.fixture
def audience_of(server: Server):
    """audience_of(domain, size): `size` opted-in supporters at `domain` (email → first name),
    written to the database; opted out again after the test, so that the other tests' "all
    opted-in supporters" stay theirs."""
    domains: list[str] = []

    def make(domain: str, size: int) -> dict[str, str]:
        domains.append(domain)
        people = {f"p{i:02d}@{domain}": f"Person{i}" for i in range(size)}
        upsert_opted_in(server, people)
        return people

    yield make
    for domain in domains:
        opt_out_domain(server, domain)


def save_filter(page: Page, name: str, domain: str) -> None:
    """Campaigns → Saved filters → a filter "Email contains @domain"."""
    main_nav(page).get_by_role("link", name="Campaigns").click()
    page.get_by_role("button", name="Saved filters").click()
    expect(page.get_by_role("heading", name="Saved filters")).to_be_visible()
    page.get_by_label("Filter name").fill(name)
    page.get_by_label("Condition 1 field").select_option(label="Email")
    page.get_by_label("Condition 1 comparison").select_option(label="contains")
    page.get_by_label("Condition 1 value").fill(f"@{domain}")
    page.get_by_role("button", name="Save filter").click()
    expect(flash(page, f"Filter “{name}” saved.")).to_be_visible()


def create_campaign(page: Page, name: str, filter_name: str, *, launch_at: str = "") -> int:
    """Campaigns → New campaign for the saved filter's supporters; returns its id."""
    main_nav(page).get_by_role("link", name="Campaigns").click()
    page.get_by_role("button", name="New campaign").click()
    expect(page.get_by_role("heading", name="New campaign")).to_be_visible()
    page.get_by_label("Campaign name").fill(name)
    page.get_by_label("From address").fill(FROM)
    page.get_by_label("Subject").fill(SUBJECT)
    page.get_by_label("Plain-text body").fill(TEXT_BODY)
    page.get_by_label("HTML body").fill(HTML_BODY)
    page.get_by_role("group", name="Audience").get_by_role("radio", name="A saved filter").check()
    page.get_by_label("Saved filter", exact=True).select_option(label=filter_name)
    if launch_at:
        page.get_by_label("Launch automatically at").fill(launch_at)
    page.get_by_role("button", name="Save campaign").click()
    expect(flash(page, f"Campaign “{name}” saved as a draft.")).to_be_visible()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(page.get_by_text("Draft", exact=True)).to_be_visible()
    return int(re.search(r"/campaigns/(\d+)$", page.url).group(1))


def expect_confirmation(page: Page, name: str, audience: int) -> None:
    expect(page.get_by_role("heading", name=f"Launch “{name}”?")).to_be_visible()
    expect(page.get_by_role("article")).to_contain_text(
        f"The audience has {audience:,} supporters; 0 of them are suppressed (not opted in or "
        f"on the suppression list), so {audience:,} will be emailed."
    )


def sends(page: Page):
    """The rows of the campaign page's Sends table (one per run of the campaign)."""
    return page.get_by_role("table").get_by_role("row").filter(has=page.get_by_role("link", name=RUN_LINK))


def expect_status(page: Page, status: str) -> None:
    """The campaign page's status line, "Campaign · Draft" (and so on)."""
    expect(page.get_by_role("paragraph").filter(has_text=re.compile(r"^Campaign ·"))).to_have_text(
        f"Campaign · {status}"
    )


def open_campaign(page: Page, name: str) -> None:
    main_nav(page).get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()


class SlowAnswers:
    """While held, each launch POST the page sends reaches the server at once, but the server's
    answer reaches the page only on release(): a slow network, so a later click lands while the
    first is still being answered (as the second click of a person's double-click would)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.held: list = []
        page.route(LAUNCH_URL, self._hold)

    def _hold(self, route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        self.held.append((route, route.fetch(max_redirects=0)))

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.held) < count:
            assert time.monotonic() < deadline, f"{len(self.held)} launch POSTs sent, not {count}"
            self.page.wait_for_timeout(50)

    def answers(self) -> list[tuple[int, str]]:
        """(status, Location) of each answer the server gave."""
        return [(answer.status, answer.headers.get("location", "")) for _, answer in self.held]

    def release(self) -> None:
        self.page.unroute(LAUNCH_URL, self._hold)
        for route, answer in self.held:
            with contextlib.suppress(Error):  # the browser may have dropped an earlier one
                route.fulfill(response=answer)


# ----------------------------------------------------------------------------------- tests


def test_a_double_click_on_launch_now_sends_once(
    page: Page, sender: Account, server: Server, smtp_sink, audience_of
):
    """Double-click "Launch now" and click once more before any answer arrives: every answer
    leads to the one run, the campaign page lists one send, each supporter gets one message."""
    domain = "dblclick.launch.example"
    people = audience_of(domain, 8)
    log_in(page, sender)
    save_filter(page, "Double-click readers", domain)
    name = "Double-click appeal"
    campaign_id = create_campaign(page, name, "Double-click readers")
    page.get_by_role("button", name="Launch…").click()
    expect_confirmation(page, name, len(people))
    shot(page, "a1-confirmation")

    launch_now = page.get_by_role("button", name="Launch now")
    box = launch_now.bounding_box()
    token = page.locator("input[name='csrf_token']").first.input_value()
    slow = SlowAnswers(page)
    launch_now.dblclick(no_wait_after=True)
    slow.wait_for(1)
    # Chromium folds a quick double-click into one submission, and a person's slower one is
    # held back by the page, which sends a form once (static/app.js):
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(500)
    assert len(slow.held) == 1, "the page sent the launch form twice"
    # a second request that still reaches the server (another tab, a retried POST) while the
    # first is being answered is refused by the server and leads to the same run:
    again = page.request.post(f"/campaigns/{campaign_id}/launch", form={"csrf_token": token}, max_redirects=0)
    answers = slow.answers() + [(again.status, again.headers.get("location", ""))]
    slow.release()
    assert len(set(answers)) == 1, f"the launch POSTs got {answers}"
    run_id = land_on_run(page, name)
    assert answers[0] == (302, f"/runs/{run_id}")
    expect(flash(page, ALREADY).first).to_be_visible()
    expect_state(page, "Collecting")
    shot(page, "a2-run-after-double-click")

    open_campaign(page, name)
    expect_status(page, "Launched")
    expect(sends(page)).to_have_count(1)
    only = sends(page).first
    expect(only.get_by_role("cell")).to_contain_text(
        ["#1", "This campaign's launch", re.compile(r"\S"), "Collecting", "8"]
    )
    shot(page, "a3-campaign-after-send")
    job_id = campaign_row(server.var_dir, campaign_id)[0]
    assert len(runs_of(server.var_dir, job_id)) == 1
    assert received_by(smtp_sink, f"@{domain}") == Counter(people.keys())


def test_the_jobs_page_offers_launch_not_run_now_and_sends_nothing_unconfirmed(
    page: Page, sender: Account, server: Server, smtp_sink, audience_of
):
    """Jobs: "Launch…" for the campaign's job (Run now only for the export), no run form for it,
    a posted one leads to the confirmation, no schedule page; the confirmation shows the
    audience and nothing is sent or run until it is confirmed."""
    domain = "jobspage.launch.example"
    people = audience_of(domain, 5)
    log_in(page, sender)
    save_filter(page, "Jobs page readers", domain)
    name = "Jobs page appeal"
    campaign_id = create_campaign(page, name, "Jobs page readers")
    create_export_job(page, "Launch contrast export")  # a job that is run on request

    main_nav(page).get_by_role("link", name="Jobs", exact=True).click()
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    shot(page, "b1-jobs-page")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))
    expect(row.get_by_role("cell").nth(1)).to_have_text("Email Campaign")
    expect(row.get_by_role("button", name=f"Launch {name}…")).to_be_visible()
    expect(row.get_by_role("button", name=re.compile("Run"))).to_have_count(0)
    expect(page.get_by_role("button", name="Run Launch contrast export now")).to_be_visible()
    job_path = row.get_by_role("link", name=name, exact=True).get_attribute("href")
    job_id = int(re.fullmatch(r"/jobs/(\d+)", job_path).group(1))
    expect(page.locator(f'form[action="/jobs/{job_id}/run"]')).to_have_count(0)

    # Posting a run form for it anyway (an old tab, a script) leads to the confirmation.
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    posted = page.request.post(f"/jobs/{job_id}/run", form={"csrf_token": token})
    assert posted.ok and posted.url.endswith(f"/campaigns/{campaign_id}/launch"), posted.url
    assert runs_of(server.var_dir, job_id) == []
    # A campaign's launch time is its schedule: it has no schedule pages.
    assert page.request.get(f"/jobs/{job_id}/schedule").status == 404

    start = received_by(smtp_sink, f"@{domain}")
    row.get_by_role("button", name=f"Launch {name}…").click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign_id}/launch$"))
    expect_confirmation(page, name, len(people))
    expect(page.get_by_role("button", name="Launch now")).to_be_visible()
    shot(page, "b2-confirmation-from-jobs")
    page.wait_for_timeout(1_500)  # a send started by merely opening the page would show now
    assert received_by(smtp_sink, f"@{domain}") == start == Counter()
    assert runs_of(server.var_dir, job_id) == []

    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect_status(page, "Draft")
    expect(page.get_by_role("cell", name="Not launched yet.")).to_be_visible()
    expect(sends(page)).to_have_count(0)
    assert campaign_row(server.var_dir, campaign_id)[1:] == ("draft", None)


def test_a_group_send_leaves_the_campaigns_own_scheduled_launch_alone(
    page: Page, sender: Account, server: Server, smtp_sink, audience_of
):
    """A campaign scheduled for tomorrow, chosen in a group's step 2: after the group run
    succeeds, the campaign is still Scheduled for tomorrow with its scheduled run, and lists one
    more send "after success" that reached each supporter once."""
    domain = "group.launch.example"
    people = audience_of(domain, 6)
    log_in(page, sender)
    save_filter(page, "Group readers", domain)
    exports = ["Group step export A", "Group step export B"]  # a group has two jobs at least
    for export in exports:
        create_export_job(page, export)
    name = "Group-launched appeal"
    tomorrow = datetime.combine(datetime.now(ZONE).date() + timedelta(days=1), dtime(10, 0), tzinfo=ZONE)
    shown = local_text(tomorrow)
    campaign_id = create_campaign(page, name, "Group readers", launch_at=tomorrow.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Launch…").click()
    expect_confirmation(page, name, len(people))
    page.get_by_role("button", name="Schedule campaign").click()
    scheduled_id = land_on_run(page, name)
    expect_state(page, "Scheduled")
    job_id, _, _ = campaign_row(server.var_dir, campaign_id)
    with database(server.var_dir) as db:
        launch_at = db.execute("SELECT launch_at FROM campaign WHERE id = ?", (campaign_id,)).fetchone()[0]

    # A group: the exports, then (wizard step 2) this campaign after success.
    group = "Export then appeal"
    main_nav(page).get_by_role("link", name="Groups").click()
    page.get_by_role("button", name="Create group").click()
    page.get_by_label("Name").fill(group)
    page.get_by_role("button", name="Done").click()
    steps = page.get_by_role("navigation", name="Wizard steps")
    for export in exports:
        page.get_by_role("button", name=f"Add {export}").click()
        expect(page.get_by_role("button", name=f"Remove {export}")).to_be_visible()
    page.get_by_role("button", name="Next").click()
    expect(steps.locator('[aria-current="step"]')).to_have_text("Step 2: After success")
    page.get_by_role("checkbox", name="Launch campaigns").check()
    choice = page.get_by_role("checkbox", name=re.compile(rf"^{re.escape(name)}\b"))
    expect(page.get_by_text(f"Scheduled · own launch time {shown}")).to_be_visible()
    choice.check()
    expect(flash(page, f"“{name}” also has its own launch time ({shown})")).to_be_visible()
    expect(page.get_by_role("checkbox", name="Launch campaigns")).to_be_checked()
    shot(page, "c1-group-step-2")
    for label in ("Step 3: Notifications", "Step 4: Schedule"):
        page.get_by_role("button", name="Next").click()
        expect(steps.locator('[aria-current="step"]')).to_have_text(label)
    page.get_by_label("Never expires").check()
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("heading", name=group)).to_be_visible()
    expect(page.get_by_text(f"(also has its own launch time {shown})")).to_be_visible()

    page.get_by_role("button", name="Run now").click()
    expect(run_status(page)).to_contain_text(re.compile(r"State:\s*Completed\b"), timeout=RUN_TIMEOUT)
    group_run_id = int(re.search(r"/runs/(\d+)$", page.url).group(1))
    shot(page, "c2-group-run")

    open_campaign(page, name)
    expect_status(page, "Scheduled")
    launch_time = (
        page.get_by_role("term")
        .filter(has_text=re.compile("^Launch time$"))
        .locator("xpath=following-sibling::dd[1]")
    )
    expect(launch_time).to_have_text(shown)
    expect(sends(page)).to_have_count(2)
    own = sends(page).filter(has_text="This campaign's launch")
    expect(own.get_by_role("cell")).to_contain_text(
        ["#1", "This campaign's launch", f"Scheduled for {shown}", "Scheduled"]
    )
    after = sends(page).filter(has=page.get_by_role("link", name=f"{group} #1"))
    expect(after.get_by_role("cell").nth(1)).to_have_text(f"Group run {group} #1 after success")
    after.get_by_role("link", name="#2").click()
    land_on_run(page, name, number=2)
    expect_state(page, "Collecting")
    open_campaign(page, name)
    expect(after.get_by_role("cell").nth(3)).to_have_text("Collecting")
    expect(after.get_by_role("cell").nth(4)).to_have_text(str(len(people)))
    expect_status(page, "Scheduled")
    shot(page, "c3-campaign-after-group-send")

    assert received_by(smtp_sink, f"@{domain}") == Counter(people.keys())
    with database(server.var_dir) as db:
        now = db.execute(
            "SELECT status, launch_at, launch_run_id FROM campaign WHERE id = ?", (campaign_id,)
        ).fetchone()
        runs = db.execute(
            "SELECT id, state, trigger, origin_run_id FROM run WHERE job_id = ? ORDER BY id", (job_id,)
        ).fetchall()
    assert now == ("scheduled", launch_at, scheduled_id)
    assert runs == [
        (scheduled_id, "scheduled", "manual", None),
        (runs[1][0], "collecting", "group", group_run_id),
    ]
