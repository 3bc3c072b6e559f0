"""Rollback Transaction Data Import in the browser: a user imports gifts, rolls the import back
from its run page through the preview and its confirmation, sees the rollback run complete, and
finds it linked from the import's run page — against the real server and worker."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import log_in
from tests.e2e.pages import RUN_TIMEOUT, open_new_job, run_status

pytestmark = pytest.mark.e2e

COMPLETED = re.compile(r"State:\s*Completed\b")


def test_roll_an_import_back_from_its_run_page(page: Page, plain_user):
    log_in(page, plain_user)
    open_new_job(page, "transaction import")
    page.get_by_label("Job name").fill("Gifts to undo")
    gifts = (
        b"Email,Amount,Currency,Date,First name\n"
        b"undo-ann@example.org,25.00,USD,2026-01-05,Ann\n"
        b"undo-bob@example.org,40.00,USD,2026-01-06,Bob\n"
    )
    page.get_by_label("CSV file").set_input_files(
        {"name": "gifts.csv", "mimeType": "text/csv", "buffer": gifts}
    )
    page.get_by_role("button", name="Upload and continue").click()
    page.get_by_label("Source").fill("Bank file")
    page.get_by_role("button", name="Save and run now").click()
    expect(run_status(page)).to_contain_text(COMPLETED, timeout=RUN_TIMEOUT)
    import_url = page.url

    page.get_by_role("button", name="Roll back this import…").click()
    expect(
        page.get_by_role("heading", name=re.compile(r"^Roll back “Gifts to undo” run #1\?$"))
    ).to_be_visible()
    changes = page.get_by_role("definition")
    expect(changes.nth(0)).to_have_text("2")  # transactions deleted
    expect(changes.nth(1)).to_have_text("2")  # supporters deleted (both created by the import)
    expect(page.get_by_role("table", name="Sample of the transactions to delete")).to_contain_text(
        "40.00 USD"
    )
    page.get_by_role("button", name="Roll back this import").click()

    expect(run_status(page)).to_contain_text(COMPLETED, timeout=RUN_TIMEOUT)
    counts = page.get_by_role("region", name="Run status").get_by_label("Counts")
    expect(counts).to_contain_text("Transactions deleted")
    rollback_url = page.url
    page.get_by_role("link", name="“Gifts to undo” run #1").click()
    expect(page).to_have_url(import_url)
    expect(page.get_by_text("This import was rolled back:")).to_be_visible()
    expect(page.get_by_role("button", name="Roll back this import…")).to_have_count(0)
    page.get_by_role("link", name="rollback run #1").click()
    expect(page).to_have_url(rollback_url)
