"""The group wizard's step 1 in chromium: every change to the list (the Add, Move and Remove
buttons, drag and drop) is saved at once and kept across a reload; with fewer than 2 jobs the
page says only what is missing; after Activate the address bar shows the group's page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Server, _create_user, log_in
from tests.e2e.pages import main_nav
from tests.e2e.test_schedules import create_export_job, flash

pytestmark = pytest.mark.e2e

ADD_MORE = "Add at least 2 jobs to the group."


@pytest.fixture(scope="module")
def builder(server: Server) -> Account:
    return _create_user(server, "builder@example.org", "builder-secret-password-5")


def group_names(page: Page):
    return page.get_by_role("list", name="Group", exact=True).locator(".job-name")


def jobs_names(page: Page):
    return page.get_by_role("list", name="Jobs", exact=True).locator(".job-name")


def test_every_change_is_saved_at_once_and_activate_shows_the_group_page(context, builder: Account):
    page = context.new_page()
    log_in(page, builder)
    a, b, c = "Wizard export A", "Wizard export B", "Wizard export C"
    for name in (a, b, c):
        create_export_job(page, name)

    main_nav(page).get_by_role("link", name="Groups").click()
    page.get_by_role("button", name="Create group").click()
    page.get_by_label("Name").fill("Kept chain")
    page.get_by_role("button", name="Done").click()
    steps = page.get_by_role("navigation", name="Wizard steps")
    expect(steps.locator('[aria-current="step"]')).to_have_text("Step 1: Jobs")
    group_id = re.search(r"/groups/(\d+)/edit/1$", page.url).group(1)
    expect(page.get_by_text("Every change is saved at once.")).to_be_visible()
    expect(flash(page, ADD_MORE)).to_be_visible()
    created = page.get_by_text("“Kept chain” created as a draft")
    expect(created).to_be_visible()

    # One job: saved, and the page says only what is missing (no "Saved" beside it); the
    # message about creating the group has served and goes.
    page.get_by_role("button", name=f"Add {a}").click()
    expect(created).to_have_count(0)
    expect(page.get_by_role("button", name=f"Remove {a}")).to_be_focused()
    expect(flash(page, ADD_MORE)).to_be_visible()
    expect(page.get_by_text(re.compile(r"Saved"))).to_have_count(0)
    page.reload()
    expect(group_names(page)).to_have_text([a])
    expect(flash(page, ADD_MORE)).to_be_visible()

    # Two and three jobs, and a move: each saved at once.
    page.get_by_role("button", name=f"Add {b}").click()
    expect(flash(page, "Saved.")).to_be_visible()
    expect(page.get_by_text(ADD_MORE)).to_have_count(0)
    page.get_by_role("button", name=f"Add {c}").click()
    expect(page.get_by_role("button", name=f"Remove {c}")).to_be_visible()
    page.get_by_role("button", name=f"Move {c} up").click()
    expect(group_names(page)).to_have_text([a, c, b])
    page.reload()
    expect(group_names(page)).to_have_text([a, c, b])
    expect(jobs_names(page)).to_have_count(0)

    # Drag and drop is saved the same way: the last job dragged above the first.
    page.get_by_role("list", name="Group", exact=True).get_by_role("listitem").filter(has_text=b).drag_to(
        page.get_by_role("list", name="Group", exact=True).get_by_role("listitem").filter(has_text=a),
        target_position={"x": 10, "y": 3},
    )
    expect(flash(page, "Saved.")).to_be_visible()
    expect(group_names(page)).to_have_text([b, a, c])
    page.reload()
    expect(group_names(page)).to_have_text([b, a, c])

    page.get_by_role("button", name=f"Remove {a}").click()
    expect(group_names(page)).to_have_text([b, c])
    page.reload()
    expect(group_names(page)).to_have_text([b, c])
    expect(jobs_names(page)).to_have_text([a])

    for label in ("Step 2: After success", "Step 3: Notifications", "Step 4: Schedule"):
        page.get_by_role("button", name="Next").click()
        expect(steps.locator('[aria-current="step"]')).to_have_text(label)
    page.get_by_label("Never expires").check()
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("heading", name="Kept chain")).to_be_visible()
    expect(flash(page, "“Kept chain” is active.")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/groups/{group_id}$"))
    assert page.url.endswith(f"/groups/{group_id}"), page.url
    expect(page.locator("ol.group-steps li")).to_have_text([f"{b} User Data Export", f"{c} User Data Export"])
    page.reload()  # the address is the group's page: a reload shows it again, posts nothing
    expect(page.get_by_role("heading", name="Kept chain")).to_be_visible()
    expect(flash(page, "is active")).to_have_count(0)
