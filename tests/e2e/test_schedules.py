"""Job schedules end to end, driven in chromium against the real launcher (see conftest.py):

1. a days-of-week schedule: the Repeat choice swaps the day toggles in (HTMX), the toggles show
   their checked state, the live "Next runs" preview lists 10 Monday/Friday 1:30 AM runs, and the
   job page shows the planned "Next" run and "On — every Monday and Friday at 1:30 AM, New York time";
2. an hourly slot that already started today is refused (preview and form), nothing is saved;
   the same slot tomorrow is saved with a random minute inside the slot;
3. Run now while a run of the job is busy queues the new run with its place in line, and it runs
   only after the first one finished;
4. a schedule paused with a reason shows who paused it and why on the job page and above the Job
   monitor, and runs again once resumed.

Times are those of the account time zone, America/New_York (the server's default).
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from datetime import time as dtime
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import Account, Server, _create_user, log_in
from tests.e2e.pages import LARGE_ROWS, ZONE, large_import_csv, main_nav, open_new_job
from webapp.jobs.schedule_forms import clock_text, slot_minutes_text

pytestmark = pytest.mark.e2e

# The refusal of a slot that has begun today names the next free one (a 12-hour time with its zone).
PAST_SLOT = re.compile(
    r"^The time selected occurs in the past: today's .+ slot has begun\. "
    r"The next free slot is \d{1,2}:\d{2}.*[AP]M E[SD]T (today|tomorrow), "
    r"or keep this slot and start tomorrow\.$"
)
SLOT_KIND = "Daily, in a 15-minute slot"
SLOT_LABELS = {0: "0–14", 1: "15–29", 2: "30–44", 3: "45–59"}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
LOCAL_TIME = re.compile(r"^([A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2} [AP]M) (E[SD]T)$")


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def scheduler(server: Server) -> Account:
    """This module's own plain user: its monitor and jobs hold only what these tests made."""
    return _create_user(server, "sched@example.org", "sched-secret-password-3")


def flash(page: Page, text: str | re.Pattern) -> Locator:
    return page.get_by_role("status").filter(has_text=text)


def now_local() -> datetime:
    return datetime.now(ZONE)


def local_text(moment: datetime) -> str:
    """A time as the product shows it: 'Nov 23, 2026 1:30 AM EST'."""
    clock = moment.strftime("%I:%M %p").lstrip("0")
    return f"{moment:%b} {moment.day}, {moment.year} {clock} {moment.tzname()}"


def parse_local(text: str) -> datetime:
    """'Nov 23, 2026 1:30 AM EST' → a naive local datetime (the zone name checked)."""
    match = LOCAL_TIME.match(text.strip())
    assert match, f"not a local time: {text!r}"
    return datetime.strptime(match.group(1), "%b %d, %Y %I:%M %p")


def create_export_job(page: Page, name: str) -> None:
    """Jobs → New job → New export, defaults, Save job; ends on the job page."""
    open_new_job(page, "export")
    expect(page.get_by_role("heading", name="New User Data Export")).to_be_visible()
    page.get_by_label("Job name").fill(name)
    page.get_by_role("button", name="Save job").click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(flash(page, f"“{name}” was saved.")).to_be_visible()


def open_schedule(page: Page, name: str, button: str = "Schedule") -> None:
    """From the job page, the Schedule (or Edit schedule) button."""
    page.get_by_role("button", name=button, exact=True).click()
    expect(page.get_by_role("heading", name=f"Schedule “{name}”")).to_be_visible()


def described(page: Page, term: str) -> Locator:
    """The value the job page shows for `term` (its parameters list)."""
    return (
        page.get_by_role("term")
        .filter(has_text=re.compile(rf"^{term}$"))
        .locator("xpath=following-sibling::dd[1]")
    )


def runs_table(page: Page) -> Locator:
    return page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Run #"))


def preview(page: Page) -> Locator:
    return page.get_by_role("region", name="Next runs")


