"""A person's double click on a form that creates something makes one thing: the page sends a
form once (static/app.js), so two quick clicks on "Save job" save one job."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, _create_user, log_in
from tests.e2e.pages import main_nav, open_new_job


@pytest.fixture(scope="module")
def clicker(server) -> Account:
    return _create_user(server, "double-clicker@example.org", "double-click-password-9")


def test_a_double_click_on_save_job_saves_one_job(page: Page, clicker: Account):
    log_in(page, clicker)
    open_new_job(page, "export")
    page.get_by_label("Job name").fill("Double-clicked export")
    held = []

    def hold(route):  # a slow answer: the second click lands while the first is answered
        held.append((route, route.fetch(max_redirects=0)))

    page.route(
        "**/jobs/new/export",
        lambda route: hold(route) if route.request.method == "POST" else route.continue_(),
    )
    save = page.get_by_role("button", name="Save job")
    save.scroll_into_view_if_needed()  # the mouse clicks where a person sees the button
    box = save.bounding_box()
    for _ in range(2):  # a person's double click
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(300)
    assert len(held) == 1, "the page sent the form twice"
    route, answer = held[0]
    route.fulfill(response=answer)
    expect(page.get_by_role("heading", name="Double-clicked export", exact=True)).to_be_visible()
    main_nav(page).get_by_role("link", name="Jobs", exact=True).click()
    expect(page.get_by_role("link", name="Double-clicked export", exact=True)).to_have_count(1)
