"""The run page says what is happening in plain words: how a run came about, a reason written as
a sentence, and a pause or stop under way said once, not left on screen after it happened."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import export_job, fresh
from webapp.engine.runs import new_run, start_run
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.rules.clock import sentence
from webapp.rules.states import RunState


@pytest.fixture
def job(users):
    return export_job(users["user"], name="Weekly export")


def status_text(client, run_id: int) -> str:
    return client.get(f"/runs/{run_id}/status").get_data(as_text=True)


@pytest.mark.parametrize(
    "trigger,fields,words",
    [
        ("manual", {}, "(by hand)"),
        ("manual", {"scheduled_for_in": 3600}, "(at a time set by hand)"),
        ("schedule", {}, "(on its schedule)"),
        ("group", {}, "(a step of a group run)"),
    ],
)
def test_how_a_run_came_about_is_said_in_words(client, auth, users, job, trigger, fields, words):
    state = RunState.SCHEDULED if "scheduled_for_in" in fields else RunState.QUEUED
    extra = {}
    if "scheduled_for_in" in fields:
        extra["scheduled_for"] = utcnow() + timedelta(seconds=fields["scheduled_for_in"])
    run = new_run(job, users["user"], state, trigger=trigger, **extra)
    db.session.commit()
    auth.login(users["user"].email)
    page = status_text(client, run.id)
    assert words in page
    assert f"({trigger})" not in page  # never the stored code word


def test_a_reason_reads_as_a_sentence(client, auth, users, job):
    run = start_run(job, users["user"])
    run.state = RunState.FAILED
    run.error = "the worker running this job stopped at 2:02 PM EST; 0 rows were exported."
    db.session.commit()
    auth.login(users["user"].email)
    assert "The worker running this job stopped at 2:02 PM EST" in status_text(client, run.id)
    assert sentence("") == "" and sentence(None) == "" and sentence("ok") == "Ok"


def test_a_stop_under_way_is_said_once_in_the_live_region(client, auth, users, job):
    run = start_run(job, users["user"])
    run.state, run.started_at, run.heartbeat_at = RunState.PROCESSING, utcnow(), utcnow()
    run.progress_done, run.progress_total = 10, 100
    db.session.commit()
    auth.login(users["user"].email)
    response = client.post(f"/runs/{run.id}/stop", follow_redirects=True)
    page = response.get_data(as_text=True)
    live = page[page.index('id="run-status"') :]
    assert "Stopping at the next batch boundary" in live  # said in the live region
    assert fresh(run).control == "stop"
    # the next refresh of the live region no longer carries the message (the page's own
    # "Stopping at the next batch…" line says it while it lasts)
    assert "Stopping at the next batch boundary" not in status_text(client, run.id)


def test_a_final_message_stays_a_page_message(client, auth, users, job):
    run = start_run(job, users["user"])  # queued: Stop cancels it at once
    auth.login(users["user"].email)
    page = client.post(f"/runs/{run.id}/stop", follow_redirects=True).get_data(as_text=True)
    top = page[: page.index('id="run-status"')]
    assert "The run was cancelled before it started." in top


def test_the_job_page_lists_runs_in_the_job_types_words(app, client, auth, users, job):
    from tests.conftest import work

    start_run(job, users["user"])
    work(app)
    auth.login(users["user"].email)
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert " exported" in page  # an export counts what it exported
    assert "created ·" not in page and "unchanged" not in page


def test_a_processing_run_reads_processing_in_the_monitor_the_job_page_and_its_page(client, auth, users, job):
    run = start_run(job, users["user"])
    run.state, run.started_at, run.heartbeat_at = RunState.PROCESSING, utcnow(), utcnow()
    run.progress_done, run.progress_total = 10, 100
    db.session.commit()
    auth.login(users["user"].email)
    row = client.get("/").get_data(as_text=True)
    row = row[row.index(f'id="run-{run.id}"') :]
    assert "Processing" in row[: row.index("</tr>")]
    assert "Processing" in client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "Processing" in status_text(client, run.id)


def test_a_run_cancelled_before_it_started_shows_no_run_time(client, auth, users, job):
    run = new_run(job, users["user"], RunState.CANCELLED, trigger="manual")
    run.finished_at = utcnow()
    db.session.commit()
    auth.login(users["user"].email)
    text = status_text(client, run.id)
    assert "Finished" in text and "Run time" not in text
