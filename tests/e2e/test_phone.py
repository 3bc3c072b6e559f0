"""Conveyor on a phone (390×844), a tablet and a wide screen: every main page fits the phone's
width (a wide table scrolls inside its own box, the page itself never sideways), the Menu button
opens the collapsed main navigation (and without JavaScript the navigation is simply there), and
on a wide screen a page's title and its action buttons share one line, a filter button as tall
as its fields."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Account, Server, _create_user, log_in
from tests.e2e.pages import main_nav
from tests.e2e.test_campaigns import create_campaign
from tests.e2e.test_foundation import create_export, expect_state
from tests.e2e.test_groups import activate_never_expiring, build_group
from tests.e2e.test_schedules import create_export_job

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
TABLET = {"width": 800, "height": 1000}
WIDE = {"width": 1280, "height": 900}
# long names: a title that has to wrap on a phone
EXPORT_NAME = "Phone export of every supporter for the volunteer newsletter"
SECOND_NAME = "Phone second export"
GROUP_NAME = "Phone chain of the two exports"
CAMPAIGN_NAME = "Phone appeal"
FITS = "document.documentElement.scrollWidth <= window.innerWidth"


@dataclass
class Made:
    """Addresses of what the phone user made (paths)."""

    run: str
    job: str
    group: str
    campaign: str


@pytest.fixture(scope="module")
def phone_user(server: Server) -> Account:
    return _create_user(server, "phone@example.org", "phone-secret-password-6")


@pytest.fixture(scope="module")
def made(browser: Browser, server: Server, phone_user: Account) -> Made:
    """On a wide screen: an export run, a second job, a group of both, a campaign."""
    context = browser.new_context(base_url=server.url, viewport=WIDE)
    context.set_default_timeout(10_000)
    page = context.new_page()
    log_in(page, phone_user)
    create_export(page, EXPORT_NAME)
    expect_state(page, "Completed")
    run = _path(page)
    page.get_by_role("button", name="Job", exact=True).click()
    expect(page.get_by_role("heading", name=EXPORT_NAME)).to_be_visible()
    job = _path(page)
    create_export_job(page, SECOND_NAME)
    build_group(page, GROUP_NAME, [EXPORT_NAME, SECOND_NAME])
    activate_never_expiring(page, GROUP_NAME)
    group = _path(page)
    create_campaign(page, CAMPAIGN_NAME, notify="owner@park.example")
    campaign = _path(page)
    context.close()
    return Made(run=run, job=job, group=group, campaign=campaign)


def _path(page: Page) -> str:
    return re.sub(r"^https?://[^/]+", "", page.url)


def main_pages(made: Made) -> list[tuple[str, str]]:
    """Every main page a plain user has: (name, path)."""
    return [
        ("Job monitor", "/"),
        ("History", "/history"),
        ("Jobs", "/jobs/"),
        ("a job page", made.job),
        ("New job", "/jobs/new"),
        ("import upload", "/jobs/new/import"),
        ("export form", "/jobs/new/export"),
        ("schedule page", f"{made.job}/schedule"),
        ("Groups", "/groups/"),
        ("a group page", made.group),
        *[(f"group wizard step {step}", f"{made.group}/edit/{step}") for step in (1, 2, 3, 4)],
        ("Campaigns", "/campaigns/"),
        ("a campaign page", made.campaign),
        ("Supporters", "/supporters/"),
        ("Account", "/account"),
        ("a run page", made.run),
    ]


ADMIN_PAGES = [
    ("Users", "/admin/users"),
    ("Settings", "/admin/settings"),
    ("Outbox", "/admin/outbox"),
    ("Audit log", "/admin/audit"),
]


def overflowing(page: Page, pages: list[tuple[str, str]]) -> list[str]:
    """Visit each page; the ones wider than the window (with how wide they are)."""
    wider = []
    for name, path in pages:
        response = page.goto(path)
        assert response.status == 200, f"{name} ({path}): {response.status}"
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        if not page.evaluate(FITS):
            wider.append(f"{name} ({path}): {page.evaluate('document.documentElement.scrollWidth')} px")
    return wider


def expect_the_menu_opens(page: Page) -> None:
    """The navigation is collapsed behind Menu; Menu opens it and a link in it works."""
    page.goto("/")
    menu = page.get_by_role("button", name="Menu")
    jobs = main_nav(page).get_by_role("link", name="Jobs", exact=True)
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(jobs).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(jobs).to_be_visible()
    expect(main_nav(page).get_by_role("button", name="Log out")).to_be_visible()
    menu.click()
    expect(jobs).to_be_hidden()
    menu.click()
    jobs.click()
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "false")


@pytest.mark.parametrize("who", ["plain user", "super admin"])
def test_every_main_page_fits_a_phone_and_the_menu_opens(
    new_context, made: Made, phone_user: Account, super_admin: Account, who: str
):
    context = new_context(viewport=PHONE)
    context.set_default_timeout(10_000)
    page = context.new_page()
    if who == "plain user":
        log_in(page, phone_user)
        pages = main_pages(made)
    else:
        log_in(page, super_admin)
        pages = main_pages(made) + ADMIN_PAGES
    assert overflowing(page, pages) == []
    expect_the_menu_opens(page)


def test_a_tablet_fits_the_super_admins_widest_pages(new_context, made: Made, super_admin: Account):
    """800 px: the menu wraps onto more lines and the monitor's table (with its User column)
    scrolls inside its own box."""
    page = new_context(viewport=TABLET).new_page()
    log_in(page, super_admin)
    wide = [
        ("Job monitor", "/"),
        ("History", "/history"),
        ("a job page", made.job),
        ("Audit log", "/admin/audit"),
    ]
    assert overflowing(page, wide) == []
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(main_nav(page).get_by_role("link", name="Audit log")).to_be_visible()


def test_without_javascript_the_phone_shows_the_navigation_open(new_context, phone_user: Account):
    page = new_context(viewport=PHONE, java_script_enabled=False).new_page()
    log_in(page, phone_user)
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    main_nav(page).get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History", exact=True)).to_be_visible()
    assert page.evaluate(FITS)


def test_a_page_title_and_its_buttons_share_one_line_on_a_wide_screen(
    new_context, made: Made, phone_user: Account
):
    context = new_context(viewport=WIDE)
    context.set_default_timeout(10_000)
    page = context.new_page()
    log_in(page, phone_user)
    page.goto(made.job)
    heading = page.get_by_role("heading", name=EXPORT_NAME, level=1).bounding_box()
    for name in ("Schedule", "Run now", "Delete job"):
        button = page.get_by_role("button", name=name, exact=True).bounding_box()
        assert heading["y"] <= button["y"] <= heading["y"] + heading["height"], (name, button, heading)
        assert button["x"] > heading["x"] + heading["width"], (name, button, heading)

    # History's filter: the button stands on the fields' line, as tall as they are
    page.goto("/history")
    field = page.get_by_label("Type").bounding_box()
    button = page.get_by_role("button", name="Filter").bounding_box()
    assert abs(button["height"] - field["height"]) <= 1, (button, field)
    assert abs((button["y"] + button["height"]) - (field["y"] + field["height"])) <= 1, (button, field)
    assert button["width"] < 150, button

    # on a phone the same buttons wrap under the title, inside the screen
    page.set_viewport_size(PHONE)
    page.goto(made.job)
    heading = page.get_by_role("heading", name=EXPORT_NAME, level=1).bounding_box()
    for name in ("Schedule", "Run now", "Delete job"):
        button = page.get_by_role("button", name=name, exact=True).bounding_box()
        assert button["y"] >= heading["y"] + heading["height"], (name, button, heading)
        assert button["x"] + button["width"] <= PHONE["width"], (name, button)
