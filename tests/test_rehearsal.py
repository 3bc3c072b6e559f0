"""The worker's pre-fork rehearsal runs the same end-of-run function as a real run
(runner._finish), inside a SAVEPOINT that is rolled back, so the two cannot drift."""

import gc

import pytest
from sqlalchemy import event

from tests.conftest import export_job, fresh, work
from webapp.engine import runner
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.models import Job, Run, RunLogLine
from webapp.rules.states import RunState


@pytest.fixture
def finishes(monkeypatch):
    """Every call of runner._finish: (run id, job type key, run state, the next step's id)."""
    calls = []
    finish = runner._finish

    def recording(run, job_type):
        next_step = finish(run, job_type)
        calls.append((run.id, job_type.key, run.state, next_step.id if next_step else None))
        return next_step

    monkeypatch.setattr(runner, "_finish", recording)
    return calls


def test_the_rehearsal_hands_a_step_over_through_finish_in_a_rolled_back_savepoint(app, users, finishes):
    start_run(export_job(users["user"], name="Weekly export"), users["user"])
    counts = (Job.query.count(), Run.query.count(), RunLogLine.query.count())
    sent = []
    listener = lambda conn, cursor, statement, *rest: sent.append(statement)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        runner.warm_up()
    finally:
        gc.unfreeze()  # (warm_up freezes what the worker holds before it forks; not the tests')
        event.remove(db.engine, "before_cursor_execute", listener)
    [(step_id, job_type, state, next_step_id)] = finishes
    assert (job_type, state) == ("user_data_export", RunState.COMPLETED)
    assert next_step_id is not None  # the chain went on: the next step's run was made
    assert any(statement.startswith("SAVEPOINT") for statement in sent)
    assert any(statement.startswith("ROLLBACK TO SAVEPOINT") for statement in sent)
    db.session.expire_all()
    assert (Job.query.count(), Run.query.count(), RunLogLine.query.count()) == counts
    assert db.session.get(Run, step_id) is None and db.session.get(Run, next_step_id) is None


def test_a_real_run_ends_through_the_same_function(app, users, finishes):
    run = start_run(export_job(users["user"], name="Weekly export"), users["user"])
    work(app)
    assert fresh(run).state is RunState.COMPLETED
    assert finishes == [(run.id, "user_data_export", RunState.COMPLETED, None)]
