"""The monitor's and History's row cache (monitor.rows._kept): a row's HTML is kept by the row's
own values (MonitorRow, HistoryRow), so whatever changes what a row shows, however it changes
(the run, its place in line, Kill coming with time, the time zone), shows at once."""

from datetime import timedelta

import pytest

from tests.conftest import export_job
from webapp.engine.runs import new_run
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.monitor import rows
from webapp.rules.states import RunState


@pytest.fixture
def renders(monkeypatch):
    """How many monitor rows were rendered (not served from the cache)."""
    count = {"rows": 0}
    render = rows._render

    def counting(*args, **kwargs):
        count["rows"] += 1
        return render(*args, **kwargs)

    monkeypatch.setattr(rows, "_render", counting)
    rows._SETTLED.clear()
    return count


def monitor(client) -> str:
    db.session.expire_all()
    return client.get("/").get_data(as_text=True)


def history(client) -> str:
    db.session.expire_all()
    return client.get("/history").get_data(as_text=True).split("<tbody>")[1].split("</tbody>")[0]


def test_an_unchanged_row_is_rendered_once(client, auth, users, renders):
    job = export_job(users["user"])
    new_run(job, users["user"], RunState.COMPLETED, trigger="manual", finished_at=utcnow(), in_monitor=True)
    db.session.commit()
    auth.login(users["user"].email)
    first = monitor(client)
    assert renders["rows"] == 1
    assert monitor(client) == first and renders["rows"] == 1  # kept


def test_a_queued_rows_place_moves_as_the_line_does(client, auth, users, renders):
    user = users["user"]
    running = new_run(export_job(user, name="First"), user, RunState.PROCESSING, trigger="manual")
    running.rq_job_id, running.started_at = "rq-first", utcnow()
    waiting = new_run(export_job(user, name="Second"), user, RunState.QUEUED, trigger="manual")
    db.session.commit()
    auth.login(user.email)
    assert "#1 in the data line, waiting for First run #1" in monitor(client)
    assert "#1 in the data line" in monitor(client)  # kept while it stays the same
    running.state, running.finished_at = RunState.COMPLETED, utcnow()
    waiting.rq_job_id = "rq-second"
    db.session.commit()
    assert "waiting for a worker" in monitor(client)


def test_kill_is_offered_once_the_stop_waited_long_enough(app, client, auth, users, renders):
    admin = users["admin"]
    run = new_run(export_job(admin), admin, RunState.PROCESSING, trigger="manual")
    run.started_at, run.control, run.control_at = utcnow(), "stop", utcnow()
    db.session.commit()
    auth.login(admin.email)
    assert "Stopping…</span>" in monitor(client) and ">Kill</button>" not in monitor(client)
    run.control_at = utcnow() - timedelta(seconds=app.config["KILL_AFTER_SECONDS"] + 1)
    db.session.commit()  # nothing else about the run changed: only time passed
    assert ">Kill</button>" in monitor(client)


def test_rows_follow_the_account_time_zone(app, client, auth, users, renders):
    user = users["user"]
    run = new_run(export_job(user), user, RunState.COMPLETED, trigger="manual", in_monitor=True)
    run.started_at = run.finished_at = utcnow().replace(month=1, day=15)
    db.session.commit()
    auth.login(user.email)
    assert " EST" in monitor(client) and " EST" in history(client)
    app.config["TIMEZONE"] = "America/Los_Angeles"
    assert " PST" in monitor(client) and " EST" not in monitor(client)
    assert " PST" in history(client) and " EST" not in history(client)


def test_a_history_row_is_kept_by_what_it_shows(client, auth, users, monkeypatch):
    user = users["user"]
    run = new_run(export_job(user), user, RunState.COMPLETED, trigger="manual", finished_at=utcnow())
    db.session.commit()
    rows._SETTLED.clear()
    auth.login(user.email)
    first = history(client)
    assert len(rows._SETTLED) == 1
    run.checked = 99  # History does not show it: the same row, kept
    db.session.commit()
    assert history(client) == first and len(rows._SETTLED) == 1
    run.job_name = "Renamed export"
    db.session.commit()
    assert "Renamed export" in history(client) and len(rows._SETTLED) == 2


def test_the_cache_holds_at_most_its_size_dropping_the_oldest(client, auth, users, monkeypatch):
    monkeypatch.setattr(rows, "SETTLED_ROWS", 3)
    rows._SETTLED.clear()
    user = users["user"]
    job = export_job(user)
    made = [new_run(job, user, RunState.COMPLETED, trigger="manual", finished_at=utcnow()) for _ in range(5)]
    db.session.commit()
    auth.login(user.email)
    page = history(client)
    assert all(f'<span class="muted small">run #{run.number}</span>' in page for run in made)
    # History lists the newest first: the three rendered last are the three oldest runs
    assert [key.run_id for key in rows._SETTLED] == [made[2].id, made[1].id, made[0].id]
