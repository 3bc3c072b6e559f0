"""Queue places of a page in one query (engine.waiting.queue_places): the same answers as
runs.queue_position gives run by run, so the two cannot drift, and one statement for a page."""

from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import event

from tests.conftest import export_job
from webapp.engine.runs import new_run, queue_position
from webapp.engine.waiting import queue_places
from webapp.extensions import db
from webapp.jobtypes.email_campaign import EmailCampaign
from webapp.jobtypes.job_group import JobGroup
from webapp.models import Job, Run
from webapp.models.base import utcnow
from webapp.rules.states import RunState


@contextmanager
def statements():
    """The SQL statements sent to the database inside the block."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def a_job(owner, job_type: str, name: str) -> Job:
    job = Job(owner_id=owner.id, job_type=job_type, name=name, params={})
    db.session.add(job)
    db.session.commit()
    return job


def runs_in_two_lanes(users) -> list[Run]:
    """Runs of every kind queue_position distinguishes, in both lanes, created interleaved:
    slot holders started at different times or not yet, a paused run holding its job, runs
    handed to a worker, runs waiting for their own job, a group run, runs of deleted jobs."""
    user, other = users["user"], users["other"]
    now = utcnow()
    made: list[Run] = []

    def run(job, state, *, started=None, rq=False, **fields):
        made.append(new_run(job, user, state, trigger="manual", started_at=started, **fields))
        if rq:
            made[-1].rq_job_id = f"rq-{made[-1].id}"
        return made[-1]

    a, b, c, d = (export_job(user, name=f"Export {n}") for n in "ABCD")
    h = export_job(other, name="Other's export")
    group = a_job(user, JobGroup.key, "Nightly chain")
    e, f = a_job(user, EmailCampaign.key, "Appeal E"), a_job(other, EmailCampaign.key, "Appeal F")

    run(a, RunState.COMPLETED, started=now - timedelta(hours=1))  # done: in no line
    run(a, RunState.PROCESSING, started=now - timedelta(minutes=1), rq=True)
    run(e, RunState.QUEUED)
    run(b, RunState.PAUSED, started=now - timedelta(minutes=9))  # holds job B, no slot
    run(a, RunState.QUEUED)
    run(h, RunState.INITIALIZING, started=now - timedelta(minutes=5), rq=True)  # started first
    run(e, RunState.PROCESSING, started=now - timedelta(minutes=2), rq=True)
    run(b, RunState.QUEUED)
    run(c, RunState.QUEUED, rq=True)  # handed to a worker, not started yet
    run(f, RunState.QUEUED, rq=True)
    run(group, RunState.QUEUED)
    run(c, RunState.QUEUED)
    run(d, RunState.QUEUED)
    run(a, RunState.QUEUED)
    run(f, RunState.QUEUED)
    run(d, RunState.QUEUED)
    run(e, RunState.QUEUED)
    for deleted in made[-4], made[-2]:  # job D was deleted: its runs keep no job
        deleted.job_id = None
    db.session.commit()
    return made


def test_queue_places_are_queue_positions_run_by_run(app, users):
    runs = runs_in_two_lanes(users)
    places = queue_places(runs)
    queued = [run for run in runs if run.state is RunState.QUEUED]
    assert set(places) == {run.id for run in queued} and len(queued) == 12
    for run in queued:
        assert places[run.id] == queue_position(run), f"run {run.id} ({run.job_name})"
    assert {place for place, _ in places.values()} != {1}  # a real line, not a degenerate one


def test_queue_places_of_the_email_lane_only_and_of_one_run(app, users):
    runs = runs_in_two_lanes(users)
    sends = [run for run in runs if run.job_type == EmailCampaign.key and run.state is RunState.QUEUED]
    assert queue_places(sends) == {run.id: queue_position(run) for run in sends}
    assert queue_places(sends[-1:]) == {sends[-1].id: queue_position(sends[-1])}
    assert queue_places([run for run in runs if run.state is not RunState.QUEUED]) == {}


def test_the_places_of_a_page_are_one_query(app, users):
    runs = runs_in_two_lanes(users)
    db.session.expire_all()
    runs = list(db.session.execute(db.select(Run).order_by(Run.id)).scalars())  # as a page loads them
    with statements() as sent:
        places = queue_places(runs)
    assert len(places) == 12 and len(sent) == 1


def test_a_monitor_page_asks_for_the_places_of_its_queued_runs_once(app, client, auth, users):
    user = users["user"]
    runs_in_two_lanes(users)
    auth.login(user.email)
    client.get("/")  # (the first request of a session does more)

    def page() -> tuple[int, str]:
        db.session.expire_all()
        with statements() as sent:
            html = client.get("/").get_data(as_text=True)
        return len(sent), html

    few, html = page()
    # the user's queued runs (F's are the other's), but for C's run handed to a worker: out of line
    assert html.count(" line, waiting for ") == 9 and html.count("waiting for a worker") == 1
    # the first send waiting is first in line: the send that runs is not in it
    assert "#1 in the email line, waiting for run #2<" in html
    more = export_job(user, name="Export E")
    for _ in range(5):
        new_run(more, user, RunState.QUEUED, trigger="manual")
    db.session.commit()
    many, html = page()
    assert html.count(" line, waiting for ") == 14
    assert many == few  # five more queued rows, not one query more
