"""The foundation end to end: import, monitor, export and download, super admin oversight and
audit, run isolation between users, live progress and Stop — driven in chromium against the
real server, worker, scheduler and Redis started by the launcher (see conftest.py)."""

from __future__ import annotations

import csv
import io
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.e2e.conftest import Account, log_in
from tests.e2e.pages import (
    LARGE_ROWS,
    LONG_ROWS,
    RUN_TIMEOUT,
    job_number,
    large_import_csv,
    main_nav,
    open_new_job,
    run_status,
)

pytestmark = pytest.mark.e2e

MONITOR_HEADINGS = ["Type", "Job #", "Job Name", "Started", "Completed", "Progress", "Results", "Stop"]
LOCAL_TIME = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2} [AP]M E[SD]T$")
EXPORT_HEADER = [
    "Email",
    "First name",
    "Last name",
    "Address",
    "City",
    "State",
    "Postal code",
    "Country",
    "Phone",
    "Opted in",
    "Donation total",
]
IMPORT_NAME = "Spring supporters"
EXPORT_NAME = "Everyone for the newsletter"


# --------------------------------------------------------------------------- helpers


def small_import_csv() -> tuple[bytes, list[str]]:
    """20 good supporters and one bad row (zip '1234' on line 7; the header is line 1)."""
    lines = ["Email,First name,Last name,City,State,Zip"]
    good = []
    for i in range(1, 22):
        email = f"supporter{i:02d}@example.org"
        zip_code = "1234" if len(lines) + 1 == 7 else f"{62700 + i}"
        lines.append(f"{email},First{i},Last{i},Springfield,IL,{zip_code}")
        if zip_code != "1234":
            good.append(email)
    assert len(good) == 20 and len(lines) == 22
    return ("\n".join(lines) + "\n").encode(), good


def upload_import(page: Page, name: str, csv_file) -> None:
    """Import step 1; `csv_file` is a path or a Playwright file payload. Ends on Map columns."""
    open_new_job(page, "import")
    expect(page.get_by_role("heading", name="New User Data Import")).to_be_visible()
    page.get_by_label("Job name").fill(name)
    page.get_by_label("CSV file").set_input_files(csv_file)
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_role("heading", name="Map columns")).to_be_visible()


