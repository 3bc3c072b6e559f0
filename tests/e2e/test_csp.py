"""The whole foundation walk in chromium with the server's Content-Security-Policy enforced: an
import uploaded, mapped and run, the monitor updating live, an export downloaded (its row
leaving the monitor), History, a group built with the buttons and drag and drop, a schedule
with its live preview, a campaign and its sandboxed preview, a confirmation dialog, the admin
pages. Any console message about a refused script, style, frame or image fails the test."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Server, _create_user, log_in
from tests.e2e.pages import RUN_TIMEOUT, large_import_csv, main_nav
from tests.e2e.test_campaigns import create_campaign
from tests.e2e.test_foundation import (
    create_export,
    download_label,
    expect_state,
    monitor_row,
    save_and_run,
    small_import_csv,
    upload_import,
)
from tests.e2e.test_schedules import create_export_job, open_schedule, preview
from webapp.security import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.e2e

CSP_WORDS = re.compile(r"Content Security Policy|Refused to|CSP violation|evalDisallowed", re.IGNORECASE)
# Reported by every document (and frame) the moment the browser refuses something.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("CSP violation: " + event.violatedDirective + " blocked " +
                (event.blockedURI || "inline") + " in " + event.documentURI);
});
"""


@pytest.fixture(scope="module")
def walker(server: Server) -> Account:
    return _create_user(server, "csp@example.org", "csp-secret-password-5")


def watch(page: Page, problems: list[str], who: str) -> Page:
    """Collect the page's CSP complaints (its frames' too) and uncaught script errors."""
    page.add_init_script(REPORT_VIOLATIONS)
    page.on(
        "console",
        lambda message: (
            problems.append(f"{who} {message.type}: {message.text}")
            if CSP_WORDS.search(message.text)
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"{who} page error: {error}"))
    return page


def test_the_foundation_walk_runs_with_the_csp_enforced_and_nothing_refused(
    page: Page, another_person, walker: Account, super_admin: Account, tmp_path
):
    problems: list[str] = []
    watch(page, problems, "user")

    # The policy is the server's, and the watch sees what it refuses.
    response = page.goto("/login")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    page.evaluate("document.head.insertAdjacentHTML('beforeend', '<style>p {}</style>')")
    for _ in range(40):
        if problems:
            break
        page.wait_for_timeout(50)
    page.wait_for_timeout(500)
    assert any("style-src" in problem for problem in problems), problems
    problems.clear()
    expect(page.locator("article")).not_to_have_css("max-width", "none")  # app.css, not style=

    # An import: upload, mapping, run; the run page polls itself until Completed.
    log_in(page, walker)
    payload, _good = small_import_csv()
    payload = payload.replace(b"supporter", b"cspwalk")  # people of its own: the foundation
    # walk, which shares this server, counts its supporters as created
    upload_import(page, "CSP import", {"name": "csp.csv", "mimeType": "text/csv", "buffer": payload})
    save_and_run(page, "CSP import")
    expect_state(page, "Completed")

    # The monitor updates live (htmx polling) and stops polling once nothing runs: two large
    # imports, the second waiting in line behind the first, so that the monitor opens on work.
    large = large_import_csv(tmp_path, "csp")
    for name in ("CSP large import", "CSP second large import"):
        upload_import(page, name, large)
        page.get_by_role("button", name="Save job").click()
        expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    for name in ("CSP large import", "CSP second large import"):
        main_nav(page).get_by_role("link", name="Jobs", exact=True).click()
        page.get_by_role("button", name=f"Run {name} now").click()
        expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    main_nav(page).get_by_role("link", name="Job monitor").click()
    expect(page.locator("#monitor-poller")).to_have_attribute("hx-trigger", "every 2s")
    last = monitor_row(page, "CSP second large import")  # queued or running when rendered
    expect(last.get_by_role("cell").nth(5)).to_have_text("Completed", timeout=RUN_TIMEOUT)
    expect(page.locator("#monitor-poller")).not_to_have_attribute("hx-trigger", re.compile(".*"))

    # An export, downloaded from the monitor: its row leaves (app.js), then History keeps it.
    create_export(page, "CSP export")
    expect_state(page, "Completed")
    main_nav(page).get_by_role("link", name="Job monitor").click()
    with page.expect_download() as info:
        page.get_by_role("link", name=download_label("CSP export")).click()
    assert info.value.suggested_filename == "CSP export - export #1.csv"
    expect(monitor_row(page, "CSP export")).to_have_count(0)  # without a reload
    main_nav(page).get_by_role("link", name="History").click()
    expect(monitor_row(page, "CSP export")).to_have_count(1)

    # A schedule: the Repeat choice swaps its fields in and the preview lists the next runs.
    create_export_job(page, "CSP scheduled export")
    open_schedule(page, "CSP scheduled export")
    page.get_by_role("switch", name="Schedule on").check()
    with page.expect_response(lambda response: "/schedule/fields?" in response.url):
        page.get_by_label("Repeat").select_option(label="Days of week")
    days = page.get_by_role("group", name="Days")
    days.get_by_text("Monday", exact=True).click()
    page.get_by_label("Time", exact=True).fill("01:30")
    expect(preview(page).get_by_role("heading")).to_have_text("Next 10 runs")
    page.get_by_role("button", name="Save schedule").click()
    expect(page.get_by_role("heading", name="CSP scheduled export", exact=True)).to_be_visible()

    # A group: jobs added with the buttons (htmx swaps), then reordered by drag and drop.
    main_nav(page).get_by_role("link", name="Groups").click()
    page.get_by_role("button", name="Create group").click()
    page.get_by_label("Name").fill("CSP chain")
    page.get_by_role("button", name="Done").click()
    group_jobs = page.locator('[data-list="group"] .job-name')
    for job in ("CSP export", "CSP scheduled export"):
        page.get_by_role("button", name=f"Add {job}").click()
        expect(page.get_by_role("button", name=f"Remove {job}")).to_be_visible()
    expect(group_jobs).to_have_text(["CSP export", "CSP scheduled export"])
    page.locator('[data-list="group"] li', has_text="CSP export").first.drag_to(
        page.locator('[data-list="group"] li', has_text="CSP scheduled export"),
        target_position={"x": 10, "y": 30},
    )
    expect(group_jobs).to_have_text(["CSP scheduled export", "CSP export"])

    # A confirmation (app.js, data-confirm): dismissed, nothing happens; accepted, it is done.
    create_export_job(page, "CSP throwaway")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Delete job").click()
    expect(page.get_by_role("heading", name="CSP throwaway", exact=True)).to_be_visible()
    assert asked == ["Delete this job? Its runs stay in History."]
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete job").click()
    expect(page.get_by_role("status").filter(has_text="deleted")).to_be_visible()

    # A campaign and its preview: the email's own HTML (inline styles and all) in a sandbox.
    create_campaign(page, "CSP campaign", notify="owner@park.example")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="Preview “CSP campaign”")).to_be_visible()
    frame = page.frame_locator('iframe[title="HTML preview"]')
    expect(frame.get_by_text("Dear")).to_be_visible()
    expect(page.get_by_label("Plain-text preview")).to_have_css("white-space", "pre-wrap")
    main_nav(page).get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("link", name="CSP campaign")).to_be_visible()

    # Error pages and the admin pages (as the super admin).
    assert page.goto("/runs/999999").status == 404
    admin = watch(another_person(), problems, "admin")
    log_in(admin, super_admin)
    for link in ("Users", "Settings", "Audit log", "Supporters"):
        main_nav(admin).get_by_role("link", name=link).click()
        expect(admin.get_by_role("heading", level=1)).to_be_visible()

    assert problems == []
