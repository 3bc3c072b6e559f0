"""Groups end to end in chromium against the real launcher: Create Group, step 1 with the
keyboard buttons (HTMX swaps the lists, focus stays on the moved job) and drag and drop,
notifications refused then saved, Activate refused without an expiration then accepted, and a
Run now whose group page shows both steps completed."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Server, _create_user, log_in
from tests.e2e.pages import RUN_TIMEOUT, ZONE, large_import_csv, main_nav, open_new_job
from tests.e2e.test_foundation import upload_import
from tests.e2e.test_schedules import (
    PAST_SLOT,
    create_export_job,
    flash,
    local_text,
    now_local,
    pick_hourly_slot,
    preview,
    settle_inside_a_slot,
)
from webapp.jobs.schedule_forms import clock_text, slot_minutes_text

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
    page.reload()  # the buttons saved each change
    assert _group_names(page) == ["First export", "Second export", "Third export"]
    page.get_by_role("button", name="Move Third export up").click()
    expect(page.locator('[data-list="group"] .job-name').nth(1)).to_have_text("Third export")
    expect(page.get_by_role("button", name="Move Third export up")).to_be_focused()

    # drag the first job below the last one
    page.locator('[data-list="group"] li', has_text="First export").drag_to(
        page.locator('[data-list="group"] li', has_text="Second export"), target_position={"x": 10, "y": 30}
    )
    expect(page.locator('[data-list="group"] .job-name')).to_have_text(
        ["Third export", "Second export", "First export"]
    )
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
    expect(page.get_by_text("Set an expiration date or choose Never expires before saving.")).to_be_visible()
    page.get_by_label("Never expires").check()
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("heading", name="Nightly chain")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/groups/\d+$"))  # the group's page, not the wizard's
    expect(page.get_by_text("It has no schedule: it runs on demand only.")).to_be_visible()
    steps_list = page.locator("ol.group-steps li")
    expect(steps_list).to_have_text(
        ["Third export User Data Export", "Second export User Data Export", "First export User Data Export"]
    )

    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("heading", name="Steps")).to_be_visible()
    timeline = page.get_by_label("Steps of run #1")
    expect(timeline.get_by_text("Completed")).to_have_count(3, timeout=RUN_TIMEOUT)
    page.get_by_role("button", name="Group", exact=True).click()
    expect(page.get_by_label("Steps of run #1").get_by_text("Completed")).to_have_count(3)


# ------------------------------------------------------------------ helpers for the tests below


def build_group(page: Page, name: str, jobs: list[str]) -> None:
    """Groups → Create group, the jobs added in order, Next through steps 2 and 3; ends on
    wizard step 4 (Schedule)."""
    main_nav(page).get_by_role("link", name="Groups").click()
    expect(page.get_by_role("heading", name="Groups", exact=True)).to_be_visible()
    page.get_by_role("button", name="Create group").click()
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Done").click()
    steps = page.get_by_role("navigation", name="Wizard steps")
    expect(steps.locator('[aria-current="step"]')).to_have_text("Step 1: Jobs")
    for job in jobs:
        page.get_by_role("button", name=f"Add {job}").click()
        expect(page.get_by_role("button", name=f"Remove {job}")).to_be_visible()
    expect(page.locator('[data-list="group"] .job-name')).to_have_text(jobs)
    for label in ("Step 2: After success", "Step 3: Notifications", "Step 4: Schedule"):
        page.get_by_role("button", name="Next").click()
        expect(steps.locator('[aria-current="step"]')).to_have_text(label)


def activate_never_expiring(page: Page, name: str) -> None:
    page.get_by_label("Never expires").check()
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/groups/\d+$"))


# ----------------------------------------------------------------------------- more tests


def test_activate_a_group_with_an_hourly_slot(context, chainer: Account):
    """Step 4 → Set schedule → an hourly slot tomorrow → back to step 4; Expires on; Activate:
    Active with its next run at the random minute inside the slot (group page and Groups page).
    A slot that began today is refused on the group's schedule page."""
    page = context.new_page()
    log_in(page, chainer)
    for job in ("Slot export A", "Slot export B"):
        create_export_job(page, job)
    name = "Hourly slot chain"
    build_group(page, name, ["Slot export A", "Slot export B"])
    expect(page.get_by_text("No schedule: the group runs only when started with Run now.")).to_be_visible()

    # A slot that already began today is refused.
    page.get_by_role("button", name="Set schedule").click()
    expect(page.get_by_role("heading", name=f"Schedule “{name}”")).to_be_visible()
    now = settle_inside_a_slot()
    today, hour, slot = now.date(), now.hour, now.minute // 15
    pick_hourly_slot(page, today, hour, slot)
    expect(preview(page).get_by_role("alert")).to_have_text(PAST_SLOT)
    page.get_by_role("button", name="Save schedule").click()
    expect(page.get_by_role("heading", name=f"Schedule “{name}”")).to_be_visible()
    expect(page.get_by_label("Hour")).to_have_accessible_description(PAST_SLOT)
    expect(flash(page, "Schedule saved")).to_have_count(0)
    page.get_by_role("button", name="Back to the group").click()
    steps = page.get_by_role("navigation", name="Wizard steps")
    expect(steps.locator('[aria-current="step"]')).to_have_text("Step 4: Schedule")
    expect(page.get_by_text("No schedule: the group runs only when started with Run now.")).to_be_visible()

    # The same slot tomorrow is saved, with a random minute inside it.
    page.get_by_role("button", name="Set schedule").click()
    expect(page.get_by_role("heading", name=f"Schedule “{name}”")).to_be_visible()
    tomorrow = today + timedelta(days=1)
    pick_hourly_slot(page, tomorrow, hour, slot)
    expect(preview(page).get_by_text(PAST_SLOT)).to_have_count(0)
    page.get_by_role("button", name="Save schedule").click()
    expect(steps.locator('[aria-current="step"]')).to_have_text("Step 4: Schedule")
    expect(page).to_have_url(re.compile(r"/edit/4$"))
    saved = flash(page, "Schedule saved.")
    expect(saved).to_contain_text(re.compile(r"the minute :\d{2} was picked at random in its slot\.$"))
    minute = int(re.search(r"the minute :(\d{2}) was picked", saved.inner_text()).group(1))
    assert slot * 15 <= minute <= slot * 15 + 14, f":{minute:02d} is outside the slot"
    described = (
        f"daily at {clock_text(hour, minute)} (its minute picked in {slot_minutes_text(hour, slot)}), "
        "New York time"
    )
    expect(
        page.get_by_text(f"Off — {described}; it is switched on when the group is activated.")
    ).to_be_visible()

    # Activate needs an expiration: a date in a month.
    expires = now_local().date() + timedelta(days=30)
    page.get_by_label("Expires on").fill(expires.isoformat())
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    next_run = local_text(datetime.combine(tomorrow, dtime(hour, minute), tzinfo=ZONE))
    assert re.search(r" E[SD]T$", next_run)
    expect(flash(page, "is active")).to_have_text(f"“{name}” is active. Next run: {next_run}.")
    expect(page.get_by_role("heading", name=name).get_by_text("Active")).to_be_visible()
    schedule = (
        page.get_by_role("term")
        .filter(has_text=re.compile("^Schedule$"))
        .locator("xpath=following-sibling::dd[1]")
    )
    expect(schedule).to_contain_text(f"On — {described}; next run {next_run}")
    expiry = (
        page.get_by_role("term")
        .filter(has_text=re.compile("^Expiration$"))
        .locator("xpath=following-sibling::dd[1]")
    )
    expect(expiry).to_have_text(f"Expires {expires:%b} {expires.day}, {expires.year}")

    main_nav(page).get_by_role("link", name="Groups").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))
    cells = row.get_by_role("cell")
    expect(cells.nth(1)).to_contain_text("Active")
    expect(cells.nth(2)).to_have_text("Never run")
    expect(cells.nth(3)).to_have_text(next_run)
    expect(row.get_by_role("button", name=f"Deactivate {name}")).to_be_visible()


