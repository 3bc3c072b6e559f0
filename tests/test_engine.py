"""The run engine: sequential runs per job, stop at a batch boundary, retry from the checkpoint,
re-dispatch of lost queue entries, retention."""

import gc
import os
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy.orm.attributes import set_committed_value

from tests.conftest import act_midway, export_job, fresh, import_job, work
from webapp.engine import queueing
from webapp.engine.reconciler import reconcile
from webapp.engine.retention import sweep_results
from webapp.engine.runs import (
    RunActionError,
    dismiss,
    new_run,
    queue_position,
    request_stop,
    retry_run,
    start_run,
)
from webapp.extensions import db
from webapp.jobtypes import importer
from webapp.models import Run, RunLogLine, Supporter
from webapp.models.base import utcnow
from webapp.rules.states import RunState
from webapp.storage import current_storage


def people_csv(path, count, start=0):
    with open(path, "w") as out:
        out.write("email,first_name\n")
        for i in range(start, start + count):
            out.write(f"person{i}@example.org,P{i}\n")
    return path


def log_of(run):
    return [line.message for line in RunLogLine.query.filter_by(run_id=run.id).order_by(RunLogLine.id)]


def test_second_run_of_the_same_job_waits_queued_and_runs_after(app, users, tmp_path):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 10), ["email", "first_name"])
    first = start_run(job, users["user"])
    second = start_run(job, users["user"])
    assert first.rq_job_id and not second.rq_job_id
    place, blocking = queue_position(second)
    assert (place, blocking.id) == (1, first.id)  # first in line: the running run is not in it
    assert (first.number, second.number) == (1, 2)
    work(app)
    first, second = fresh(first), fresh(second)
    assert first.state is second.state is RunState.COMPLETED
    assert second.started_at >= first.finished_at
    assert (first.created, second.unchanged) == (10, 10)


def test_with_the_default_concurrency_of_one_other_jobs_wait_in_line(app, users, tmp_path):
    a = import_job(users["user"], people_csv(tmp_path / "a.csv", 3), ["email", "first_name"])
    b, c = export_job(users["user"]), export_job(users["user"])
    run_a, run_b, run_c = (start_run(job, users["user"]) for job in (a, b, c))
    assert run_a.rq_job_id and not run_b.rq_job_id and not run_c.rq_job_id
    assert queue_position(run_b) == (1, run_a) and queue_position(run_c) == (2, run_a)
    work(app)
    run_a, run_b, run_c = fresh(run_a), fresh(run_b), fresh(run_c)
    assert run_a.state is run_b.state is run_c.state is RunState.COMPLETED
    assert run_a.finished_at <= run_b.started_at and run_b.finished_at <= run_c.started_at


def test_a_higher_concurrency_runs_other_jobs_side_by_side(app, users, tmp_path):
    app.config["CONCURRENCY"] = 2
    a = import_job(users["user"], people_csv(tmp_path / "a.csv", 3), ["email", "first_name"])
    b, c = export_job(users["user"]), export_job(users["user"])
    run_a, run_b, run_c = (start_run(job, users["user"]) for job in (a, b, c))
    second_of_a = start_run(a, users["user"])
    assert run_a.rq_job_id and run_b.rq_job_id
    assert not run_c.rq_job_id and not second_of_a.rq_job_id  # both slots are taken
    work(app)
    assert all(fresh(run).state is RunState.COMPLETED for run in (run_a, run_b, run_c, second_of_a))


def test_a_paused_run_frees_its_slot_but_holds_its_job(app, users, tmp_path):
    a = import_job(users["user"], people_csv(tmp_path / "a.csv", 3), ["email", "first_name"])
    b = export_job(users["user"])
    paused = start_run(a, users["user"])
    paused.state, paused.rq_job_id = RunState.PAUSED, None
    db.session.commit()
    same_job, other_job = start_run(a, users["user"]), start_run(b, users["user"])
    assert not same_job.rq_job_id and other_job.rq_job_id
    assert queue_position(same_job)[1] == paused


def test_stop_before_start_cancels_and_nothing_runs(app, users, tmp_path):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 5), ["email", "first_name"])
    run = start_run(job, users["user"])
    assert "cancelled before it started" in request_stop(run, users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.CANCELLED
    assert Supporter.query.count() == 0
    assert not run.in_monitor


def test_stop_while_processing_stops_at_a_batch_boundary_and_keeps_what_was_done(app, users, tmp_path):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 3000), ["email", "first_name"])
    run = start_run(job, users["user"])
    run = act_midway(app, run, users["user"], request_stop, after=30)
    assert run.state is RunState.CANCELLED
    assert 0 < run.created < 3000
    assert run.created % 3 == 0  # whole batches only
    assert Supporter.query.count() == run.created == run.progress_done
    assert (
        f"Stopped at a batch boundary: {run.created:,} of 3,000 records were imported and stay so."
    ) in log_of(run)
    assert not run.in_monitor


