"""The staff guide's walk (docs/guide.md): every task the guide describes, done as a staff member
would in chromium against the real launcher, with a screenshot of each step worth showing
written to docs/screenshots/ (1280×800) so the guide's pictures stay those of the product.

Each screenshot is taken right after the assertions that the page shows what the guide says.
The screenshots are a side effect: in a read-only checkout the walk still runs and passes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Locator, Page, expect

from tests.e2e.conftest import REPO_ROOT, Account, Server, _create_user, log_in
from tests.e2e.pages import RUN_TIMEOUT, main_nav, open_new_job, run_status

pytestmark = pytest.mark.e2e

SHOTS = REPO_ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
IMPORT_NAME = "Park friends"
EXPORT_NAME = "Newsletter list"
SECOND_EXPORT = "Board report list"
CAMPAIGN_NAME = "Spring opening news"
GROUP_NAME = "Monday morning lists"
# 300 opted-in supporters and one line the import rejects (a bad ZIP code on line 7).
PEOPLE = 300
BAD_LINE = 7
# Held per message by the SMTP sink while the campaign sends, so Stop lands mid-send: 300
# messages over 4 connections at 0.15 s take about 11 s.
SEND_DELAY = 0.15


# --------------------------------------------------------------------------- helpers


def shot(target: Page | Locator, name: str, *, top: bool = False) -> None:
    """docs/screenshots/<name>.png of the viewport (a Page; `top`: the field being typed in
    left and the page scrolled back to its top) or of one region (a Locator). Skipped when
    the checkout cannot be written to."""
    if isinstance(target, Page) and top:
        target.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
        target.wait_for_load_state("networkidle")
    if isinstance(target, Page):
        png = target.screenshot(full_page=False, animations="disabled")
    else:
        png = target.screenshot(animations="disabled")
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        if os.access(SHOTS, os.W_OK):
            (SHOTS / f"{name}.png").write_bytes(png)
    except OSError:
        pass  # a read-only checkout: the walk itself is the test


def flash(page: Page, text: str | re.Pattern) -> Locator:
    return page.get_by_role("status").filter(has_text=text)


def expect_state(page: Page, state: str, timeout: int = RUN_TIMEOUT) -> None:
    expect(run_status(page)).to_contain_text(re.compile(rf"State:\s*{state}\b"), timeout=timeout)


def shown_count(page: Page, name: str, of: str = "Counts") -> Locator:
    term = page.get_by_role("term").filter(has_text=re.compile(rf"^{name}$"))
    return page.get_by_label(of).locator("div").filter(has=term).get_by_role("definition")


def row_of(page: Page, name: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))


def accept_next_dialog(page: Page) -> list[str]:
    messages: list[str] = []

    def accept(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    return messages


def supporters_csv() -> bytes:
    lines = ["Email,First name,Last name,City,State,Zip,Opted in"]
    for i in range(1, PEOPLE + 2):
        zip_code = "1234" if len(lines) + 1 == BAD_LINE else f"{62700 + i % 100:05d}"
        lines.append(f"friend{i:03d}@example.org,Friend{i},Park{i},Springfield,IL,{zip_code},yes")
    return ("\n".join(lines) + "\n").encode()


def new_person(new_context) -> Page:
    ctx = new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(10_000)
    return ctx.new_page()


@pytest.fixture(scope="module")
def staff(server: Server) -> Account:
    return _create_user(server, "robin@example.org", "robin-secret-password-5")


# ------------------------------------------------------------------------ the tasks


def import_supporters(page: Page) -> None:
    open_new_job(page, "import")
    expect(page.get_by_role("heading", name="New User Data Import")).to_be_visible()
    page.get_by_label("Job name").fill(IMPORT_NAME)
    page.get_by_label("CSV file").set_input_files(
        {"name": "park-friends.csv", "mimeType": "text/csv", "buffer": supporters_csv()}
    )
    expect(page.get_by_role("button", name="Upload and continue")).to_be_enabled()
    shot(page, "import-1-upload")

    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_role("heading", name="Map columns")).to_be_visible()
    preview = page.get_by_role("table", name="Preview of the first rows")
    expect(preview.locator("tbody").get_by_role("row")).to_have_count(5)
    for column, field in [("Email", "email"), ("Zip", "zip"), ("Opted in", "opted_in")]:
        expect(page.get_by_role("combobox", name=f"Field for column “{column}”")).to_have_value(field)
    shot(page, "import-2-mapping")

    page.get_by_role("button", name="Save and run now").click()
    expect(page.get_by_role("heading", name=f"{IMPORT_NAME} run #1")).to_be_visible()
    expect_state(page, "Completed")
    expect(shown_count(page, "Created")).to_have_text(str(PEOPLE))
    expect(shown_count(page, "Rejected")).to_have_text("1")
    expect(
        page.get_by_role("cell", name=re.compile(rf"^line {BAD_LINE}: '1234' is not a valid"))
    ).to_be_visible()
    shot(page, "import-3-run")


def export_supporters(page: Page) -> None:
    open_new_job(page, "export")
    expect(page.get_by_role("heading", name="New User Data Export")).to_be_visible()
    page.get_by_label("Job name").fill(EXPORT_NAME)
    page.get_by_role("radio", name="All supporters").check()
    expect(page.get_by_role("group", name="Fields").get_by_role("checkbox", name="Email")).to_be_checked()
    shot(page, "export-1-form")

    page.get_by_role("button", name="Save and run now").click()
    expect(page.get_by_role("heading", name=f"{EXPORT_NAME} run #1")).to_be_visible()
    expect_state(page, "Completed")
    expect(page.get_by_role("button", name=re.compile("^Download results"))).to_be_visible()

    main_nav(page).get_by_role("link", name="Job monitor").click()
    expect(page.get_by_role("heading", name="Job monitor")).to_be_visible()
    row = row_of(page, EXPORT_NAME)
    download = row.get_by_role("link", name=f"Download results of {EXPORT_NAME} run #1")
    expect(download).to_be_visible()
    expect(row_of(page, IMPORT_NAME)).to_contain_text("Completed")
    shot(page, "export-2-monitor")
    with page.expect_download() as info:
        download.click()
    assert info.value.suggested_filename == f"{EXPORT_NAME} - export #1.csv"
    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    assert "friend001@example.org" in text
    expect(row_of(page, EXPORT_NAME)).to_have_count(0)  # downloaded: it left the monitor


def schedule_export(page: Page) -> None:
    main_nav(page).get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_role("link", name=EXPORT_NAME, exact=True).click()
    expect(page.get_by_role("heading", name=EXPORT_NAME, exact=True)).to_be_visible()
    page.get_by_role("button", name="Schedule", exact=True).click()
    expect(page.get_by_role("heading", name=f"Schedule “{EXPORT_NAME}”")).to_be_visible()
    page.get_by_role("switch", name="Schedule on").check()
    # the day toggles come with the page's answer to the Repeat choice
    with page.expect_response(lambda r: "/schedule/fields?" in r.url and "days_of_week" in r.url):
        page.get_by_label("Repeat").select_option(label="Days of week")
    days = page.get_by_role("group", name="Days")
    for day in ("Monday", "Thursday"):
        days.get_by_text(day, exact=True).click()
        expect(days.get_by_role("checkbox", name=day, exact=True)).to_be_checked()
    page.get_by_label("Time", exact=True).fill("07:30")
    runs = page.get_by_role("region", name="Next runs")
    expect(runs.get_by_role("listitem")).to_have_count(10)
    expect(runs.get_by_role("listitem").first).to_have_text(re.compile(r" 7:30 AM E[SD]T$"))
    shot(page, "schedule-1-days", top=True)

    page.get_by_role("button", name="Save schedule").click()
    expect(flash(page, "Schedule saved.")).to_be_visible()
    expect(page.get_by_text("On — every Monday and Thursday at 7:30 AM")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="Planned").filter(has_text="Next")).to_have_count(1)
    shot(page, "schedule-2-saved")


def compose_launch_and_stop_a_campaign(page: Page, sink) -> None:
    main_nav(page).get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("heading", name="Campaigns", exact=True)).to_be_visible()
    page.get_by_role("button", name="New campaign").click()
    expect(page.get_by_role("heading", name="New campaign")).to_be_visible()
    page.get_by_label("Campaign name").fill(CAMPAIGN_NAME)
    page.get_by_label("From address").fill("Park Friends <news@park.example>")
    page.get_by_label("Subject").fill("Spring is here, {{ first_name }}")
    page.get_by_label("Plain-text body").fill(
        "Dear {{ first_name }},\nThe park opens its spring season on Saturday. Thank you!\n"
    )
    page.get_by_label("HTML body").fill(
        "<p>Dear {{ first_name }},</p>\n<p>The park opens its spring season on Saturday. Thank you!</p>"
    )
    page.get_by_role("group", name="Audience").get_by_role("radio", name="All opted-in supporters").check()
    page.get_by_label("Notification email address").fill("robin@example.org")
    expect(page.get_by_label("Campaign name")).to_have_value(CAMPAIGN_NAME)
    shot(page, "campaign-1-compose", top=True)

    page.get_by_role("button", name="Save campaign").click()
    expect(flash(page, f"Campaign “{CAMPAIGN_NAME}” saved as a draft.")).to_be_visible()
    page.get_by_role("button", name="Launch…", exact=True).click()
    expect(page.get_by_role("heading", name=f"Launch “{CAMPAIGN_NAME}”?")).to_be_visible()
    # the audience: the supporters imported above (and any other test's opted-in supporters)
    question = re.compile(r"The audience has ([\d,]+) supporters; .* so ([\d,]+) will be emailed\.")
    expect(page.get_by_role("article")).to_contain_text(question)
    to_email = int(question.search(page.get_by_role("article").inner_text()).group(2).replace(",", ""))
    assert to_email >= PEOPLE
    expect(page.get_by_role("button", name="Launch now")).to_be_visible()
    shot(page, "campaign-2-launch")

    start = len(sink.messages)
    sink.delay = SEND_DELAY
    try:
        page.get_by_role("button", name="Launch now").click()
        expect(page.get_by_role("heading", name=f"{CAMPAIGN_NAME} run #1")).to_be_visible()
        expect(flash(page, f"“{CAMPAIGN_NAME}” launched.")).to_be_visible()
        progress = run_status(page).get_by_role("progressbar", name="Run progress")
        expect(progress).to_have_attribute("value", re.compile(r"^[1-9]\d?$"), timeout=RUN_TIMEOUT)
        expect_state(page, "Processing")
        shot(page, "campaign-3-sending")

        questions = accept_next_dialog(page)
        run_status(page).get_by_role("button", name="Stop").click()
        expect_state(page, "Cancelled")
        assert questions and questions[0].startswith(f"Stop “{CAMPAIGN_NAME}”?"), questions
    finally:
        sink.delay = 0.0
    sent = int(shown_count(page, "Sent", of="Contact results").inner_text().replace(",", ""))
    assert 0 < sent < to_email
    page.wait_for_timeout(500)
    assert len(sink.messages) - start == sent  # what the page says went out, and no more
    expect(page.get_by_label("Log")).to_contain_text("Stop requested by")
    shot(page, "campaign-4-stopped")

    main_nav(page).get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name=CAMPAIGN_NAME, exact=True).click()
    expect(page.get_by_text("This campaign was stopped part-way")).to_be_visible()
    expect(page.get_by_role("button", name="Send to the remaining…")).to_be_visible()
    expect(page.get_by_role("button", name="Copy into a new draft")).to_be_visible()
    shot(page, "campaign-5-remaining")


def build_and_run_a_group(page: Page) -> None:
    open_new_job(page, "export")
    page.get_by_label("Job name").fill(SECOND_EXPORT)
    page.get_by_role("button", name="Save job").click()
    expect(flash(page, f"“{SECOND_EXPORT}” was saved.")).to_be_visible()

    main_nav(page).get_by_role("link", name="Groups").click()
    expect(page.get_by_role("heading", name="Groups", exact=True)).to_be_visible()
    page.get_by_role("button", name="Create group").click()
    page.get_by_label("Name").fill(GROUP_NAME)
    page.get_by_label("Description").fill("Refresh the supporters, then the two lists")
    page.get_by_role("button", name="Done").click()
    steps = page.get_by_role("navigation", name="Wizard steps")
    expect(steps.locator('[aria-current="step"]')).to_have_text("Step 1: Jobs")
    jobs = [IMPORT_NAME, EXPORT_NAME, SECOND_EXPORT]
    for job in jobs:
        page.get_by_role("button", name=f"Add {job}").click()
        expect(page.get_by_role("button", name=f"Remove {job}")).to_be_visible()
    expect(page.locator('[data-list="group"] .job-name')).to_have_text(jobs)
    shot(page, "group-1-steps")

    for label in ("Step 2: After success", "Step 3: Notifications", "Step 4: Schedule"):
        page.get_by_role("button", name="Next").click()
        expect(steps.locator('[aria-current="step"]')).to_have_text(label)
    page.get_by_label("Never expires").check()
    shot(page, "group-2-activate")
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("heading", name=GROUP_NAME)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/groups/\d+$"))

    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("heading", name="Steps")).to_be_visible()
    expect_state(page, "Completed")
    expect(page.get_by_label("Steps of run #1").get_by_text("Completed")).to_have_count(3)
    shot(page, "group-3-run")


def look_back_in_history(page: Page) -> None:
    main_nav(page).get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    expect(row_of(page, EXPORT_NAME).first).to_contain_text("Completed")
    expect(row_of(page, CAMPAIGN_NAME)).to_contain_text("Cancelled")
    expect(page.get_by_role("columnheader", name="User")).to_have_count(0)
    shot(page, "history-1")


def act_for_the_user(page: Page, staff: Account) -> None:
    """The super admin: every user's runs, a result downloaded on the user's behalf, audited."""
    main_nav(page).get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    expect(page.get_by_role("columnheader", name="User")).to_be_visible()
    page.get_by_role("combobox", name=re.compile(r"^User\b")).select_option(label=staff.email)
    page.get_by_role("button", name="Filter").click()
    row = row_of(page, IMPORT_NAME).filter(has_text="run #1")
    expect(row.get_by_role("cell", name=staff.email, exact=True)).to_be_visible()
    link = row.get_by_role("link", name=f"Download results of {IMPORT_NAME} run #1")
    expect(link).to_be_visible()
    shot(page, "admin-1-on-behalf")
    with page.expect_download() as info:
        link.click()
    result_name = f"{IMPORT_NAME} - import report #1.csv"
    assert info.value.suggested_filename == result_name

    main_nav(page).get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    page.get_by_role("combobox", name=re.compile(r"^Action\b")).select_option(
        label="Result downloaded for its owner"
    )
    page.get_by_role("button", name="Filter").click()
    entry = page.get_by_role("row").filter(has_text=f"Downloaded {result_name} on behalf of {staff.email}")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("Result downloaded for its owner")
    shot(page, "admin-2-audit")


# ----------------------------------------------------------------------------- the walk


def test_the_staff_guide_walk(new_context, staff: Account, super_admin: Account, smtp_sink):
    """Import, export, schedule, campaign (launch, stop), group, History as a staff member;
    then the super admin's view of that staff member's runs and the audit of a download."""
    page = new_person(new_context)
    log_in(page, staff)
    import_supporters(page)
    export_supporters(page)
    schedule_export(page)
    compose_launch_and_stop_a_campaign(page, smtp_sink)
    build_and_run_a_group(page)
    look_back_in_history(page)

    admin = new_person(new_context)
    log_in(admin, super_admin)
    act_for_the_user(admin, staff)
