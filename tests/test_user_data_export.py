"""The User Data Export job type and its result file."""

import csv
import os
from datetime import datetime

from tests.conftest import act_midway, export_job, fresh, work
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.models import Supporter
from webapp.rules.states import RunState


def add(email, **values):
    db.session.add(Supporter(email=email, **values))
    db.session.commit()


def run_export(app, user, **kwargs):
    job = export_job(user, **kwargs)
    run = start_run(job, user)
    work(app)
    return fresh(run)


def rows(run):
    with open(run.result_path, newline="", encoding="utf-8") as result:
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
    assert run.result_path.startswith(app.config["RESULTS_DIR"])
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
