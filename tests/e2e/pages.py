"""What the e2e tests share about the pages: where things are, and a large CSV to import."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Locator, Page, expect

ZONE = ZoneInfo("America/New_York")  # the server's CONVEYOR_TIMEZONE (its default)
RUN_TIMEOUT = 60_000  # ms: a run reaching a state on the real worker (a busy machine is slow)
# 400,000 one-column rows (about 4 MB) keep an import busy for a few seconds on the real worker.
LARGE_ROWS = 400_000
# 1,600,000 rows (about 19 MB, under the server's 24 MB upload limit) last several 2 s monitor
# polls even on a fast idle machine, where 400,000 rows can finish between two polls.
LONG_ROWS = 1_600_000
UPLOAD_LIMIT_MB = 24


def main_nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def run_status(page: Page) -> Locator:
    return page.get_by_role("region", name="Run status")


def job_number(page: Page, run_number: int = 1) -> int:
    """On a run page: the job's own number, from the line "Job #2 · run #3 of this job"."""
    line = page.get_by_text(re.compile(rf"^Job #\d+ · run #{run_number} of this job$"))
    expect(line).to_be_visible()
    return int(re.search(r"^Job #(\d+)", line.inner_text()).group(1))


def open_new_job(page: Page, kind: str) -> None:
    """Jobs → New job → New import / New export."""
    main_nav(page).get_by_role("link", name="Jobs", exact=True).click()
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    page.get_by_role("button", name="New job").click()
    expect(page.get_by_role("heading", name="New job")).to_be_visible()
    page.get_by_role("button", name=f"New {kind}").click()


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if not number:
            return text


def large_import_csv(directory: Path, prefix: str, rows: int = LARGE_ROWS) -> Path:
    """A one-column CSV of `rows` distinct, short, valid emails."""
    path = directory / f"{prefix}-{rows}.csv"
    with path.open("w", newline="") as out:
        out.write("Email\n")
        out.writelines(f"{prefix}{_base36(i)}@x.io\n" for i in range(rows))
    assert path.stat().st_size < UPLOAD_LIMIT_MB * 1024 * 1024
    return path
