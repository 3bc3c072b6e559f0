"""A run that fails on an unexpected error says so in a short plain sentence on its page and in
its log; the traceback, which may quote supporters' data from SQL, goes to the worker's log only."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from tests.conftest import fresh, import_job
from tests.test_engine import people_csv
from webapp.engine import queueing
from webapp.engine.runner import execute_run
from webapp.engine.runs import start_run
from webapp.jobtypes import importer
from webapp.models.runs import RunLogLine
from webapp.rules.states import RunState


def test_a_database_error_quoting_supporters_fails_the_run_with_a_short_plain_reason(
    app, users, tmp_path, monkeypatch, client, auth
):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 10), ["email", "first_name"])
    run = start_run(job, users["user"])
    sql = "INSERT INTO supporter (email, first_name) VALUES " + ", ".join(
        f"('person{i}@example.org', 'Name{i}')" for i in range(10)
    )

    def explode(self, batch, digests=None):
        raise IntegrityError(
            sql,
            [("person1@example.org", "Name1")] * 10,
            Exception("UNIQUE constraint failed: supporter.email"),
        )

    monkeypatch.setattr(importer.Importer, "parse_batch", explode)  # on either database
    queueing.run_queue().empty()
    with pytest.raises(IntegrityError):
        execute_run(run.id)  # as a worker would: the error still reaches RQ and its log
    run = fresh(run)
    assert run.state is RunState.FAILED
    assert run.error.startswith("the database refused a change")
    assert "@" not in run.error and "INSERT" not in run.error and len(run.error) < 200
    lines = [line.message for line in RunLogLine.query.filter_by(run_id=run.id)]
    assert not any("@example.org" in line or "Traceback" in line for line in lines)
    auth.login(users["user"].email)
    page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert "the database refused a change" in page and "person1@example.org" not in page


def test_an_unknown_error_names_its_kind_only(app, users, tmp_path, monkeypatch):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 5), ["email", "first_name"])
    run = start_run(job, users["user"])

    def explode(self, batch, digests=None):
        raise KeyError("person3@example.org")

    monkeypatch.setattr(importer.Importer, "parse_batch", explode)  # on either database
    queueing.run_queue().empty()
    with pytest.raises(KeyError):
        execute_run(run.id)
    run = fresh(run)
    assert run.error.startswith("an unexpected error (KeyError) stopped the run")
    assert "person3" not in run.error
