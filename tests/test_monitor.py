"""The monitor page, its polled refresh, and History's filters and pages."""

import re
from datetime import timedelta

import pytest

from tests.conftest import export_job, fresh, import_job, work
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.models import Run
from webapp.models.base import utcnow
from webapp.rules.states import RunState

HEADINGS = ["Type", "Job #", "Job Name", "Started", "Completed", "Progress", "Results", "Stop"]


def headings(html):
    thead = html.split("<thead>")[1].split("</thead>")[0]
    return re.findall(r"<th[^>]*>([^<]+)</th>", thead)


@pytest.fixture
def running(app, users, tmp_path):
    """A run of the user's import shown as processing at 40%."""
    path = tmp_path / "p.csv"
    path.write_text("email\nann@example.org\n")
    job = import_job(users["user"], path, ["email"], name="Spring appeal list")
    run = start_run(job, users["user"])
    run.state, run.progress_done, run.progress_total = RunState.PROCESSING, 400, 1000
    run.started_at, run.heartbeat_at = utcnow(), utcnow()
    db.session.commit()
    return run


def test_columns_and_time_zone(client, auth, users, running):
    auth.login("user@example.org")
    html = client.get("/").get_data(as_text=True)
    assert headings(html) == HEADINGS
    assert "User Data Import" in html and "Spring appeal list" in html
    assert re.search(r"\d{1,2}:\d{2} [AP]M E[SD]T", html)
    auth.logout()
    auth.login("super@example.org")
    html = client.get("/").get_data(as_text=True)
    assert headings(html) == HEADINGS[:3] + ["User"] + HEADINGS[3:]
    assert "user@example.org" in html


def test_running_rows_show_progress_and_the_page_polls(client, auth, running):
    auth.login("user@example.org")
    html = client.get("/").get_data(as_text=True)
    assert 'aria-label="Progress of Spring appeal list"' in html and "40%" in html
    poller = re.search(r'<div id="monitor-poller"[^>]*>', html).group(0)
    assert 'hx-trigger="every 2s"' in poller
    assert f"ids={running.id}" in poller