def preview_answer(page: Page, **expected: str):
    """Wait for the preview (or kind fields) answer to the form as it is once `expected` holds:
    earlier changes may still have requests in flight with other values."""

    def matches(response) -> bool:
        if not re.search(r"/schedule/(preview|fields)\?", response.url):
            return False
        query = {k: v[-1] for k, v in parse_qs(urlparse(response.url).query).items()}
        return all(query.get(key) == value for key, value in expected.items())

    return page.expect_response(matches)


def hour_label(hour: int) -> str:
    """The Hour choice as the page words it: '12:00 AM' … '11:00 PM'."""
    return f"{hour % 12 or 12}:00 {'AM' if hour < 12 else 'PM'}"


def pick_hourly_slot(page: Page, day, hour: int, slot: int) -> None:
    """On the schedule page: Repeat daily in a slot, Start date `day`, Hour, Minutes slot."""
    page.get_by_label("Repeat").select_option(label=SLOT_KIND)
    expect(page.get_by_label("Hour")).to_be_visible()
    page.get_by_label("Start date").fill(day.isoformat())
    page.get_by_label("Hour").select_option(label=hour_label(hour))
    with preview_answer(page, kind="hourly_slot", start_date=day.isoformat(), hour=str(hour), slot=str(slot)):
        page.get_by_label("Minutes").select_option(label=SLOT_LABELS[slot])


def next_weekly(start: datetime, weekdays: set[int], at: dtime, count: int) -> list[datetime]:
    """The next `count` local times on `weekdays` at `at`, after `start` (as tests/test_planner
    expects of the planner)."""
    found: list[datetime] = []
    day = start.date()
    while len(found) < count:
        if day.weekday() in weekdays:
            wall = datetime.combine(day, at, tzinfo=ZONE)
            if wall > start:
                found.append(wall)
        day += timedelta(days=1)
    return found


def background(locator: Locator) -> str:
    return locator.evaluate("element => getComputedStyle(element).backgroundColor")


def settle_inside_a_slot(margin: float = 30.0) -> datetime:
    """Now, local, at least `margin` seconds before the current 15-minute slot ends (waiting for
    the next slot if needed), so the slot and the date stay those of the test's last look."""
    now = now_local()
    slot_end = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0) + timedelta(minutes=15)
    left = (slot_end - now).total_seconds()
    if left < margin:
        time.sleep(left + 1)
        now = now_local()
    return now


# ----------------------------------------------------------------------------- tests


