from tests.conftest import fresh, import_job, work
from webapp.engine.runs import start_run
from webapp.models import Supporter
from webapp.rules.states import RunState


def test_import_runs_on_worker(app, users, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("email,first_name,zip\nA@x.org,Ann,12345\nb@x.org,Bob,1234\nc@x.org,Cy,\n")
    job = import_job(users["user"], path, ["email", "first_name", "zip"])
    run = start_run(job, users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED, run.error
    assert (run.created, run.rejected, run.checked) == (2, 1, 3)
    assert Supporter.query.count() == 2