def test_updates_render_only_the_polled_rows_out_of_band(client, auth, users, running):
    finished = start_run(export_job(users["user"], name="Old export"), users["user"])
    finished.state, finished.finished_at = RunState.COMPLETED, utcnow()
    db.session.commit()
    auth.login("user@example.org")
    html = client.get(
        f"/monitor/updates?ids={running.id}&after={finished.id}", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert f'<tr id="run-{running.id}" hx-swap-oob="true">' in html
    assert "Old export" not in html  # not polled, not re-rendered
    assert 'hx-trigger="every 2s"' in html


def test_polling_stops_when_nothing_is_running(app, client, auth, users, running):
    running.state, running.finished_at = RunState.FAILED, utcnow()
    running.in_monitor = True
    db.session.commit()
    auth.login("user@example.org")
    html = client.get(f"/monitor/updates?ids={running.id}&after={running.id}").get_data(as_text=True)
    poller = re.search(r'<div id="monitor-poller"[^>]*>', html).group(0)
    assert "hx-trigger" not in poller and "hx-get" not in poller
    page = client.get("/").get_data(as_text=True)
    assert "hx-trigger" not in re.search(r'<div id="monitor-poller"[^>]*>', page).group(0)


def test_runs_started_elsewhere_join_the_monitor_on_the_next_poll(client, auth, users, running):
    auth.login("user@example.org")
    newcomer = start_run(export_job(users["user"], name="Started in another tab"), users["user"])
    html = client.get(f"/monitor/updates?ids={running.id}&after={running.id}").get_data(as_text=True)
    assert 'hx-swap-oob="afterbegin:#monitor-rows"' in html
    assert "Started in another tab" in html
    assert f"ids={running.id},{newcomer.id}" in html


def test_stop_from_the_monitor_returns_the_row_and_says_so(client, auth, running):
    auth.login("user@example.org")
    response = client.post(f"/runs/{running.id}/stop?from=monitor", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith(f'<tr id="run-{running.id}"')
    assert "Stopping at the next batch boundary" in html
    assert fresh(running).control == "stop"


def test_stop_question_says_how_much_is_already_done(client, auth, running):
    auth.login("user@example.org")
    html = client.get("/").get_data(as_text=True)
    assert "40% (400 of 1,000) are already imported and stay so" in html


@pytest.mark.parametrize("role,sees_kill", [("user", False), ("admin", True)])
def test_kill_is_offered_to_admins_only_after_the_wait(client, auth, users, running, role, sees_kill):
    running.owner_id = users[role].id
    running.control, running.control_at = "stop", utcnow() - timedelta(seconds=5)
    db.session.commit()
    auth.login(users[role].email)
    assert ">Kill</button>" not in client.get("/").get_data(as_text=True)
    running.control_at = utcnow() - timedelta(seconds=31)
    db.session.commit()
    assert (">Kill</button>" in client.get("/").get_data(as_text=True)) is sees_kill


def test_queued_runs_places_count_only_the_runs_waiting_ahead(client, auth, users, running):
    """One run running and two waiting: the first waiting is #1 in line (the running run is not
    in line), the second #2."""
    second = start_run(running.job, users["user"])
    third = start_run(running.job, users["user"])
    auth.login("user@example.org")
    html = client.get("/").get_data(as_text=True)
    assert f"#1 in the data line, waiting for run #{running.number}<" in html
    assert f"#2 in the data line, waiting for run #{running.number}<" in html
    assert "#3 in the data line" not in html
    assert second.state is third.state is RunState.QUEUED


def test_history_filters_and_keyset_pages(app, client, auth, users):
    app.config["PAGE_SIZE"] = 5
    job = export_job(users["user"], name="Weekly export")
    for _ in range(12):
        start_run(job, users["user"])
    work(app)
    db.session.execute(db.update(Run).where(Run.number % 4 == 0).values(state=RunState.FAILED))
    db.session.commit()
    auth.login("user@example.org")
    first = client.get("/history").get_data(as_text=True)
    assert first.count('small">run #') == 5 and "run #12<" in first and "Older →</a>" in first
    older = re.search(r'href="([^"]*before=\d+[^"]*)">Older', first).group(1)
    second = client.get(older.replace("&amp;", "&")).get_data(as_text=True)
    assert "run #7<" in second and "run #12<" not in second and "← Newer</a>" in second
    newer = re.search(r'href="([^"]*after=\d+[^"]*)">← Newer', second).group(1)
    back = client.get(newer.replace("&amp;", "&")).get_data(as_text=True)
    assert back.count('small">run #') == 5 and "run #12<" in back and "run #8<" in back
    failed = client.get("/history?state=failed").get_data(as_text=True)
    assert failed.count('small">run #') == 3
    assert client.get("/history?type=user_data_import").get_data(as_text=True).count('small">run #') == 0


def test_a_kept_row_changes_as_soon_as_its_run_does(client, auth, users, running):
    auth.login("user@example.org")
    first = client.get("/").get_data(as_text=True)
    assert "40%" in first and "40%" in client.get("/").get_data(as_text=True)  # kept
    running.progress_done, running.job_name = 700, "Renamed appeal list"
    db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert "70%" in page and "Renamed appeal list" in page and "40%" not in page
    running.state, running.finished_at = RunState.COMPLETED, utcnow()
    running.result_path = "/tmp/result.csv"
    db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert "Completed" in page and "Download" in page and "70%" not in page


def test_a_kept_history_row_changes_as_soon_as_its_run_does(client, auth, users, running):
    def row():
        page = client.get("/history").get_data(as_text=True)
        return page.split("<tbody>")[1].split("</tbody>")[0]

    auth.login("user@example.org")
    assert "Processing" in row() and "Download" not in row()
    running.state, running.finished_at = RunState.COMPLETED, utcnow()
    running.result_path = "/tmp/result.csv"
    db.session.commit()
    assert "Completed" in row() and "Download" in row()
    running.downloaded_at = utcnow()
    db.session.commit()
    assert "downloaded " in row()
    running.result_deleted_at = utcnow()
    db.session.commit()
    assert "Download<" not in row() and "File deleted" in row()


def test_super_admins_see_each_runs_owner_in_monitor_and_history(client, auth, users, running):
    auth.login("super@example.org")
    for page in ("/", "/history"):
        html = client.get(page).get_data(as_text=True)
        assert "User" in headings(html)
        assert "<td>user@example.org</td>" in html
    auth.logout()
    auth.login("user@example.org")
    assert "<td>user@example.org</td>" not in client.get("/history").get_data(as_text=True)


def test_super_admins_filter_history_by_user(app, client, auth, users):
    for owner in ("user", "other"):
        start_run(export_job(users[owner], name=f"Export of {owner}"), users[owner])
    work(app)
    auth.login("super@example.org")
    page = client.get(f"/history?user={users['other'].id}").get_data(as_text=True)
    assert "Export of other" in page and "Export of user" not in page
    page = client.get(f"/history?user={users['other'].id}&state=completed&type=user_data_export")
    assert "Export of other" in page.get_data(as_text=True)
    auth.logout()
    auth.login("user@example.org")  # the user filter is for super admins only: another user's
    response = client.get(f"/history?user={users['other'].id}")  # id is a 404, as in a URL
    assert response.status_code == 404 and "Export of" not in response.get_data(as_text=True)
    page = client.get(f"/history?user={users['user'].id}").get_data(as_text=True)
    assert "Export of user" in page and "Export of other" not in page
