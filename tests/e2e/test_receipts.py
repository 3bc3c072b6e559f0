"""Receipts in chromium against the real launcher and worker: an admin sets the receipt template,
generates receipts for a range of days from the Batch Receipt Generator's form, downloads the ZIP
(its PDFs and index), and runs the Receipt Inventory Generator. Screenshots go to
test-results/receipts/."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import REPO_ROOT, Account, Server, log_in
from tests.e2e.pages import RUN_TIMEOUT, ZONE, main_nav, run_status
from tests.e2e.test_campaigns import sqlite_db

pytestmark = pytest.mark.e2e

SHOTS = REPO_ROOT / "test-results" / "receipts"
DONORS = {"zoe@receipts.e2e.example": ("Zoë", "Müller-Ñúñez"), "sam@receipts.e2e.example": ("Sam", "Lee")}


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def add_gifts(server: Server) -> None:
    """Two donors' June 2019 gifts (and a refund), written straight into the database."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite_db(server) as db, db:
        for email, (first, last) in DONORS.items():
            db.execute(
                "INSERT INTO supporter (email, first_name, last_name, opted_in, created_at, updated_at) "
                "VALUES (?, ?, ?, 0, ?, ?)",
                (email, first, last, now, now),
            )
            (supporter_id,) = db.execute("SELECT id FROM supporter WHERE email = ?", (email,)).fetchone()
            for amount, kind in (("25.00", "one_off"), ("-5.00", "refund")):
                db.execute(
                    "INSERT INTO money_transaction (supporter_id, amount, currency, received_on, kind,"
                    " source, created_at) VALUES (?, ?, 'EUR', '2019-06-12', ?, 'e2e', ?)",
                    (supporter_id, amount, kind, now),
                )


def save_and_run(page: Page) -> None:
    page.get_by_role("button", name="Save and run now").click()
    expect(run_status(page)).to_contain_text(re.compile(r"State:\s*Completed\b"), timeout=RUN_TIMEOUT)


def download(page: Page) -> bytes:
    with page.expect_download() as info:
        page.get_by_role("button", name="Download results").click()
    return Path(info.value.path()).read_bytes()


def test_an_admin_sets_the_template_generates_receipts_and_runs_the_inventory(
    page: Page, server: Server, super_admin: Account
):
    add_gifts(server)
    log_in(page, super_admin)
    main_nav(page).get_by_role("link", name="Receipts").click()
    page.get_by_role("button", name="Receipts settings").click()
    page.get_by_label("Organisation name").fill("Société des Amis")
    page.get_by_label("Charity registration number").fill("CH-2019")
    page.get_by_label("Signatory").fill("Jean Dupont, Treasurer")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("The receipt template was saved.")).to_be_visible()
    shot(page, "template")

    main_nav(page).get_by_role("link", name="Receipts").click()
    page.get_by_role("button", name="New batch receipts").click()
    page.get_by_label("Job name").fill("June 2019 receipts")
    page.get_by_role("group", name="Gifts to receipt").get_by_role("radio", name="Fixed days").check()
    page.get_by_label("First day").fill("2019-06-01")
    page.get_by_label("Last day").fill("2019-06-30")
    shot(page, "batch-form")
    save_and_run(page)
    shot(page, "batch-run")
    archive = zipfile.ZipFile(io.BytesIO(download(page)))
    pdfs = sorted(name for name in archive.namelist() if name.endswith(".pdf"))
    assert len(pdfs) == 2 and all(archive.read(name).startswith(b"%PDF") for name in pdfs)
    index = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode("utf-8-sig"))))
    assert sorted(row["Supporter email"] for row in index) == sorted(DONORS)
    assert {row["File"] for row in index} == set(pdfs) and {row["Amount"] for row in index} == {"25.00"}
    numbers = sorted(row["Number"] for row in index)

    main_nav(page).get_by_role("link", name="Receipts").click()
    expect(page.get_by_role("link", name=f"Receipt {numbers[0]}")).to_be_visible()
    shot(page, "receipts")
    page.get_by_role("link", name=f"Receipt {numbers[0]}").click()
    expect(page.get_by_role("heading", name=re.compile(rf"^Receipt {numbers[0]}"))).to_be_visible()
    shot(page, "receipt")
    main_nav(page).get_by_role("link", name="Receipts").click()
    page.get_by_role("button", name="New receipt inventory").click()
    page.get_by_label("Job name").fill("Receipts of today")
    page.get_by_role("group", name="Period").get_by_role("radio", name="Fixed days").check()
    today = datetime.now(ZONE).date().isoformat()
    page.get_by_label("First day").fill(today)
    page.get_by_label("Last day").fill(today)
    save_and_run(page)
    rows = list(csv.DictReader(io.StringIO(download(page).decode("utf-8-sig"))))
    listed = {row["Number"]: row for row in rows}
    assert set(numbers) <= set(listed)
    assert {listed[n]["Status"] for n in numbers} == {"Issued"}
    assert "Zoë Müller-Ñúñez" in {listed[n]["Supporter name"] for n in numbers}
