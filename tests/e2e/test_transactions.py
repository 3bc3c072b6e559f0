"""A Transaction Data Import driven in chromium against the real launcher and worker: a user
uploads a CSV of gifts from Jobs → New job, maps its columns, saves and runs it, reads the run's
counts and its rejected line, then finds the gifts on the Transactions page and a donor's page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Server, _create_user, log_in
from tests.e2e.pages import main_nav, open_new_job
from tests.e2e.test_foundation import count, expect_state, save_and_run

pytestmark = pytest.mark.e2e

GIFTS = (
    "Email,Amount,Currency,Date,Type,Transaction ID,Appeal\n"
    "ada@gifts.e2e.example,25.00,USD,2026-01-05,one-off,ch_1,SPRING\n"
    "ada@gifts.e2e.example,-10,USD,2026-01-06,one-off,ch_2,SPRING\n"  # a negative gift: rejected
    "bo@gifts.e2e.example,40,EUR,2026-01-07,refund,ch_3,\n"
)


@pytest.fixture(scope="module")
def fundraiser(server: Server) -> Account:
    return _create_user(server, "fundraiser@example.org", "fundraiser-password-16")


def test_a_transaction_import_shows_its_counts_and_rejected_line_and_lists_the_gifts(
    page: Page, fundraiser: Account
):
    log_in(page, fundraiser)
    open_new_job(page, "transaction import")
    expect(page.get_by_role("heading", name="New Transaction Data Import")).to_be_visible()
    page.get_by_label("Job name").fill("January gifts")
    page.get_by_label("CSV file").set_input_files(
        {"name": "gifts.csv", "mimeType": "text/csv", "buffer": GIFTS.encode()}
    )
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_role("heading", name="Map columns")).to_be_visible()
    preview = page.get_by_role("table", name="Preview of the first rows")
    expect(preview.locator("tbody").get_by_role("row").first.get_by_role("cell").nth(1)).to_have_text("25.00")
    expect(page.get_by_role("combobox", name="Field for column “Amount”")).to_have_value("amount")
    expect(page.get_by_role("combobox", name="Field for column “Transaction ID”")).to_have_value(
        "transaction_id"
    )
    page.get_by_label("Source", exact=True).fill("Stripe")
    page.get_by_label("Create the supporter").check()

    run_id = save_and_run(page, "January gifts")
    expect_state(page, "Completed")
    expect(count(page, "Transactions created")).to_have_text("2")
    expect(count(page, "Supporters created")).to_have_text("2")
    expect(count(page, "Lines rejected")).to_have_text("1")
    expect(
        page.get_by_role(
            "cell",
            name="line 3: amount -10.00 is negative for a one-off gift (only a refund may be)",
            exact=True,
        )
    ).to_be_visible()

    page.get_by_role("link", name="the transactions of this import").click()
    expect(page.get_by_role("row").filter(has_text="ch_1")).to_be_visible()
    main_nav(page).get_by_role("link", name="Transactions", exact=True).click()
    expect(page.get_by_role("heading", name="Transactions", exact=True)).to_be_visible()
    listed = page.get_by_role("row").filter(
        has=page.get_by_role("link", name=re.compile(r"^January gifts run #1$"))
    )
    expect(listed).to_have_count(2)
    expect(page.get_by_role("row").filter(has_text="ch_3")).to_contain_text("-40.00 EUR")
    page.get_by_label("Type").select_option("One-off")
    page.get_by_role("button", name="Filter").click()
    expect(listed).to_have_count(1)
    totals = page.get_by_role("table", name="Totals by currency")
    expect(totals.get_by_role("row").filter(has_text="USD")).to_contain_text("25.00")
    page.get_by_role("link", name="ada@gifts.e2e.example").click()
    expect(page.get_by_role("heading", name="ada@gifts.e2e.example")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="ch_1")).to_contain_text("25.00 USD")
    page.get_by_role("row").filter(has_text="ch_1").get_by_role("link", name="January gifts run #1").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}$"))
