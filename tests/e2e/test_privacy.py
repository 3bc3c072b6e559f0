"""Privacy end to end: every file a super admin takes of a user's run (log, rejected lines,
result) is in the Audit log, and a result taken on the user's behalf stays in the user's monitor
until the user downloads it — in chromium against the real server started by the launcher."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, log_in
from tests.e2e.pages import job_number, main_nav
from tests.e2e.test_foundation import (
    download_label,
    expect_state,
    monitor_row,
    read_download,
    save_and_run,
    small_import_csv,
    upload_import,
)

pytestmark = pytest.mark.e2e

NAME = "Privacy check import"


def test_super_admin_file_downloads_are_audited_and_the_row_waits_for_its_owner(
    page: Page, super_admin: Account, plain_user: Account, another_person
):
    owner = another_person()
    log_in(owner, plain_user)
    payload, _good = small_import_csv()  # 20 good rows, line 7 rejected
    upload_import(owner, NAME, {"name": "privacy.csv", "mimeType": "text/csv", "buffer": payload})
    run_id = save_and_run(owner, NAME)
    expect_state(owner, "Completed")

    log_in(page, super_admin)
    page.goto(f"/runs/{run_id}")
    expect(page.get_by_role("heading", name=re.compile(rf"^{NAME}\s+run #1$"))).to_be_visible()
    with page.expect_download() as log:
        page.get_by_role("button", name="Download log").click()
    assert log.value.suggested_filename == f"run-{run_id}-log.txt"
    assert f"{NAME} — run #1 of Job #{job_number(page)}, completed" in read_download(log.value)
    with page.expect_download() as rejected:
        page.get_by_role("link", name="Download every rejected line (CSV)").click()
    assert read_download(rejected.value).splitlines() == [
        "line,reason",
        "7,\"line 7: '1234' is not a valid US ZIP code (like 12345 or 12345-6789)\"",
    ]

    # the result, from the super admin's monitor: the row stays (it waits for its owner)
    main_nav(page).get_by_role("link", name="Job monitor").click()
    row = monitor_row(page, NAME)
    with page.expect_download():
        row.get_by_role("link", name=download_label(NAME)).click()
    page.wait_for_timeout(1500)  # longer than an owner's row takes to leave
    expect(row).to_have_count(1)
    page.reload()
    expect(row).to_contain_text("downloaded on behalf of the owner")

    main_nav(page).get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    entries = page.get_by_role("row").filter(has_text=plain_user.email)
    log_entry = entries.filter(has_text=f"run-{run_id}-log.txt")
    expect(log_entry).to_have_count(1)
    expect(log_entry).to_contain_text(re.compile(r"\blog\b"))
    expect(log_entry).to_contain_text(super_admin.email)
    rejected_entry = entries.filter(has_text=f"run-{run_id}-rejected-1.csv")
    expect(rejected_entry).to_have_count(1)
    expect(rejected_entry).to_contain_text("rejected lines")
    expect(rejected_entry).to_contain_text(super_admin.email)
    expect(entries.filter(has_text=f"{NAME} - import report #1.csv")).to_have_count(1)

    # the owner's monitor still offers the result, until the owner takes it
    main_nav(owner).get_by_role("link", name="Job monitor").click()
    owners_row = monitor_row(owner, NAME)
    expect(owners_row).to_have_count(1)
    expect(owners_row).not_to_contain_text("on behalf")
    with owner.expect_download():
        owners_row.get_by_role("link", name=download_label(NAME)).click()
    expect(owners_row).to_have_count(0)
    owner.reload()
    expect(owner.get_by_role("heading", name="Job monitor")).to_be_visible()
    expect(monitor_row(owner, NAME)).to_have_count(0)
