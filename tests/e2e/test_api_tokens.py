"""A user makes an API token on the API tokens page (reached from their account page), copies it,
uses it against /api/v1 from a script, and revokes it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Server, _create_user, log_in
from tests.e2e.test_foundation import create_export, expect_state


@pytest.fixture(scope="module")
def token_user(server: Server) -> Account:
    return _create_user(server, "tokens@example.org", "token-secret-password-7")


def call(server: Server, path: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def test_a_token_made_on_its_page_reads_the_users_run_until_it_is_revoked(
    page: Page, server: Server, token_user: Account
):
    log_in(page, token_user)
    run_id = create_export(page, "Export for the CRM")
    expect_state(page, "Completed")

    page.get_by_role("link", name=token_user.email).click()
    page.get_by_role("link", name="Manage your API tokens").click()
    expect(page.get_by_role("heading", name="API tokens", exact=True)).to_be_visible()
    page.get_by_label("Token name").fill("CRM sync")
    page.get_by_label("Read only: look, never change").check()
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", name="Your new token “CRM sync”")).to_be_visible()
    token = page.get_by_label("The token to copy").input_value()
    assert token.startswith("cvy_")

    status, body = call(server, f"/api/v1/runs/{run_id}", token)
    assert status == 200 and body["state"] == "completed" and body["job_name"] == "Export for the CRM"

    page.get_by_role("link", name=token_user.email).click()  # back later: the secret is not
    page.get_by_role("link", name="Manage your API tokens").click()  # shown again; its last use is
    expect(page.get_by_label("The token to copy")).to_have_count(0)
    row = page.get_by_role("row").filter(has_text="CRM sync")
    expect(row.get_by_role("cell").nth(3)).to_contain_text("from 127.0.0.1")
    row.get_by_role("button", name="Revoke CRM sync").click()
    expect(page.get_by_text("The token “CRM sync” was revoked: it no longer works.")).to_be_visible()
    assert call(server, f"/api/v1/runs/{run_id}", token)[0] == 401


def test_the_api_reference_page_shows_each_endpoint_and_its_shapes(page: Page, token_user: Account):
    log_in(page, token_user)
    page.get_by_role("link", name=token_user.email).click()
    page.get_by_role("link", name="API reference").click()
    expect(page.get_by_role("heading", name="API reference", exact=True)).to_be_visible()
    navigation = page.get_by_role("navigation", name="API areas")
    navigation.get_by_role("link", name="Runs").click()
    status = page.get_by_role("article").filter(
        has=page.get_by_role("heading", name="GET /api/v1/runs/{run_id}", exact=True)
    )
    expect(status).to_contain_text("A run's state, progress and counts.")
    status.get_by_role("link", name="RunOut").click()
    shape = page.get_by_role("article").filter(has=page.get_by_role("heading", name="RunOut", exact=True))
    expect(shape.get_by_role("row").filter(has_text="progress")).to_contain_text("Progress")