def test_days_of_week_schedule_shows_its_next_runs(page: Page, scheduler):
    """(1) Toggle Monday and Friday at 01:30: preview of 10 runs, then Next on the job page."""
    name = "Twice-weekly export"
    log_in(page, scheduler)
    create_export_job(page, name)
    expect(described(page, "Schedule")).to_have_text("None: runs only when started")
    open_schedule(page, name)
    expect(page).to_have_title(f"Schedule · {name} · Conveyor")
    expect(page.get_by_text("Times are in America/New_York")).to_be_visible()

    switch = page.get_by_role("switch", name="Schedule on")
    expect(switch).not_to_be_checked()
    switch.check()
    expect(switch).to_be_checked()

    repeat = page.get_by_label("Repeat")
    days = page.get_by_role("group", name="Days")
    # Another kind first, so the day toggles are seen to come and go with the Repeat choice.
    repeat.select_option(label="Times per day")
    expect(page.get_by_label("Runs per day")).to_be_visible()
    expect(days).to_have_count(0)
    repeat.select_option(label="Days of week")
    expect(days).to_be_visible()
    expect(page.get_by_label("Runs per day")).to_have_count(0)
    expect(days.get_by_role("checkbox")).to_have_count(7)
    for day in WEEKDAYS:
        expect(days.get_by_role("checkbox", name=day, exact=True)).not_to_be_checked()
    unselected = background(days.get_by_text("Tuesday", exact=True))

    for day in ("Monday", "Friday"):
        days.get_by_text(day, exact=True).click()  # the toggle button a person sees
    for day in WEEKDAYS:
        checkbox = days.get_by_role("checkbox", name=day, exact=True)
        toggle = days.get_by_text(day, exact=True)
        if day in ("Monday", "Friday"):
            expect(checkbox).to_be_checked()
            expect(toggle).to_have_css("color", "rgb(255, 255, 255)")
            assert background(toggle) != unselected, f"{day} does not look selected"
        else:
            expect(checkbox).not_to_be_checked()
            assert background(toggle) == unselected, f"{day} looks selected"

    page.get_by_label("Time", exact=True).fill("01:30")
    expected = next_weekly(now_local(), {0, 4}, dtime(1, 30), 10)
    runs = preview(page)
    expect(runs.get_by_role("heading")).to_have_text("Next 10 runs")
    expect(runs.get_by_role("listitem")).to_have_text([local_text(at) for at in expected])
    for text in runs.get_by_role("listitem").all_inner_texts():
        shown = parse_local(text)
        assert shown.weekday() in (0, 4) and (shown.hour, shown.minute) == (1, 30), text

    page.get_by_role("button", name="Save schedule").click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(page).to_have_title(f"{name} · Conveyor")
    expect(flash(page, "Schedule saved.")).to_have_text("Schedule saved.")
    expect(described(page, "Schedule")).to_have_text("On — every Monday and Friday at 1:30 AM, New York time")
    first = runs_table(page).get_by_role("row").nth(1)
    # (worked out again now: a run due at 1:30 may have come and gone since the preview)
    expect(first.get_by_role("cell")).to_have_text(
        [
            "Next",
            local_text(next_weekly(now_local(), {0, 4}, dtime(1, 30), 1)[0]),
            "",
            "Planned",
            "by the schedule",
        ]
    )
    # The planned run is shown once, as Next (not also as a numbered run).
    expect(runs_table(page).get_by_role("row").filter(has_text="Planned")).to_have_count(1)
    expect(runs_table(page).get_by_role("link", name=re.compile(r"^#\d+$"))).to_have_count(0)
    expect(page.get_by_role("button", name="Edit schedule")).to_be_visible()

    # Editing shows the saved schedule back.
    open_schedule(page, name, "Edit schedule")
    expect(page.get_by_role("switch", name="Schedule on")).to_be_checked()
    expect(page.get_by_label("Repeat")).to_have_value("days_of_week")
    for day in WEEKDAYS:
        checkbox = page.get_by_role("group", name="Days").get_by_role("checkbox", name=day)
        if day in ("Monday", "Friday"):
            expect(checkbox).to_be_checked()
        else:
            expect(checkbox).not_to_be_checked()
    expect(page.get_by_label("Time", exact=True)).to_have_value("01:30")
    expect(preview(page).get_by_role("listitem").first).to_have_text(local_text(expected[0]))