def test_failed_run_retries_from_its_checkpoint_without_duplicates(app, users, tmp_path, monkeypatch):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 20), ["email", "first_name"])
    run = start_run(job, users["user"])
    original = importer.iter_record_batches

    def flaky(*args, **kwargs):  # the disk goes away while the third batch is read
        for n, batch in enumerate(original(*args, **kwargs), start=1):
            if n == 3:
                raise OSError("disk went away")
            yield batch

    monkeypatch.setattr(importer, "iter_record_batches", flaky)
    with pytest.raises(OSError):
        from webapp.engine.runner import execute_run

        # run it as the worker would, but see the error propagate
        queueing.run_queue().empty()
        execute_run(run.id)
    run = fresh(run)
    assert run.state is RunState.FAILED
    assert "disk went away" in run.error
    assert run.checkpoint == {"records": 6} and Supporter.query.count() == 6
    monkeypatch.setattr(importer, "iter_record_batches", original)
    retry_run(run, users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED
    assert Supporter.query.count() == 20
    assert run.created == 20 and run.checked == 20
    assert "Resuming after record 6: the records before it were already imported." in log_of(run)


def test_retry_refuses_runs_that_did_not_fail(app, users, tmp_path):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 2), ["email", "first_name"])
    run = start_run(job, users["user"])
    work(app)
    with pytest.raises(RunActionError, match="Only a failed run can be retried"):
        retry_run(fresh(run), users["user"])


def test_a_second_retry_of_the_same_failure_read_before_the_first_is_refused(app, users):
    """Two requests read the run as failed; the one that writes second is refused (it was a
    false "queued again", with a second log line and audit entry)."""
    run = new_run(export_job(users["user"]), users["user"], RunState.FAILED, trigger="manual")
    db.session.commit()
    assert retry_run(run, users["user"]).startswith("The run was queued again")
    set_committed_value(run, "state", RunState.FAILED)  # as the second request read it
    with pytest.raises(RunActionError, match="This run was retried already"):
        retry_run(run, users["user"])
    run = fresh(run)
    assert run.state is RunState.QUEUED
    assert (
        RunLogLine.query.filter(RunLogLine.run_id == run.id, RunLogLine.message.like("Retry%")).count() == 1
    )


def test_reconciler_redispatches_a_queued_run_whose_queue_entry_was_lost(app, users, tmp_path):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 4), ["email", "first_name"])
    run = start_run(job, users["user"])
    lost = run.rq_job_id
    Queue(app.config["QUEUE_NAME"], connection=queueing.redis_connection()).empty()
    outcome = reconcile()
    run = fresh(run)
    assert outcome["redispatched"] == 1
    assert run.rq_job_id and run.rq_job_id != lost
    work(app)
    assert fresh(run).state is RunState.COMPLETED


@pytest.mark.parametrize("how", ["taken off its queue", "started by a worker that died"])
def test_reconciler_redispatches_a_run_a_dead_worker_stranded(app, users, tmp_path, how):
    # RQ counts the job queued (or started) but no worker will run it: RQ puts it back only
    # after about ten minutes, while the lane's other runs wait behind it
    from rq.job import Job as RQJob
    from rq.job import JobStatus

    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 4), ["email", "first_name"])
    run = start_run(job, users["user"])
    stranded = run.rq_job_id
    connection = queueing.redis_connection()
    queue = Queue(app.config["QUEUE_NAME"], connection=connection)
    connection.lrem(queue.key, 0, stranded)  # a worker moved it to its own list, then died
    if how == "started by a worker that died":
        rq_job = RQJob.fetch(stranded, connection=connection)
        rq_job.set_status(JobStatus.STARTED)
        connection.hset(rq_job.key, "worker_name", "gone-worker")
    assert queueing.rq_status(stranded) in (JobStatus.QUEUED, JobStatus.STARTED)
    outcome = reconcile()
    run = fresh(run)
    assert outcome["redispatched"] == 1 and run.rq_job_id and run.rq_job_id != stranded
    work(app)
    assert fresh(run).state is RunState.COMPLETED


def test_reconciler_leaves_a_run_waiting_on_its_queue_alone(app, users, tmp_path):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 4), ["email", "first_name"])
    run = start_run(job, users["user"])
    waiting = run.rq_job_id
    assert reconcile()["redispatched"] == 0 and fresh(run).rq_job_id == waiting


def test_reconciler_fails_a_run_whose_heartbeat_stopped_with_a_plain_reason(app, users, tmp_path):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 4), ["email", "first_name"])
    run = start_run(job, users["user"])
    run.state, run.progress_done, run.progress_total = RunState.PROCESSING, 41200, 100000
    run.started_at = utcnow() - timedelta(minutes=5)
    run.heartbeat_at = utcnow() - timedelta(minutes=2)
    db.session.commit()
    assert reconcile()["failed"] == 1
    run = fresh(run)
    assert run.state is RunState.FAILED
    assert run.error.startswith("the worker running this job stopped at ")
    assert "41,200 of 100,000 rows were imported" in run.error
    assert run.error.split(" stopped at ")[1].split(";")[0].endswith(("EST", "EDT"))


