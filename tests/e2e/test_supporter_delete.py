"""Supporter Delete in the browser: a user deletes supporters they imported from a CSV of
emails, types the number back to confirm, and downloads the list of deleted and not-found
emails — against the real server and worker. Its pages' pictures in the staff guide
(docs/screenshots/supporter-delete-*.png, 1280×800) are taken here, as test_guide.py takes its."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import REPO_ROOT, log_in
from tests.e2e.pages import RUN_TIMEOUT, main_nav, open_new_job, run_status

pytestmark = pytest.mark.e2e

SHOTS = REPO_ROOT / "docs" / "screenshots"


def shot(page: Page, name: str) -> None:
    """docs/screenshots/<name>.png of the viewport; skipped when the checkout is read-only."""
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    png = page.screenshot(full_page=False, animations="disabled")
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        if os.access(SHOTS, os.W_OK):
            (SHOTS / f"{name}.png").write_bytes(png)
    except OSError:
        pass  # a read-only checkout: the walk itself is the test


def import_supporters(page: Page, emails: list[str]) -> None:
    """Import these emails as the signed-in user, and wait for the run to complete."""
    open_new_job(page, "import")
    page.get_by_label("Job name").fill("Supporters to delete later")
    payload = ("Email\n" + "".join(f"{email}\n" for email in emails)).encode()
    page.get_by_label("CSV file").set_input_files(
        {"name": "people.csv", "mimeType": "text/csv", "buffer": payload}
    )
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_role("heading", name="Map columns")).to_be_visible()
    page.get_by_role("button", name="Save and run now").click()
    expect(run_status(page)).to_contain_text(re.compile(r"State:\s*Completed\b"), timeout=RUN_TIMEOUT)


def test_delete_supporters_with_the_typed_confirmation_and_see_the_result_file(page: Page, second_user):
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, second_user)
    import_supporters(page, ["erase-ann@example.org", "erase-bob@example.org", "erase-cy@example.org"])

    open_new_job(page, "supporter delete")
    expect(page.get_by_role("heading", name="New Supporter Delete")).to_be_visible()
    page.get_by_label("Name").fill("Requests of the week")
    page.get_by_label("Emails in a CSV file").check()
    requests = b"Email\nerase-ann@example.org\nERASE-BOB@example.org\nnever-here@example.org\n"
    page.get_by_label("CSV file of emails").set_input_files(
        {"name": "requests.csv", "mimeType": "text/csv", "buffer": requests}
    )
    shot(page, "supporter-delete-1-new")
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", name="Delete supporters: “Requests of the week”?")).to_be_visible()
    expect(page.get_by_text("2 supporters will be deleted")).to_be_visible()
    sample = page.get_by_role("table", name="Sample of the supporters to delete")
    expect(sample).to_contain_text("erase-ann@example.org")
    expect(sample).to_contain_text("erase-bob@example.org")
    shot(page, "supporter-delete-2-confirm")

    typed = page.get_by_label("Type the number of supporters to delete")
    typed.fill("3")
    page.get_by_role("button", name="Delete supporters").click()
    expect(page.get_by_role("alert").filter(has_text="type 2 to confirm")).to_be_visible()
    page.get_by_label("Type the number of supporters to delete").fill("2")
    page.get_by_role("button", name="Delete supporters").click()

    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    expect(run_status(page)).to_contain_text(re.compile(r"State:\s*Completed\b"), timeout=RUN_TIMEOUT)
    shot(page, "supporter-delete-3-run")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download results (CSV)").click()
    download = info.value
    assert download.suggested_filename == "Requests of the week - deleted supporters #1.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows == [
        ["email", "result"],
        ["erase-ann@example.org", "deleted"],
        ["erase-bob@example.org", "deleted"],
        ["never-here@example.org", "not found"],
    ]

    main_nav(page).get_by_role("link", name="Supporters").click()
    page.get_by_role("searchbox").fill("erase-")
    page.keyboard.press("Enter")
    expect(page.get_by_text("erase-cy@example.org")).to_be_visible()
    expect(page.get_by_text("erase-ann@example.org")).to_have_count(0)