def test_an_hourly_slot_in_the_past_is_refused(page: Page, scheduler):
    """(2) Today's slot that has already begun: refused, nothing saved; tomorrow's is saved."""
    name = "Hourly slot export"
    log_in(page, scheduler)
    create_export_job(page, name)
    open_schedule(page, name)

    now = settle_inside_a_slot()
    today, hour, slot = now.date(), now.hour, now.minute // 15
    page.get_by_role("switch", name="Schedule on").check()
    pick_hourly_slot(page, today, hour, slot)
    expect(preview(page).get_by_role("alert")).to_have_text(PAST_SLOT)
    expect(preview(page).get_by_role("listitem")).to_have_count(0)

    page.get_by_role("button", name="Save schedule").click()
    expect(page.get_by_role("heading", name=f"Schedule “{name}”")).to_be_visible()
    hour_field = page.get_by_label("Hour")
    expect(hour_field).to_have_attribute("aria-invalid", "true")
    expect(hour_field).to_have_accessible_description(PAST_SLOT)
    expect(page.get_by_role("alert").filter(has_text=PAST_SLOT)).to_have_count(1)  # at its field only
    expect(preview(page)).to_contain_text("No runs until the problem above is fixed.")
    expect(flash(page, "Schedule saved")).to_have_count(0)
    # The refused form keeps what was chosen.
    expect(page.get_by_label("Repeat")).to_have_value("hourly_slot")
    expect(hour_field).to_have_value(str(hour))
    expect(page.get_by_label("Minutes")).to_have_value(str(slot))

    page.get_by_role("button", name="Back to the job").click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(described(page, "Schedule")).to_have_text("None: runs only when started")
    expect(runs_table(page).get_by_role("cell", name="No runs yet.")).to_be_visible()
    expect(page.get_by_role("button", name="Pause schedule")).to_have_count(0)

    # The same slot tomorrow is in the future: saved, with a random minute inside the slot.
    open_schedule(page, name)
    tomorrow = today + timedelta(days=1)
    page.get_by_role("switch", name="Schedule on").check()
    page.get_by_label("Repeat").select_option(label=SLOT_KIND)
    expect(page.get_by_label("Hour")).to_be_visible()
    page.get_by_label("Start date").fill(tomorrow.isoformat())
    page.get_by_label("Hour").select_option(label=hour_label(hour))
    with preview_answer(page, start_date=tomorrow.isoformat(), hour=str(hour), slot=str(slot)):
        page.get_by_label("Minutes").select_option(label=SLOT_LABELS[slot])
    expect(preview(page).get_by_text(PAST_SLOT)).to_have_count(0)
    page.get_by_role("button", name="Save schedule").click()

    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    saved = flash(page, "Schedule saved.")
    expect(saved).to_have_text(
        re.compile(
            r"^Schedule saved\. It runs daily at .+: the minute :\d{2} was picked at random in its slot\.$"
        )
    )
    minute = int(re.search(r"the minute :(\d{2}) was picked", saved.inner_text()).group(1))
    assert slot * 15 <= minute <= slot * 15 + 14, f":{minute:02d} is outside the slot"
    expect(described(page, "Schedule")).to_have_text(
        f"On — daily at {clock_text(hour, minute)} (its minute picked in {slot_minutes_text(hour, slot)}), "
        "New York time"
    )
    next_run = datetime.combine(tomorrow, dtime(hour, minute), tzinfo=ZONE)
    expect(runs_table(page).get_by_role("row").nth(1).get_by_role("cell")).to_have_text(
        ["Next", local_text(next_run), "", "Planned", "by the schedule"]
    )

    open_schedule(page, name, "Edit schedule")
    saved_at = local_text(next_run).split(" ", 3)[3]  # '2:07 PM EST'
    expect(
        page.get_by_text(f"Runs daily at {saved_at} (the minute picked when it was saved).")
    ).to_be_visible()


def test_the_preview_of_a_later_hourly_slot_lists_its_runs(page: Page, scheduler):
    """The preview of a future 15–29 slot lists 10 daily runs in that slot (at its first
    minute until a random one is picked on save)."""
    name = "Hourly slot preview"
    log_in(page, scheduler)
    create_export_job(page, name)
    open_schedule(page, name)
    tomorrow = now_local().date() + timedelta(days=1)
    page.get_by_label("Repeat").select_option(label=SLOT_KIND)
    expect(page.get_by_label("Hour")).to_be_visible()
    page.get_by_label("Start date").fill(tomorrow.isoformat())
    page.get_by_label("Hour").select_option(label="2:00 PM")
    with preview_answer(page, start_date=tomorrow.isoformat(), hour="14", slot="1"):
        page.get_by_label("Minutes").select_option(label=SLOT_LABELS[1])
    runs = preview(page)
    expect(runs.get_by_role("alert")).to_have_count(0)
    expect(runs.get_by_role("listitem")).to_have_count(10)
    for text in runs.get_by_role("listitem").all_inner_texts():
        shown = parse_local(text)
        assert shown.hour == 14 and 15 <= shown.minute <= 29, text


# ------------------------------------------------------------- Run now while a run is busy


def run_row(page: Page, name: str, number: int) -> Locator:
    """The Job monitor's row of run #`number` of the job called `name`."""
    return (
        page.get_by_role("row")
        .filter(has=page.get_by_role("link", name=name, exact=True))
        .filter(has_text=re.compile(rf"\brun #{number}\b"))
    )


