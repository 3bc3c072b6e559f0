"""Saved filters are changed and deleted from their page, and a scheduled campaign is cancelled
from its own page, driven in chromium as a person does:

1. a saved filter is edited (its name and condition) through its Edit link; deleting it while a
   draft campaign uses it is refused with the campaign named; a filter nothing uses is deleted
   after the confirmation question;
2. a campaign scheduled for tomorrow is cancelled with "Cancel scheduled launch" on the campaign
   page: it is a draft again, which can be edited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import time as dtime

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, log_in
from tests.e2e.pages import ZONE, main_nav
from tests.e2e.test_campaign_launch import create_campaign, save_filter
from tests.e2e.test_campaigns import accept_next_dialog, flash


def open_filters(page: Page) -> None:
    main_nav(page).get_by_role("link", name="Campaigns").click()
    page.get_by_role("button", name="Saved filters").click()
    expect(page.get_by_role("heading", name="Saved filters")).to_be_visible()


def test_a_saved_filter_is_edited_and_deleted_once_no_campaign_needs_it(page: Page, plain_user: Account):
    log_in(page, plain_user)
    save_filter(page, "Harbor donors", "harbor.example")
    page.get_by_role("link", name="Edit filter Harbor donors").click()
    expect(page.get_by_role("heading", name="Edit filter “Harbor donors”")).to_be_visible()
    expect(page.get_by_label("Condition 1 value")).to_have_value("@harbor.example")
    page.get_by_label("Filter name").fill("Bay donors")
    page.get_by_label("Condition 1 value").fill("@bay.example")
    page.get_by_role("button", name="Save filter").click()
    expect(flash(page, "Filter “Bay donors” saved.")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Bay donors")
    expect(row).to_contain_text("@bay.example")

    create_campaign(page, "Bay appeal", "Bay donors")
    open_filters(page)
    questions = accept_next_dialog(page)
    page.get_by_role("button", name="Delete filter Bay donors").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "“Bay donors” was not deleted: it is the audience of “Bay appeal”."
    )
    assert questions and "Delete the filter “Bay donors”?" in questions[0]

    save_filter(page, "Old list", "old.example")
    accept_next_dialog(page)
    page.get_by_role("button", name="Delete filter Old list").click()
    expect(flash(page, "Filter “Old list” deleted.")).to_be_visible()
    expect(page.get_by_role("button", name="Delete filter Old list")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete filter Bay donors")).to_be_visible()


def test_a_scheduled_campaign_is_cancelled_from_its_own_page(page: Page, plain_user: Account):
    log_in(page, plain_user)
    save_filter(page, "Pier donors", "pier.example")
    tomorrow = datetime.combine(datetime.now(ZONE).date() + timedelta(days=1), dtime(10, 0), tzinfo=ZONE)
    create_campaign(page, "Pier appeal", "Pier donors", launch_at=tomorrow.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Launch…", exact=True).click()
    page.get_by_role("button", name="Schedule campaign").click()
    expect(page.get_by_role("heading", name="Pier appeal run #1")).to_be_visible()
    main_nav(page).get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="Pier appeal").click()
    expect(page.get_by_text("Campaign · Scheduled")).to_be_visible()
    questions = accept_next_dialog(page)
    page.get_by_role("button", name="Cancel scheduled launch").click()
    expect(page.get_by_role("heading", name="Pier appeal", exact=True)).to_be_visible()
    expect(page.get_by_text("Campaign · Draft")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel scheduled launch")).to_have_count(0)
    expect(page.get_by_role("button", name="Edit campaign")).to_be_visible()
    assert questions and questions[0].startswith("Cancel the launch planned for")
