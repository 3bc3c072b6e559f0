"""The User Data Export job type and its result file."""

import csv
import os
import re
from datetime import datetime

import pytest

from tests.conftest import act_midway, export_job, fresh, work
from webapp.engine.runs import retry_run, start_run
from webapp.extensions import db
from webapp.jobtypes import user_data_export
from webapp.jobtypes.user_data_export import UserDataExport
from webapp.models import Job, RunLogLine, Supporter
from webapp.rules.states import RunState
from webapp.storage import current_storage


def add(email, **values):
    db.session.add(Supporter(email=email, **values))
    db.session.commit()


def run_export(app, user, **kwargs):
    job = export_job(user, **kwargs)
    run = start_run(job, user)
    work(app)
    return fresh(run)


def result_file(run) -> str:
    """The result's local file (the tests' storage is the local folders)."""
    path = current_storage().path(run.result_path)
    assert path is not None
    return path


def rows(run):
    with open(result_file(run), newline="", encoding="utf-8") as result:
        return list(csv.reader(result))


def test_export_writes_chosen_fields_for_every_supporter(app, users):
    for i in range(7):  # more than two batches of 3
        add(f"p{i}@example.org", first_name=f"P{i}", opted_in=i % 2 == 0)
    run = run_export(app, users["user"], fields=["email", "first_name", "opted_in"])
    assert run.state is RunState.COMPLETED
    table = rows(run)
    assert table[0] == ["Email", "First name", "Opted in"]
    assert [r[0] for r in table[1:]] == [f"p{i}@example.org" for i in range(7)]
    assert table[1][2] == "yes" and table[2][2] == "no"
    assert run.result_path == f"results/run-{run.id}-export.csv"
    assert result_file(run).startswith(app.config["RESULTS_DIR"])
    assert (run.progress_done, run.progress_total, run.checked) == (7, 7, 7)
    assert run.in_monitor


def test_opted_in_filter(app, users):
    add("in@example.org", opted_in=True)
    add("out@example.org", opted_in=False)
    run = run_export(app, users["user"], fields=["email"], filter_="opted_in")
    assert rows(run) == [["Email"], ["in@example.org"]]


def test_created_since_filter_uses_the_account_time_zone(app, users):
    # 2026-03-01 00:00 in New York is 05:00 UTC
    add("before@example.org", created_at=datetime(2026, 3, 1, 4, 59))
    add("after@example.org", created_at=datetime(2026, 3, 1, 5, 0))
    run = run_export(app, users["user"], fields=["email"], filter_="created_since", since="2026-03-01")
    assert rows(run) == [["Email"], ["after@example.org"]]


def test_a_since_day_before_any_supporter_is_refused_and_a_stored_one_runs_east_of_utc(
    app, client, auth, users
):
    auth.login("user@example.org")
    form = {"name": "Old", "fields": ["email"], "filter": "created_since", "since": "0001-01-01"}
    refused = client.post("/jobs/new/export", data=form)
    assert "Choose a date on or after Jan 1, 1970." in refused.get_data(as_text=True)
    # a job saved before the check: its first day begins before the first instant in Tokyo
    app.config["TIMEZONE"] = "Asia/Tokyo"
    add("anyone@example.org")
    run = run_export(app, users["user"], fields=["email"], filter_="created_since", since="0001-01-01")
    assert run.state is RunState.COMPLETED and rows(run) == [["Email"], ["anyone@example.org"]]


def test_cells_that_look_like_formulas_are_neutralised(app, users):
    add(
        "x@example.org",
        first_name='=HYPERLINK("http://evil")',
        last_name="+1",
        city="@SUM(A1)",
        address1="-2+3",
    )
    add("y@example.org", first_name="Normal", last_name="O'Neil")
    run = run_export(app, users["user"], fields=["email", "first_name", "last_name", "city", "address1"])
    table = rows(run)
    assert table[1] == ["x@example.org", '\'=HYPERLINK("http://evil")', "'+1", "'@SUM(A1)", "'-2+3"]
    assert table[2][:3] == ["y@example.org", "Normal", "O'Neil"]


def test_export_form_validates_and_saves_a_job(client, auth, users):
    auth.login("user@example.org")
    response = client.post("/jobs/new/export", data={"name": "Everyone", "filter": "all"})
    assert "Choose at least one field to export." in response.get_data(as_text=True)
    response = client.post(
        "/jobs/new/export", data={"name": "Recent", "fields": ["email"], "filter": "created_since"}
    )
    assert "Choose the date supporters must have been created since." in response.get_data(as_text=True)
    response = client.post(
        "/jobs/new/export",
        data={
            "name": "Recent",
            "fields": ["email", "zip"],
            "filter": "created_since",
            "since": "2026-01-31",
            "action": "save_run",
        },
    )
    assert response.status_code == 302 and "/runs/" in response.headers["Location"]