def stop_unfinished(page: Page, name: str) -> None:
    """Best effort, after a failure: Stop the job's unfinished runs from the monitor."""
    try:
        page.goto("/")
        page.on("dialog", lambda dialog: dialog.accept())
        label = re.compile(rf"^Stop {re.escape(name)} (run #\d+|planned run)$")
        stop = page.get_by_role("button", name=label)
        for button in stop.all():
            button.click()
    except Exception:  # noqa: BLE001 - cleanup must not hide the failure
        pass


def test_run_now_while_a_run_is_busy_queues_it_with_its_place(page: Page, scheduler, tmp_path):
    """(3) Run now during a large import: queued "#1 in line" (the running run is not in the
    line), runs once run #1 is done."""
    name = "Large import run twice"
    path = large_import_csv(tmp_path, "q")
    log_in(page, scheduler)
    open_new_job(page, "import")
    expect(page.get_by_role("heading", name="New User Data Import")).to_be_visible()
    page.get_by_label("Job name").fill(name)
    page.get_by_label("CSV file").set_input_files(path)
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_role("heading", name="Map columns")).to_be_visible()
    expect(page.get_by_role("combobox", name="Field for column “Email”")).to_have_value("email")
    finished = False
    try:
        page.get_by_role("button", name="Save and run now").click()
        expect(page.get_by_role("heading", name=f"{name} run #1")).to_be_visible()
        expect(flash(page, f"“{name}” was saved and run #1 started.")).to_be_visible()

        page.get_by_role("button", name="Job", exact=True).click()
        expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
        first = (
            runs_table(page).get_by_role("row").filter(has=page.get_by_role("link", name="#1", exact=True))
        )
        expect(first).not_to_contain_text("Completed")  # still busy
        page.get_by_role("button", name="Run now", exact=True).click()

        expect(page.get_by_role("heading", name=f"{name} run #2")).to_be_visible()
        expect(flash(page, "is queued")).to_have_text(
            "Run #2 is queued, #1 in the data line, waiting for run #1."
        )
        expect(page.get_by_role("region", name="Run status")).to_contain_text(
            "Queued: #1 in the data line, waiting for run #1."
        )

        main_nav(page).get_by_role("link", name="Job monitor").click()
        expect(page.get_by_role("heading", name="Job monitor")).to_be_visible()
        first, second = run_row(page, name, 1), run_row(page, name, 2)
        expect(second.get_by_role("cell").nth(5)).to_have_text(
            "Queued #1 in the data line, waiting for run #1"
        )
        expect(first.get_by_role("cell").nth(5)).not_to_contain_text("Completed")

        # Watch the monitor (it updates itself every 2 s) until both are done: while run #1
        # is not finished, run #2 keeps waiting.
        rows = page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))
        deadline = time.monotonic() + 60
        seen_waiting = 0
        while True:
            texts = rows.all_inner_texts()  # one snapshot of both rows
            states = {}
            for text in texts:
                number = int(re.search(r"\brun #(\d+)\b", text).group(1))
                states[number] = text
            assert set(states) == {1, 2}, texts
            if "Completed" not in states[1]:
                assert "Queued" in states[2], f"run #2 left the queue early: {texts}"
                seen_waiting += 1
            if "Completed" in states[1] and "Completed" in states[2]:
                break
            assert time.monotonic() < deadline, f"the runs did not both complete: {texts}"
            page.wait_for_timeout(250)
        assert seen_waiting, "run #1 was already done when first looked at"
        finished = True

        run1_done = parse_local(first.get_by_role("cell").nth(4).inner_text())
        run2_started = parse_local(second.get_by_role("cell").nth(3).inner_text())
        assert run2_started >= run1_done, (run1_done, run2_started)

        second.get_by_role("link", name=name, exact=True).click()
        expect(page.get_by_role("heading", name=f"{name} run #2")).to_be_visible()
        status = page.get_by_role("region", name="Run status")
        expect(status).to_contain_text(re.compile(r"State:\s*Completed\b"))
        expect(page.get_by_label("Counts")).to_contain_text(f"{LARGE_ROWS:,}")
    finally:
        if not finished:
            stop_unfinished(page, name)


