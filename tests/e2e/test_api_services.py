"""A script imports supporters through the API with a token its user made on the API tokens page;
the user sees the run in the job monitor as an Import Service run, and downloads its report."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Server, _create_user, log_in
from tests.e2e.pages import RUN_TIMEOUT

PEOPLE = "Email,First name,ZIP\nann@example.org,Ann,02134\nbob@example.org,Bob,1234\n"


@pytest.fixture(scope="module")
def script_user(server: Server) -> Account:
    return _create_user(server, "crm-script@example.org", "crm-script-password-7")


def make_write_token(page: Page, account: Account, name: str) -> str:
    page.get_by_role("link", name=account.email).click()
    page.get_by_role("link", name="Manage your API tokens").click()
    page.get_by_label("Token name").fill(name)
    page.get_by_label("Read and write: also start, stop and change").check()
    page.get_by_role("button", name="Create token").click()
    return page.get_by_label("The token to copy").input_value()


def post(server: Server, token: str, path: str, body: bytes, kind: str) -> dict:
    request = urllib.request.Request(
        f"{server.url}/api/v1{path}",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": kind},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202
        return json.load(answer)


def test_an_import_service_run_started_through_the_api_appears_in_the_monitor_with_its_type(
    page: Page, server: Server, script_user: Account, tmp_path
):
    log_in(page, script_user)
    token = make_write_token(page, script_user, "CRM import")
    run = post(server, token, "/imports?name=Nightly%20CRM%20import", PEOPLE.encode(), "text/csv")
    assert run["type_label"] == "Import Service"

    page.get_by_role("link", name="Job monitor").click()
    row = page.get_by_role("row").filter(has_text="Nightly CRM import")
    expect(row.get_by_role("cell").first).to_have_text("Import Service")
    download = row.get_by_role("link", name="Download results of Nightly CRM import run #1")
    expect(download).to_be_visible(timeout=RUN_TIMEOUT)  # the monitor polls until the run ends
    page.screenshot(path=os.environ.get("E2E_SCREENSHOT", str(tmp_path / "monitor.png")), full_page=True)

    row.get_by_role("link", name="Nightly CRM import").first.click()
    expect(page.get_by_text("Import Service").first).to_be_visible()
    expect(page.get_by_role("cell", name="line 3: '1234' is not a valid US ZIP code")).to_be_visible()


def test_an_export_service_runs_result_is_downloaded_from_the_monitor(
    page: Page, server: Server, script_user: Account
):
    log_in(page, script_user)
    token = make_write_token(page, script_user, "CRM export")
    body = json.dumps({"name": "CRM export", "fields": ["email"], "bom": False}).encode()
    assert post(server, token, "/exports", body, "application/json")["type_label"] == "Export Service"

    page.get_by_role("link", name="Job monitor").click()
    row = page.get_by_role("row").filter(has_text="CRM export")
    expect(row.get_by_role("cell").first).to_have_text("Export Service")
    with page.expect_download() as taken:
        row.get_by_role("link", name="Download results of CRM export run #1").click(timeout=RUN_TIMEOUT)
    lines = open(taken.value.path(), encoding="utf-8").read().splitlines()
    assert lines[0] == "Email"
