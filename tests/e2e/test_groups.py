"""Groups end to end in chromium against the real launcher: Create Group, step 1 with the
keyboard buttons (HTMX swaps the lists, focus stays on the moved job) and drag and drop,
notifications refused then saved, Activate refused without an expiration then accepted, and a
Run now whose group page shows both steps completed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Server, _create_user, log_in
from tests.e2e.test_schedules import create_export_job

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chainer(server: Server) -> Account:
    return _create_user(server, "chainer@example.org", "chainer-secret-password-4")


def _group_names(page: Page) -> list[str]:
    return page.locator('[data-list="group"] .job-name').all_inner_texts()


def test_build_activate_and_run_a_group(context, chainer: Account):
    page = context.new_page()
    log_in(page, chainer)
    for name in ("First export", "Second export", "Third export"):
        create_export_job(page, name)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Groups").click()
    expect(page.get_by_role("heading", name="Groups", exact=True)).to_be_visible()
    page.get_by_role("button", name="Create group").click()
    page.get_by_label("Name").fill("Nightly chain")
    page.get_by_label("Description").fill("Three exports in order")
    page.get_by_role("button", name="Done").click()
    steps = page.get_by_role("navigation", name="Wizard steps")
    expect(steps.locator('[aria-current="step"]')).to_have_text("Step 1: Jobs")

    for name in ("First export", "Second export", "Third export"):
        page.get_by_role("button", name=f"Add {name}").click()
        expect(page.get_by_role("button", name=f"Remove {name}")).to_be_visible()
    assert _group_names(page) == ["First export", "Second export", "Third export"]
    page.get_by_role("button", name="Move Third export up").click()
    expect(page.locator('[data-list="group"] .job-name').nth(1)).to_have_text("Third export")
    expect(page.get_by_role("button", name="Move Third export up")).to_be_focused()

    # drag the first job below the last one
    page.locator('[data-list="group"] li', has_text="First export").drag_to(
        page.locator('[data-list="group"] li', has_text="Second export"),
        target_position={"x": 10, "y": 30})
    expect(page.locator('[data-list="group"] .job-name')).to_have_text(
        ["Third export", "Second export", "First export"])
    page.get_by_role("button", name="Next").click()
    expect(steps.locator('[aria-current="step"]')).to_have_text("Step 2: After success")
    expect(page).to_have_url(re.compile(r"/edit/2$"))
    page.get_by_role("button", name="Next").click()

    page.get_by_label("Notify after failure").fill("oncall@example.org, not-an-address")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("“not-an-address” is not an email address.")).to_be_visible()
    page.get_by_label("Notify after failure").fill("oncall@example.org")
    page.get_by_role("button", name="Next").click()
    expect(steps.locator('[aria-current="step"]')).to_have_text("Step 4: Schedule")

    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_text("Set an expiration date or choose Never expires before saving."))\
        .to_be_visible()
    page.get_by_label("Never expires").check()
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("heading", name="Nightly chain")).to_be_visible()
    expect(page.get_by_text("It has no schedule: it runs on demand only.")).to_be_visible()
    steps_list = page.locator("ol.group-steps li")
    expect(steps_list).to_have_text(["Third export User Data Export",
                                     "Second export User Data Export",
                                     "First export User Data Export"])

    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("heading", name="Steps")).to_be_visible()
    timeline = page.get_by_label("Steps of run #1")
    expect(timeline.get_by_text("Completed")).to_have_count(3, timeout=30_000)
    page.get_by_role("button", name="Group", exact=True).click()
    expect(page.get_by_label("Steps of run #1").get_by_text("Completed")).to_have_count(3)