def test_run_now_shows_the_chain_in_the_monitor(context, chainer: Account, tmp_path: Path):
    """Run now of a three-step group (a large import, then two exports): the Job monitor shows
    the group run's row, whose Steps button unfolds each step's row "step N" beneath it (the
    steps started after the page was drawn join the fold), all reaching Completed.
    (The large first step keeps the chain running while the monitor opens: a group run has no
    result, so a chain finished before that would already have left the monitor.)"""
    page = context.new_page()
    log_in(page, chainer)
    jobs = ["Chain import 1", "Chain export 2", "Chain export 3"]
    upload_import(page, jobs[0], large_import_csv(tmp_path, "ch"))
    page.get_by_role("button", name="Save job").click()
    expect(page.get_by_role("heading", name=jobs[0], exact=True)).to_be_visible()
    for job in jobs[1:]:
        create_export_job(page, job)
    name = "Monitored chain"
    build_group(page, name, jobs)
    activate_never_expiring(page, name)
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("heading", name="Steps")).to_be_visible()

    main_nav(page).get_by_role("link", name="Job monitor").click()
    expect(page.get_by_role("heading", name="Job monitor")).to_be_visible()
    group_row = page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))
    expect(group_row).to_have_count(1)
    unfold = group_row.get_by_role("button", name=f"Show the steps of {name} run #1")
    expect(unfold).to_have_attribute("aria-expanded", "false")
    unfold.click()
    expect(unfold).to_have_attribute("aria-expanded", "true")
    expect(group_row.get_by_role("cell").nth(5)).to_contain_text("Completed", timeout=RUN_TIMEOUT)
    for number, job in enumerate(jobs, start=1):
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=job, exact=True))
        expect(row).to_have_count(1)
        expect(row.get_by_role("cell").nth(2)).to_contain_text(f"{job} run #1")
        expect(row.get_by_text(f"step {number}", exact=True)).to_be_visible()
        expect(row.get_by_role("cell").nth(5)).to_contain_text("Completed", timeout=RUN_TIMEOUT)
    expect(group_row.get_by_text("in group")).to_have_count(0)