def test_reconciler_leaves_live_runs_alone(app, users, tmp_path):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 4), ["email", "first_name"])
    run = start_run(job, users["user"])
    run.state, run.heartbeat_at = RunState.PROCESSING, utcnow()
    db.session.commit()
    assert reconcile()["failed"] == 0
    assert fresh(run).state is RunState.PROCESSING


def test_retention_sweep_deletes_old_result_files_and_history_says_so(app, client, auth, users):
    job = export_job(users["user"])
    run = start_run(job, users["user"])
    work(app)
    run = fresh(run)
    path = current_storage().path(run.result_path)
    assert os.path.exists(path)
    assert sweep_results() == 0  # still inside the 30 days
    run.finished_at = utcnow() - timedelta(days=31)
    db.session.commit()
    assert sweep_results() == 1
    run = fresh(run)
    assert not os.path.exists(path) and run.result_deleted_at and not run.in_monitor
    auth.login("user@example.org")
    html = client.get("/history").get_data(as_text=True)
    assert "File deleted" in html and "retention period over" in html
    response = client.get(f"/runs/{run.id}/result")
    assert response.status_code == 302  # back to the run page with a message


def test_download_removes_run_from_monitor_but_history_keeps_it(app, client, auth, users):
    job = export_job(users["user"], name="Year end list")
    run = start_run(job, users["user"])
    work(app)
    auth.login("user@example.org")
    assert "Year end list" in client.get("/").get_data(as_text=True)
    response = client.get(f"/runs/{run.id}/result")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.get_data(as_text=True).startswith("Email,First name,Last name")
    assert "Year end list" not in client.get("/").get_data(as_text=True)
    assert "Year end list" in client.get("/history").get_data(as_text=True)
    assert client.get(f"/runs/{run.id}/result").status_code == 200  # again, from History


def test_dismiss_only_finished_runs(app, users, tmp_path):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 2), ["email", "first_name"])
    run = start_run(job, users["user"])
    with pytest.raises(RunActionError):
        dismiss(run)
    work(app)
    dismiss(fresh(run))
    assert not fresh(run).in_monitor


def test_cancelled_run_is_not_executed_if_its_job_is_still_on_the_queue(app, users, tmp_path):
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 2), ["email", "first_name"])
    run = start_run(job, users["user"])
    run.state = RunState.CANCELLED  # e.g. cancelled by another process after enqueueing
    db.session.commit()
    from webapp.engine.runner import execute_run

    assert execute_run(run.id) == "not queued"
    assert Supporter.query.count() == 0
    assert db.session.get(Run, run.id).state is RunState.CANCELLED


def test_the_workers_warm_up_leaves_nothing_behind(app, users):
    from webapp.engine.runner import warm_up
    from webapp.models import Job

    job = export_job(users["user"], name="Weekly export")
    start_run(job, users["user"])
    before = (
        Job.query.count(),
        Run.query.count(),
        RunLogLine.query.count(),
        [(j.id, j.last_run_number) for j in Job.query.order_by(Job.id)],
    )
    warm_up()  # rehearses a group step's hand-over, then rolls it back
    gc.unfreeze()  # (warm_up freezes what the worker holds before it forks; not the tests')
    db.session.expire_all()
    after = (
        Job.query.count(),
        Run.query.count(),
        RunLogLine.query.count(),
        [(j.id, j.last_run_number) for j in Job.query.order_by(Job.id)],
    )
    assert after == before


def test_a_run_starts_when_its_worker_takes_it(app, users):
    run = start_run(export_job(users["user"], name="Weekly export"), users["user"])
    asked = utcnow()
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED
    assert asked <= run.started_at <= run.finished_at


def test_a_send_in_the_email_lane_never_holds_up_an_import_and_each_lane_has_its_line(
    app, users, tmp_path, client, auth
):
    from tests.test_email_campaign import campaign_for, supporters
    from webapp.engine import launches, queueing
    from webapp.web import queue_place

    supporters(3)
    sends = [
        launches.launch(campaign_for(users["user"], name=f"Appeal {i}").id, users["user"]) for i in range(2)
    ]
    sending, waiting_send = fresh(sends[0]), fresh(sends[1])
    assert sending.rq_job_id and not waiting_send.rq_job_id  # one email slot (the default)
    job = import_job(users["user"], people_csv(tmp_path / "p.csv", 3), ["email", "first_name"])
    run = start_run(job, users["user"])
    assert run.rq_job_id  # the data lane has its own slot: the import does not wait
    assert queueing.run_queue("data").job_ids == [run.rq_job_id]
    assert queueing.run_queue("email").job_ids == [sending.rq_job_id]
    with app.test_request_context():
        auth.login(users["user"].email)
        assert queue_place(waiting_send).startswith("#1 in the email line")
    work(app)
    assert fresh(run).state is RunState.COMPLETED
    assert all(fresh(s).state is RunState.COLLECTING for s in sends)
