"""The schedule page itself, driven in chromium by its labels and roles (issue 13):

1. it opens, and every Repeat choice swaps its fields in, without any error shown;
2. a Once schedule whose date and time has passed is refused with a message, nothing saved;
3. the daily slot kind says what it is: its name, its help, its hours in 12-hour time;
4. the blackout form's From fills the blackout field, not the schedule's Start date.

Times are those of the account time zone, America/New_York (the server's default).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Server, _create_user, log_in
from tests.e2e.test_schedules import SLOT_KIND, create_export_job, flash, now_local, open_schedule, preview

pytestmark = pytest.mark.e2e

KINDS = {
    "Times per day": "times_per_day",
    "Days of week": "days_of_week",
    "Day of month": "day_of_month",
    "Weekday of month": "weekday_of_month",
    SLOT_KIND: "hourly_slot",
    "Once": "once",
}
ONCE_PASSED = re.compile(
    r"^This date and time has passed \(it is now [A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2} [AP]M E[SD]T\): "
    r"choose a later one\.$"
)


@pytest.fixture(scope="module")
def planner(server: Server) -> Account:
    """This module's own plain user."""
    return _create_user(server, "schedule-page@example.org", "schedule-page-secret-4")


def fields_answer(page: Page, kind: str):
    """Wait for the kind fields (and preview) the Repeat choice asks for."""
    return page.expect_response(lambda r: "/schedule/fields?" in r.url and f"kind={kind}" in r.url)


def test_the_page_and_every_kind_open_without_an_error(page: Page, planner):
    """(1) No alert, no field marked invalid, before anything is chosen."""
    name = "Quiet schedule page"
    log_in(page, planner)
    create_export_job(page, name)
    open_schedule(page, name)
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(preview(page).get_by_role("heading")).to_have_text("Next runs")
    expect(preview(page)).to_contain_text("The next runs show here once you choose the days and the time.")
    repeat = page.get_by_label("Repeat")
    for label, value in KINDS.items():
        with fields_answer(page, value):
            repeat.select_option(label=label)
        expect(page.get_by_role("alert")).to_have_count(0)
        expect(page.locator("[aria-invalid=true]")).to_have_count(0)


def test_a_once_schedule_that_has_passed_is_refused(page: Page, planner):
    """(2) Once, yesterday: the preview says so, Save refuses it at the field, nothing saved."""
    name = "Once in the past"
    log_in(page, planner)
    create_export_job(page, name)
    open_schedule(page, name)
    page.get_by_role("switch", name="Schedule on").check()
    with fields_answer(page, "once"):
        page.get_by_label("Repeat").select_option(label="Once")
    when = page.get_by_label("Date and time")
    expect(when).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    yesterday = now_local().date() - timedelta(days=1)
    when.fill(f"{yesterday.isoformat()}T09:00")
    expect(preview(page).get_by_role("alert")).to_have_text(ONCE_PASSED)

    page.get_by_role("button", name="Save schedule").click()
    expect(page.get_by_role("heading", name=f"Schedule “{name}”")).to_be_visible()
    when = page.get_by_label("Date and time")
    expect(when).to_have_attribute("aria-invalid", "true")
    expect(when).to_have_accessible_description(ONCE_PASSED)
    expect(flash(page, "Schedule saved")).to_have_count(0)

    page.get_by_role("button", name="Back to the job").click()
    expect(page.get_by_role("term").filter(has_text=re.compile("^Schedule$"))).to_be_visible()
    expect(page.get_by_text("None: runs only when started")).to_be_visible()


def test_the_daily_slot_kind_says_what_it_is(page: Page, planner):
    """(3) The slot kind's name and help are shown, and its hours read as 12-hour times."""
    name = "Daily slot wording"
    log_in(page, planner)
    create_export_job(page, name)
    open_schedule(page, name)
    repeat = page.get_by_label("Repeat")
    expect(repeat.get_by_role("option", name=SLOT_KIND)).to_have_count(1)
    with fields_answer(page, "hourly_slot"):
        repeat.select_option(label=SLOT_KIND)
    expect(repeat).to_have_value("hourly_slot")
    expect(
        page.get_by_text("Runs once a day, inside the chosen 15-minute slot of that hour.")
    ).to_be_visible()
    expect(page.get_by_text("picks a random minute within the slot")).to_be_visible()
    hours = page.get_by_label("Hour").get_by_role("option")
    expect(hours).to_have_count(24)
    expect(hours.first).to_have_text("12:00 AM")
    expect(hours.last).to_have_text("11:00 PM")
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(preview(page).get_by_role("heading")).to_have_text("Next 10 runs")
    expect(preview(page)).to_contain_text("Shown at the slot's first minute")
    for text in preview(page).get_by_role("listitem").all_inner_texts():
        assert re.search(r" \d{1,2}:\d{2} [AP]M E[SD]T$", text), text


def test_the_blackout_from_label_fills_the_blackout_field(page: Page, planner):
    """(4) From (by its label) fills the blackout form's field; the Start date keeps its value;
    the blackout is added with those dates."""
    name = "Blackout labels"
    log_in(page, planner)
    create_export_job(page, name)
    open_schedule(page, name)
    start = page.get_by_label("Start date")
    start_before = start.input_value()
    first = now_local().date() + timedelta(days=20)
    page.get_by_label("From", exact=True).fill(first.isoformat())
    page.get_by_label("To", exact=True).fill((first + timedelta(days=2)).isoformat())
    page.get_by_label("Reason").fill("Office closed")
    expect(start).to_have_value(start_before)
    blackout_form = page.locator("form").filter(has=page.get_by_role("button", name="Add blackout dates"))
    expect(blackout_form.get_by_label("From", exact=True)).to_have_value(first.isoformat())
    # Each label sits right above its own field.
    for label in ("From", "To", "Reason"):
        label_box = blackout_form.get_by_text(label, exact=True).bounding_box()
        field_box = blackout_form.get_by_label(label, exact=True).bounding_box()
        assert label_box and field_box
        assert abs(label_box["x"] - field_box["x"]) < 2, (label, label_box, field_box)
        assert 0 <= field_box["y"] - label_box["y"] < 60, (label, label_box, field_box)

    page.get_by_role("button", name="Add blackout dates").click()
    expect(flash(page, "Blackout dates added.")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Office closed")
    expect(row.get_by_role("cell").nth(0)).to_have_text(f"{first:%b} {first.day}, {first.year}")
