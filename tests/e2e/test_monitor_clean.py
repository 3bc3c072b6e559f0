"""A monitor that stays clean, in chromium against the real launcher: a finished row leaves by
its Dismiss button, "Dismiss all finished" (after its confirmation) clears the other finished
rows at once and every run stays in History; a failed group run's row unfolds its step rows
by its Steps button, the fold stays open across a reload and a swap, and dismissing the group
run's row takes its step rows with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Server, _create_user, log_in
from tests.e2e.pages import RUN_TIMEOUT, main_nav, open_new_job, run_status
from tests.e2e.test_groups import activate_never_expiring, build_group
from tests.e2e.test_schedules import create_export_job, flash

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tidy(server: Server) -> Account:
    return _create_user(server, "tidy@example.org", "tidy-secret-password-13")


@pytest.fixture(scope="module")
def folder(server: Server) -> Account:
    return _create_user(server, "folder@example.org", "folder-secret-password-13")


def run_now_until_completed(page: Page, name: str) -> None:
    """From the job page: Run now, and wait on the run page until it completed."""
    page.get_by_role("button", name="Run now", exact=True).click()
    expect(page.get_by_role("heading", name=f"{name} run #1")).to_be_visible()
    expect(run_status(page)).to_contain_text(re.compile(r"State:\s*Completed\b"), timeout=RUN_TIMEOUT)


def open_monitor(page: Page) -> None:
    main_nav(page).get_by_role("link", name="Job monitor").click()
    expect(page.get_by_role("heading", name="Job monitor")).to_be_visible()


def row_of(page: Page, job: str):
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=job, exact=True))


def test_dismiss_one_finished_row_then_all_finished(context, tidy: Account):
    page = context.new_page()
    log_in(page, tidy)
    jobs = ["Tidy export A", "Tidy export B", "Tidy export C"]
    for job in jobs:
        create_export_job(page, job)
        run_now_until_completed(page, job)
    open_monitor(page)
    for job in jobs:
        expect(row_of(page, job)).to_have_count(1)

    row_of(page, jobs[0]).get_by_role("button", name=f"Dismiss {jobs[0]} run #1").click()
    expect(row_of(page, jobs[0])).to_have_count(0)
    expect(row_of(page, jobs[1])).to_have_count(1)

    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Dismiss all finished").click()
    expect(flash(page, "2 finished runs dismissed; they stay in History.")).to_be_visible()
    assert asked == ["Dismiss every finished run shown here from the monitor? They stay in History."]
    for job in jobs:
        expect(row_of(page, job)).to_have_count(0)
    page.reload()
    expect(page.get_by_text("Nothing in the monitor right now.")).to_be_visible()

    page.get_by_role("link", name="History").first.click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    for job in jobs:
        expect(row_of(page, job)).to_have_count(1)


def test_a_group_runs_steps_unfold_under_its_row(context, folder: Account, server: Server, tmp_path: Path):
    """A group of an export, an import whose file is lost and another export: step 1 completed,
    step 2 failed, step 3 never ran and the group run failed, so it stays in the monitor."""
    page = context.new_page()
    log_in(page, folder)
    create_export_job(page, "Fold export first")
    uploads = server.var_dir / "uploads"
    before = set(uploads.glob("*.csv"))
    csv = tmp_path / "tiny.csv"
    csv.write_text("Email\nfirst@example.org\n")
    importer = "Fold import lost"
    open_new_job(page, "import")
    page.get_by_label("Job name").fill(importer)
    page.get_by_label("CSV file").set_input_files(csv)
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_role("combobox", name="Field for column “Email”")).to_have_value("email")
    page.get_by_role("button", name="Save job").click()
    expect(flash(page, f"“{importer}” was saved.")).to_be_visible()
    (set(uploads.glob("*.csv")) - before).pop().unlink()
    create_export_job(page, "Fold export last")
    name = "Folding chain"
    steps = ["Fold export first", importer]  # step 3 never runs: no row
    build_group(page, name, [*steps, "Fold export last"])
    activate_never_expiring(page, name)
    page.get_by_role("button", name="Run now").click()
    expect(run_status(page)).to_contain_text(re.compile(r"State:\s*Failed\b"), timeout=RUN_TIMEOUT)

    open_monitor(page)
    group = row_of(page, name)
    unfold = group.get_by_role("button", name=f"Show the steps of {name} run #1")
    expect(unfold).to_have_attribute("aria-expanded", "false")
    for job in steps:  # folded: the rows are there, hidden
        expect(page.locator("tr[data-step-of]").filter(has_text=job)).to_be_hidden()

    unfold.click()
    expect(unfold).to_have_attribute("aria-expanded", "true")
    for number, job in enumerate(steps, start=1):
        row = row_of(page, job)
        expect(row).to_be_visible()
        expect(row.get_by_text(f"step {number}", exact=True)).to_be_visible()
    expect(
        row_of(page, steps[0]).get_by_role("link", name=f"Download results of {steps[0]} run #1")
    ).to_be_visible()
    expect(row_of(page, importer).get_by_role("cell").nth(5)).to_contain_text("Failed")

    page.reload()  # the fold stays open
    expect(unfold).to_have_attribute("aria-expanded", "true")
    expect(row_of(page, importer)).to_be_visible()
    row_of(page, steps[0]).get_by_role("button", name=f"Dismiss {steps[0]} run #1").click()
    expect(row_of(page, steps[0])).to_have_count(0)
    expect(row_of(page, importer)).to_be_visible()  # still unfolded after the swap
    expect(row_of(page, "Fold export last")).to_have_count(0)

    unfold.click()
    expect(unfold).to_have_attribute("aria-expanded", "false")
    expect(page.locator("tr[data-step-of]").filter(has_text=importer)).to_be_hidden()

    # without JavaScript nothing is folded away: the steps show under their group, no button
    plain = context.browser.new_context(java_script_enabled=False, base_url=server.url).new_page()
    log_in(plain, folder)
    plain.goto("/")
    expect(row_of(plain, importer)).to_be_visible()
    expect(plain.get_by_role("button", name=f"Show the steps of {name} run #1")).to_be_hidden()
    plain.context.close()

    group.get_by_role("button", name=f"Dismiss {name} run #1").click()
    expect(row_of(page, name)).to_have_count(0)
    expect(page.locator("tr[data-step-of]")).to_have_count(0)