def save_and_run(page: Page, name: str) -> int:
    """Click "Save and run now"; returns the run's id from the address of the run page it
    lands on (its job's own number is job_number(page))."""
    page.get_by_role("button", name="Save and run now").click()
    expect(page.get_by_role("heading", name=re.compile(rf"^{re.escape(name)}\s+run #\d+$"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    return int(re.search(r"/runs/(\d+)$", page.url).group(1))


def create_export(page: Page, name: str) -> int:
    """Jobs → New job → New export, default fields and filter, Save and run now."""
    open_new_job(page, "export")
    expect(page.get_by_role("heading", name="New User Data Export")).to_be_visible()
    page.get_by_label("Job name").fill(name)
    return save_and_run(page, name)


def expect_state(page: Page, state: str, timeout: int = RUN_TIMEOUT) -> None:
    """Wait (the run page polls itself) until the run shows `state`."""
    expect(run_status(page)).to_contain_text(re.compile(rf"State:\s*{state}\b"), timeout=timeout)


def count(page: Page, name: str) -> Locator:
    """The value shown for the count called `name` (Checked, Created, ... Rejected)."""
    term = page.get_by_role("term").filter(has_text=re.compile(rf"^{name}$"))
    return page.get_by_label("Counts").locator("div").filter(has=term).get_by_role("definition")


def monitor_row(page: Page, job_name: str) -> Locator:
    """The monitor's (or History's) row whose Job Name link is `job_name`."""
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=job_name, exact=True))


def download_label(job_name: str, number: int = 1) -> str:
    """The Download link of run #`number` of the job called `job_name` (monitor, History)."""
    return f"Download results of {job_name} run #{number}"


def read_download(download) -> str:
    return Path(download.path()).read_text(encoding="utf-8-sig")  # exports start with a BOM for Excel


# ------------------------------------------------------- the first import, shared by tests


@dataclass
class ImportedRun:
    name: str
    run_id: int
    job_id: int  # the job's own number (the monitor's "Job #")
    emails: list[str]


_SHARED: dict[str, ImportedRun] = {}


def _import_small(page: Page) -> ImportedRun:
    payload, good = small_import_csv()
    upload_import(page, IMPORT_NAME, {"name": "spring.csv", "mimeType": "text/csv", "buffer": payload})
    run_id = save_and_run(page, IMPORT_NAME)
    expect_state(page, "Completed")
    imported = ImportedRun(IMPORT_NAME, run_id, job_number(page), good)
    _SHARED["import"] = imported
    return imported


@pytest.fixture
def first_import(new_context, plain_user: Account) -> ImportedRun:
    """The plain user's small import (made by test_import_... or here when run on its own)."""
    if "import" not in _SHARED:
        ctx: BrowserContext = new_context()
        page = ctx.new_page()
        log_in(page, plain_user)
        _import_small(page)
        ctx.close()
    return _SHARED["import"]


# ----------------------------------------------------------------------------- tests


def test_import_creates_supporters_and_lists_the_rejected_line(page: Page, plain_user):
    """(a) Upload → map (preview + preselected fields) → Save and run now → Completed 20/1."""
    payload, good = small_import_csv()
    log_in(page, plain_user)
    upload_import(page, IMPORT_NAME, {"name": "spring.csv", "mimeType": "text/csv", "buffer": payload})

    expect(page.get_by_text("spring.csv")).to_be_visible()
    expect(page.get_by_label("Job name")).to_have_value(IMPORT_NAME)
    preview = page.get_by_role("table", name="Preview of the first rows")
    expect(preview.get_by_role("columnheader")).to_have_text(
        ["Email", "First name", "Last name", "City", "State", "Zip"]
    )
    body_rows = preview.locator("tbody").get_by_role("row")
    expect(body_rows).to_have_count(5)
    expect(body_rows.first.get_by_role("cell")).to_have_text(
        ["supporter01@example.org", "First1", "Last1", "Springfield", "IL", "62701"]
    )
    expect(body_rows.nth(4).get_by_role("cell").first).to_have_text("supporter05@example.org")
    for column, field in [
        ("Email", "email"),
        ("First name", "first_name"),
        ("Last name", "last_name"),
        ("City", "city"),
        ("State", "state"),
        ("Zip", "zip"),
    ]:
        select = page.get_by_role("combobox", name=f"Field for column “{column}”")
        expect(select).to_have_value(field)

    run_id = save_and_run(page, IMPORT_NAME)
    expect(page.get_by_role("status").filter(has_text="was saved and run #1 started")).to_be_visible()
    expect_state(page, "Completed")
    expect(count(page, "Checked")).to_have_text("21")
    expect(count(page, "Created")).to_have_text("20")
    expect(count(page, "Rejected")).to_have_text("1")
    expect(page.get_by_role("heading", name="Rejected lines")).to_be_visible()
    expect(
        page.get_by_role(
            "cell", name="line 7: '1234' is not a valid US ZIP code (like 12345 or 12345-6789)", exact=True
        )
    ).to_be_visible()
    expect(page.get_by_role("button", name="Download results")).to_be_visible()
    _SHARED["import"] = ImportedRun(IMPORT_NAME, run_id, job_number(page), good)


def test_monitor_columns_and_local_times_for_a_plain_user(page: Page, plain_user, first_import):
    """(b) Exact headings, no User column, and times in the account zone (EST/EDT)."""
    log_in(page, plain_user)
    main_nav(page).get_by_role("link", name="Job monitor").click()
    expect(page.get_by_role("heading", name="Job monitor")).to_be_visible()
    expect(page.get_by_role("columnheader")).to_have_text(MONITOR_HEADINGS)
    expect(page.get_by_role("columnheader", name="User")).to_have_count(0)

    row = monitor_row(page, first_import.name)
    expect(row).to_have_count(1)
    cells = row.get_by_role("cell")
    expect(cells.nth(0)).to_have_text("User Data Import")
    expect(cells.nth(1)).to_have_text(str(first_import.job_id))  # the job's own number
    expect(cells.nth(1).get_by_role("link")).to_have_attribute("href", f"/jobs/{first_import.job_id}")
    expect(cells.nth(2)).to_contain_text("run #1")
    expect(cells.nth(3)).to_have_text(LOCAL_TIME)  # Started
    expect(cells.nth(4)).to_have_text(LOCAL_TIME)  # Completed
    expect(cells.nth(5)).to_have_text("Completed")
    expect(row.get_by_role("link", name=download_label(first_import.name))).to_be_visible()


def test_export_download_leaves_the_monitor_but_stays_in_history(page: Page, plain_user, first_import):
    """(c) Export → Completed → download from the monitor → gone from it → still in History."""
    log_in(page, plain_user)
    open_new_job(page, "export")
    expect(page.get_by_role("heading", name="New User Data Export")).to_be_visible()
    page.get_by_label("Job name").fill(EXPORT_NAME)
    fields = page.get_by_role("group", name="Fields").get_by_role("checkbox")
    expect(fields).to_have_count(len(EXPORT_HEADER))
    for i in range(len(EXPORT_HEADER)):
        expect(fields.nth(i)).to_be_checked()
    expect(page.get_by_role("radio", name="All supporters")).to_be_checked()
    save_and_run(page, EXPORT_NAME)
    expect_state(page, "Completed")

    main_nav(page).get_by_role("link", name="Job monitor").click()
    link = page.get_by_role("link", name=download_label(EXPORT_NAME))
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == f"{EXPORT_NAME} - export #1.csv"
    rows = list(csv.reader(io.StringIO(read_download(download))))
    assert rows[0] == EXPORT_HEADER
    exported = {row[0] for row in rows[1:]}
    assert set(first_import.emails) <= exported
    assert "supporter06@example.org" not in exported  # the rejected line 7
    by_email = {row[0]: row for row in rows[1:]}
    assert by_email["supporter01@example.org"][1:3] == ["First1", "Last1"]
    assert by_email["supporter01@example.org"][6] == "62701"

    page.reload()
    expect(page.get_by_role("heading", name="Job monitor")).to_be_visible()
    expect(monitor_row(page, EXPORT_NAME)).to_have_count(0)
    expect(page.get_by_role("link", name=download_label(EXPORT_NAME))).to_have_count(0)

    main_nav(page).get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    row = monitor_row(page, EXPORT_NAME)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Completed")
    expect(row.get_by_role("link", name=download_label(EXPORT_NAME))).to_be_visible()
    expect(row).to_contain_text(re.compile(r"downloaded .* E[SD]T"))


def test_super_admin_sees_every_user_and_downloads_are_audited(
    page: Page, super_admin, plain_user, first_import
):
    """(d) User column, a download on behalf of the user, and the Audit log entry for it."""
    log_in(page, super_admin)
    expect(page.get_by_role("columnheader")).to_have_text(
        MONITOR_HEADINGS[:3] + ["User"] + MONITOR_HEADINGS[3:]
    )
    row = monitor_row(page, first_import.name)
    expect(row.get_by_role("cell", name=plain_user.email, exact=True)).to_be_visible()

    main_nav(page).get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    row = monitor_row(page, first_import.name)
    expect(row.get_by_role("cell", name=plain_user.email, exact=True)).to_be_visible()
    with page.expect_download() as info:
        row.get_by_role("link", name=download_label(first_import.name)).click()
    download = info.value
    result_name = f"{first_import.name} - import report #1.csv"
    assert download.suggested_filename == result_name
    report = list(csv.reader(io.StringIO(read_download(download))))
    assert report == [
        ["line", "reason"],
        ["7", "line 7: '1234' is not a valid US ZIP code (like 12345 or 12345-6789)"],
    ]

    main_nav(page).get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    entry = page.get_by_role("row").filter(
        has_text=f"Downloaded {result_name} on behalf of {plain_user.email}: the result of run #1 of "
        f"Job #{first_import.job_id}"
    )
    expect(entry).to_have_count(1)
    cells = entry.get_by_role("cell")
    expect(cells.nth(0)).to_have_text(LOCAL_TIME)
    expect(cells.nth(1)).to_have_text(super_admin.email)
    expect(cells.nth(2)).to_have_text("Result downloaded for its owner")
    expect(cells.nth(3).get_by_role("link", name=f"run {first_import.run_id}")).to_be_visible()


def test_a_user_cannot_open_someone_elses_run(page: Page, super_admin, plain_user, another_person):
    """(e) The super admin's run answers 404 to a plain user, page and result file alike."""
    log_in(page, super_admin)
    name = "Admin private export"
    run_id = create_export(page, name)
    expect_state(page, "Completed")
    expect(page.get_by_role("button", name="Download results")).to_be_visible()

    user_page = another_person()
    log_in(user_page, plain_user)
    response = user_page.goto(f"/runs/{run_id}")
    assert response.status == 404
    expect(user_page.get_by_role("heading", name="Not Found")).to_be_visible()
    expect(user_page.get_by_text("There is nothing here, or you do not have access to it.")).to_be_visible()
    expect(user_page.get_by_text(name)).to_have_count(0)
    for path in (f"/runs/{run_id}/result", f"/runs/{run_id}/status", f"/runs/{run_id}/log.txt"):
        assert user_page.request.get(path).status == 404, path

    main_nav(user_page).get_by_role("link", name="History").click()
    expect(user_page.get_by_role("heading", name="History")).to_be_visible()
    expect(user_page.get_by_role("link", name=name)).to_have_count(0)


def test_monitor_shows_live_progress_then_stops_polling(page: Page, second_user, tmp_path):
    """(f) A large import's progress bar and percentage update live; polling then stops."""
    name = "Large import with progress"
    path = large_import_csv(tmp_path, "p", rows=LONG_ROWS)
    log_in(page, second_user)
    upload_import(page, name, path)
    expect(page.get_by_role("combobox", name="Field for column “Email”")).to_have_value("email")
    save_and_run(page, name)

    main_nav(page).get_by_role("link", name="Job monitor").click()
    expect(page.get_by_role("heading", name="Job monitor")).to_be_visible()
    expect(page.locator("#monitor-poller")).to_have_attribute("hx-trigger", "every 2s")
    running = (
        page.get_by_role("row")
        .filter(has=page.get_by_role("progressbar", name=f"Progress of {name}"))
        .filter(has_text=re.compile(r"\b\d{1,2}%"))
    )
    expect(running).to_be_visible(timeout=RUN_TIMEOUT)

    row = monitor_row(page, name)
    expect(row.get_by_role("cell").nth(5)).to_have_text("Completed", timeout=RUN_TIMEOUT)
    expect(row.get_by_role("progressbar")).to_have_count(0)
    expect(row.get_by_role("link", name=download_label(name))).to_be_visible()
    poller = page.locator("#monitor-poller")
    expect(poller).to_have_count(1)
    expect(poller).not_to_have_attribute("hx-get", re.compile(".*"))
    expect(poller).not_to_have_attribute("hx-trigger", re.compile(".*"))
    # Nothing runs any more: no further polls reach the server.
    polls: list[str] = []
    page.on(
        "request", lambda request: polls.append(request.url) if "/monitor/updates" in request.url else None
    )
    page.wait_for_timeout(2_500)  # longer than the 2 s polling interval
    assert polls == []


def test_stop_a_large_import_from_the_monitor(page: Page, second_user, tmp_path):
    """(f) Stop from the monitor mid-import: Cancelled, and the log says how much was kept."""
    name = "Large import to stop"
    path = large_import_csv(tmp_path, "s")
    log_in(page, second_user)
    upload_import(page, name, path)
    save_and_run(page, name)

    # Like a person, reload the monitor until the import is past extraction and processing.
    row = monitor_row(page, name)
    deadline = time.monotonic() + RUN_TIMEOUT / 1000
    while True:
        page.goto("/")
        text = row.inner_text()
        if row.get_by_role("progressbar").count() and "Extracting" not in text:
            break
        assert "Completed" not in text, "the import finished before it could be stopped"
        assert time.monotonic() < deadline, f"the import never started processing: {text!r}"

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=f"Stop {name} run #1").click()
    expect(row.get_by_role("status")).to_have_text(
        "Stopping at the next batch boundary; what was already saved stays."
    )
    expect(row.get_by_role("cell").nth(5)).to_contain_text("Cancelled", timeout=RUN_TIMEOUT)

    row.get_by_role("link", name=name, exact=True).click()
    expect_state(page, "Cancelled")
    log = page.get_by_label("Log")
    stopped = re.compile(
        r"Stopped at a batch boundary: ([\d,]+) of 400,000 records were "
        r"imported and stay so\."
    )
    expect(log).to_contain_text(stopped)
    expect(log).to_contain_text("Stop requested by")
    done = int(stopped.search(log.inner_text()).group(1).replace(",", ""))
    assert 0 <= done < LARGE_ROWS
    expect(count(page, "Created")).to_have_text(f"{done:,}")
    expect(page.get_by_role("button", name="Stop")).to_have_count(0)
