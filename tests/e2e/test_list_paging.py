"""On a phone (390 px) the API tokens list, whose last column's header is only for screen
readers, scrolls inside its own box: the page itself never scrolls sideways."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Server, _create_user, log_in

pytestmark = pytest.mark.e2e

FITS = "document.documentElement.scrollWidth <= window.innerWidth"


def test_the_api_tokens_list_fits_a_phone(browser: Browser, server: Server):
    account = _create_user(server, "pager@example.org", "pager-secret-password-9")
    context = browser.new_context(base_url=server.url, viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    page = context.new_page()
    log_in(page, account)
    page.goto("/account/api-tokens/")
    page.get_by_label("Token name").fill("Nightly CRM sync")
    page.get_by_role("button", name="Create token").click()
    tokens = page.get_by_role("region", name="Your tokens")
    expect(tokens.get_by_role("columnheader", name="Actions")).to_be_attached()
    expect(tokens.get_by_role("button", name="Revoke Nightly CRM sync")).to_be_visible()
    assert page.evaluate(FITS), page.evaluate("document.documentElement.scrollWidth")
    context.close()
