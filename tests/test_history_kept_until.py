"""History says, for each run with a result file, until when the retention sweep keeps it (its
finish time plus the account's retention setting, as a date in the account time zone), and for a
file the sweep deleted, when."""

import re
from datetime import datetime

import pytest

from tests.conftest import export_job
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.models.settings import AccountSettings
from webapp.rules.states import RunState


def results_cell(client) -> str:
    """The Results cell of History's only row, as its words."""
    page = client.get("/history").get_data(as_text=True)
    row = page.split("<tbody>")[1].split("</tbody>")[0]
    cell = re.findall(r"<td>(.*?)</td>", row, re.S)[-1]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip()


@pytest.fixture
def finished(app, users):
    """A completed export of the user's, its file not yet downloaded."""
    run = start_run(export_job(users["user"], name="Donor export"), users["user"])
    run.state, run.started_at = RunState.COMPLETED, datetime(2026, 11, 30, 15, 40)
    run.finished_at = datetime(2026, 11, 30, 15, 41)  # 10:41 AM EST
    run.result_path = "/tmp/result.csv"
    db.session.commit()
    return run


@pytest.fixture
def viewer(client, auth, users):
    auth.login(users["user"].email)
    return client


def set_retention(days: int) -> None:
    AccountSettings.get().retention_days = days
    db.session.commit()


def test_a_run_with_a_file_says_until_when_it_is_kept(viewer, finished):
    assert AccountSettings.get().retention_days == 30
    assert results_cell(viewer) == "Download Kept until Dec 30, 2026"


def test_the_date_follows_the_retention_setting(viewer, finished):
    set_retention(60)
    assert "Kept until Jan 29, 2027" in results_cell(viewer)  # not the kept row of 30 days
    set_retention(1)
    assert "Kept until Dec 1, 2026" in results_cell(viewer)


def test_the_date_is_the_day_in_the_account_time_zone(viewer, finished):
    finished.finished_at = datetime(2026, 12, 1, 3, 0)  # Nov 30, 10 PM in New York
    db.session.commit()
    assert "Kept until Dec 30, 2026" in results_cell(viewer)  # Dec 31 in UTC


def test_the_exact_time_is_given_on_hover(viewer, finished):
    page = viewer.get("/history").get_data(as_text=True)
    assert 'title="Deleted after Dec 30, 2026 10:41 AM EST"' in page


def test_a_downloaded_file_is_still_kept_until_the_same_day(viewer, finished):
    finished.downloaded_at = datetime(2026, 12, 2, 14, 0)
    db.session.commit()
    cell = results_cell(viewer)
    assert (
        cell.startswith("Download downloaded Dec 2, 2026 9:00 AM EST") and "Kept until Dec 30, 2026" in cell
    )


def test_a_deleted_file_says_when_it_was_deleted(viewer, finished):
    finished.result_deleted_at = datetime(2026, 12, 30, 16, 5)
    db.session.commit()
    assert results_cell(viewer) == "Deleted Dec 30, 2026"


def test_a_run_without_a_file_says_nothing_of_one(viewer, users):
    run = start_run(export_job(users["user"], name="Failed export"), users["user"])
    run.state, run.finished_at = RunState.FAILED, datetime(2026, 11, 30, 15, 41)
    db.session.commit()
    assert results_cell(viewer) == ""