def test_a_failing_step_fails_the_group_run(context, chainer: Account, server: Server, tmp_path: Path):
    """Step 2 is an import whose uploaded CSV was deleted from disk: step 1 Completed, step 2
    Failed, step 3 Skipped, the group run Failed with its reason, and Retry from the failed
    step offered."""
    page = context.new_page()
    log_in(page, chainer)
    create_export_job(page, "Before the import")
    uploads = server.var_dir / "uploads"
    before = set(uploads.glob("*.csv"))
    csv = tmp_path / "tiny.csv"
    csv.write_text("Email\nfirst@example.org\nsecond@example.org\n")
    importer = "Import with a lost file"
    open_new_job(page, "import")
    expect(page.get_by_role("heading", name="New User Data Import")).to_be_visible()
    page.get_by_label("Job name").fill(importer)
    page.get_by_label("CSV file").set_input_files(csv)
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_role("heading", name="Map columns")).to_be_visible()
    expect(page.get_by_role("combobox", name="Field for column “Email”")).to_have_value("email")
    page.get_by_role("button", name="Save job").click()
    expect(flash(page, f"“{importer}” was saved.")).to_be_visible()
    uploaded = set(uploads.glob("*.csv")) - before
    assert len(uploaded) == 1, uploaded
    uploaded.pop().unlink()  # the saved job's file is gone from disk
    create_export_job(page, "After the import")

    name = "Chain with a failing step"
    build_group(page, name, ["Before the import", importer, "After the import"])
    activate_never_expiring(page, name)
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("heading", name="Steps")).to_be_visible()
    timeline = page.get_by_label("Steps of run #1")
    status = page.get_by_role("region", name="Run status")
    expect(status).to_contain_text(re.compile(r"State:\s*Failed\b"), timeout=RUN_TIMEOUT)
    items = timeline.get_by_role("listitem")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_contain_text("Before the import")
    expect(items.nth(0)).to_contain_text("Completed")
    expect(items.nth(1)).to_contain_text(importer)
    expect(items.nth(1)).to_contain_text("Failed")
    expect(items.nth(2)).to_contain_text("After the import")
    expect(items.nth(2)).to_contain_text("Skipped")
    expect(status.get_by_role("alert")).to_contain_text(f"Step 2 “{importer}” run #1 failed")
    expect(page.get_by_role("button", name="Retry from the failed step")).to_be_visible()

    # The group page's run row agrees.
    page.get_by_role("button", name="Group", exact=True).click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    run_row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Group run #1"))
    expect(run_row).to_contain_text("Failed")
    expect(run_row.get_by_label("Steps of run #1").get_by_role("listitem")).to_contain_text(
        ["Completed", "Failed", "Skipped"]
    )
