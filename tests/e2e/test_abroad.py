"""Issue 13 end to end: a charity abroad imports postal codes of its own country, reads every
problem of a rejected line, and exports a file Excel opens with accented names intact."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, log_in
from tests.e2e.pages import RUN_TIMEOUT, main_nav, open_new_job, run_status

IMPORT_CSV = (
    "Email,First name,Postal code,Country\n"
    "abroad-zoe@example.org,Zoë,k1a0b1,CA\n"
    "abroad-jose@example.org,José,sw1a1aa,UK\n"
    "abroad-bad@example.org,Bad,K1A0B1X,Narnia\n"  # line 4: two problems
)


def save_and_run(page: Page) -> None:
    page.get_by_role("button", name="Save and run now").click()
    expect(run_status(page)).to_contain_text(re.compile(r"State:\s*Completed\b"), timeout=RUN_TIMEOUT)


def test_the_settings_offer_a_default_country_for_postal_codes(page: Page, super_admin: Account):
    log_in(page, super_admin)
    main_nav(page).get_by_role("link", name="Settings").click()
    country = page.get_by_label("Default country for postal codes")
    expect(country).to_have_value("US")
    expect(country.get_by_role("option", name="Canada (CA)")).to_have_count(1)


def test_an_import_abroad_and_an_excel_friendly_export(page: Page, plain_user: Account):
    log_in(page, plain_user)
    open_new_job(page, "import")
    page.get_by_label("Job name").fill("Supporters abroad")
    page.get_by_label("CSV file").set_input_files(
        {"name": "abroad.csv", "mimeType": "text/csv", "buffer": IMPORT_CSV.encode()}
    )
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_role("combobox", name="Field for column “Postal code”")).to_have_value("zip")
    expect(page.get_by_role("combobox", name="Field for column “Country”")).to_have_value("country")
    save_and_run(page)
    reason = (
        "line 4: 'K1A0B1X' is not a valid US ZIP code (like 12345 or 12345-6789); "
        "'Narnia' is not a country: use its 2-letter code (like US, GB or CA)"
    )
    expect(page.get_by_role("cell", name=reason, exact=True)).to_be_visible()

    open_new_job(page, "export")
    page.get_by_label("Job name").fill("Abroad for Excel")
    expect(page.get_by_label("Excel-friendly (UTF-8 with BOM)")).to_be_checked()
    save_and_run(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download results").click()
    raw = Path(info.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfEmail,")
    rows = {row[0]: row for row in csv.reader(io.StringIO(raw.decode("utf-8-sig")))}
    assert rows["Email"][6:8] == ["Postal code", "Country"]
    assert rows["abroad-zoe@example.org"][1] == "Zoë" and rows["abroad-zoe@example.org"][6:8] == [
        "K1A 0B1",
        "CA",
    ]
    assert rows["abroad-jose@example.org"][1] == "José" and rows["abroad-jose@example.org"][6:8] == [
        "SW1A 1AA",
        "GB",
    ]