def test_stopped_export_leaves_no_partial_file(app, users):
    from webapp.engine.runs import request_stop

    db.session.execute(db.insert(Supporter), [{"email": f"p{i}@example.org"} for i in range(3000)])
    db.session.commit()
    job = export_job(users["user"])
    run = start_run(job, users["user"])
    run = act_midway(app, run, users["user"], request_stop, after=30)
    assert run.state is RunState.CANCELLED and run.result_path is None
    assert os.listdir(app.config["RESULTS_DIR"]) == []


def run_export_with(app, user, bom, **kwargs):
    job = export_job(user, **kwargs)
    if bom is not None:
        job.params = {**job.params, "bom": bom}
        db.session.commit()
    run = start_run(job, user)
    work(app)
    return fresh(run)


@pytest.mark.parametrize("bom,starts_with_bom", [(True, True), (False, False), (None, False)])
def test_the_file_starts_with_a_bom_only_when_the_job_asks_for_one(app, users, bom, starts_with_bom):
    add("zoe@example.org", first_name="Zoë", last_name="Ångström", city="São Paulo")
    add("jose@example.org", first_name="José", last_name="Müller-Lüdenscheidt", city="Kraków")
    run = run_export_with(app, users["user"], bom, fields=["email", "first_name", "last_name", "city"])
    with open(result_file(run), "rb") as result:
        raw = result.read()
    assert raw.startswith(b"\xef\xbb\xbf") is starts_with_bom  # None: a job saved before the choice
    assert raw.count(b"\xef\xbb\xbf") == int(starts_with_bom)
    with open(result_file(run), newline="", encoding="utf-8-sig") as result:
        assert list(csv.reader(result)) == [
            ["Email", "First name", "Last name", "City"],
            ["zoe@example.org", "Zoë", "Ångström", "São Paulo"],
            ["jose@example.org", "José", "Müller-Lüdenscheidt", "Kraków"],
        ]


def test_a_retried_export_keeps_one_bom_at_the_start(app, users, monkeypatch):
    for i in range(7):  # batches of 3: the second one fails, the retry continues after the first
        add(f"p{i}@example.org", first_name=f"Zoë {i}")
    original = user_data_export._cell

    def failing(value):
        if value == "p4@example.org":
            raise OSError("disk went away")
        return original(value)

    monkeypatch.setattr(user_data_export, "_cell", failing)
    run = run_export_with(app, users["user"], True, fields=["email", "first_name"])
    assert run.state is RunState.FAILED and run.checkpoint["rows"] == 3
    monkeypatch.setattr(user_data_export, "_cell", original)
    retry_run(run, users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED
    log = [line.message for line in RunLogLine.query.filter_by(run_id=run.id)]
    assert "Resuming after 3 rows already written." in log
    with open(result_file(run), "rb") as result:
        raw = result.read()
    assert raw.startswith(b"\xef\xbb\xbfEmail,First name\r\n") and raw.count(b"\xef\xbb\xbf") == 1
    assert raw.decode("utf-8-sig").splitlines()[1:] == [f"p{i}@example.org,Zoë {i}" for i in range(7)]


def test_the_export_form_offers_the_bom_checked_and_saves_the_choice(client, auth, users):
    auth.login("user@example.org")
    page = client.get("/jobs/new/export").get_data(as_text=True)
    assert re.search(r'<input checked id="bom" name="bom" role="switch" type="checkbox" value="y">', page)
    assert "Excel-friendly (UTF-8 with BOM)" in page
    for data, bom in [({"bom": "y"}, True), ({}, False)]:
        client.post(
            "/jobs/new/export", data={"name": f"BOM {bom}", "fields": ["email"], "filter": "all", **data}
        )
        job = Job.query.filter_by(name=f"BOM {bom}").one()
        assert job.params["bom"] is bom
        assert (
            "Encoding",
            "UTF-8 with BOM (Excel-friendly)" if bom else "UTF-8",
        ) in UserDataExport().describe(job.params)


def test_country_and_a_long_postal_code_are_exported(app, users):
    add("se@example.org", zip="SE-123 45 Stockholm", country="SE")
    run = run_export(app, users["user"], fields=["email", "zip", "country"])
    assert rows(run) == [["Email", "Postal code", "Country"], ["se@example.org", "SE-123 45 Stockholm", "SE"]]