# ------------------------------------------------------------------------ pause and resume


def test_pause_a_schedule_with_a_reason_then_resume_it(page: Page, scheduler):
    """(4) Paused: who and why on the job page and the monitor, no planned run; Resume."""
    name = "Weekly export to pause"
    reason = "Data cleanup this week"
    log_in(page, scheduler)
    create_export_job(page, name)
    open_schedule(page, name)
    page.get_by_role("switch", name="Schedule on").check()
    page.get_by_label("Repeat").select_option(label="Days of week")
    page.get_by_role("group", name="Days").get_by_text("Wednesday", exact=True).click()
    page.get_by_label("Time", exact=True).fill("09:00")
    expect(preview(page).get_by_role("listitem")).to_have_count(10)
    page.get_by_role("button", name="Save schedule").click()
    expect(flash(page, "Schedule saved.")).to_be_visible()
    schedule_text = "every Wednesday at 9:00 AM, New York time"
    expect(described(page, "Schedule")).to_have_text(f"On — {schedule_text}")
    next_row = runs_table(page).get_by_role("row").filter(has_text="Next")
    expect(next_row).to_contain_text("Planned")

    # A pause needs a reason.
    page.get_by_role("button", name="Pause schedule").click()
    expect(page.get_by_role("alert").filter(has_text="Give a reason to pause the schedule.")).to_be_visible()
    expect(described(page, "Schedule")).to_have_text(f"On — {schedule_text}")

    resume_on = now_local().date() + timedelta(days=7)
    page.get_by_label("Reason").fill(reason)
    page.get_by_label("Resume automatically on").fill(resume_on.isoformat())
    page.get_by_role("button", name="Pause schedule").click()
    expect(flash(page, "Schedule paused:")).to_have_text(
        "Schedule paused: nothing runs by itself until it is resumed."
    )
    expect(described(page, "Schedule")).to_have_text(f"Paused — {schedule_text}")
    banner = flash(page, "Schedule paused by")
    expect(banner).to_have_text(
        re.compile(
            rf"^Schedule paused by {re.escape(scheduler.email)} on "
            rf"[A-Z][a-z]{{2}} \d{{1,2}}, \d{{4}} \d{{1,2}}:\d{{2}} [AP]M E[SD]T: "
            rf"{re.escape(reason)} — resumes by itself on {resume_on:%b} {resume_on.day}, {resume_on.year}\.$"
        )
    )
    expect(next_row).to_have_count(0)  # the planned run is withdrawn
    expect(runs_table(page).get_by_role("cell", name="No runs yet.")).to_be_visible()
    expect(page.get_by_role("button", name="Pause schedule")).to_have_count(0)

    main_nav(page).get_by_role("link", name="Job monitor").click()
    expect(page.get_by_role("heading", name="Job monitor")).to_be_visible()
    notice = flash(page, f"Schedule of {name} paused")
    expect(notice).to_have_text(
        f"Schedule of {name} paused by {scheduler.email}: {reason} "
        f"(resumes on {resume_on:%b} {resume_on.day}, {resume_on.year})."
    )
    notice.get_by_role("link", name=name, exact=True).click()

    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    page.get_by_role("button", name="Resume schedule").click()
    expect(flash(page, "Schedule resumed.")).to_have_text("Schedule resumed.")
    expect(described(page, "Schedule")).to_have_text(f"On — {schedule_text}")
    expect(flash(page, "Schedule paused by")).to_have_count(0)
    expected = next_weekly(now_local(), {2}, dtime(9, 0), 1)[0]
    expect(next_row.get_by_role("cell")).to_have_text(
        ["Next", local_text(expected), "", "Planned", "by the schedule"]
    )
    expect(page.get_by_role("button", name="Pause schedule")).to_be_visible()

    main_nav(page).get_by_role("link", name="Job monitor").click()
    expect(page.get_by_role("heading", name="Job monitor")).to_be_visible()
    expect(flash(page, f"Schedule of {name} paused")).to_have_count(0)
