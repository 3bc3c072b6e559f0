"""A job type is one module that declares what it can do: a type registered here, in the tests
only, shows in the monitor, History, its run page, the group wizard and the schedule pages, and
runs as a group step, with no other file changed."""

from __future__ import annotations

import re
from datetime import date

import pytest

from tests.conftest import export_job, fresh, work
from webapp import jobtypes
from webapp.engine import control
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.jobtypes.base import JobType
from webapp.jobtypes.job_group import GroupDefinition, JobGroup
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.models.schedules import JobSchedule
from webapp.rules.states import RunState


class TallyCount(JobType):
    """Counts to the number in its parameters, in batches of ten."""

    key = "test_tally_count"
    label = "Tally Count"
    description = "Counts to a number (a job type that exists in the tests only)."
    noun = "marks"
    noun_past = "tallied"
    count_labels = {"checked": "Looked at", "created": "Tallied"}

    def describe(self, params):
        return [("Count to", str(params.get("upto")))]

    def run(self, ctx) -> None:
        upto = int(ctx.params["upto"])
        ctx.begin_processing(upto)
        done = 0
        while done < upto:
            batch = min(10, upto - done)
            done += batch
            ctx.commit_batch(done=done, checked=batch, created=batch)


@pytest.fixture
def tally():
    """The extra type, registered for one test and removed after it."""
    registered = jobtypes.register(TallyCount)
    yield registered
    del jobtypes.REGISTRY[TallyCount.key]


def tally_job(owner, name: str = "Count the marks", upto: int = 25) -> Job:
    job = Job(owner_id=owner.id, job_type=TallyCount.key, name=name, params={"upto": upto})
    db.session.add(job)
    db.session.commit()
    return job


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_its_run_shows_in_the_monitor_history_and_run_page_in_its_own_words(app, client, auth, users, tally):
    job = tally_job(users["user"])
    run = start_run(job, users["user"])
    auth.login(users["user"].email)
    queued = text(client.get("/"))
    assert "Count the marks" in queued and "Tally Count" in queued
    assert "Stop" in queued  # a type that can stop gets Stop in the monitor

    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED and (run.checked, run.created) == (25, 25)
    page = text(client.get(f"/runs/{run.id}"))
    assert "Tally Count" in page or "Count the marks" in page
    assert "<dt>Looked at</dt><dd>25</dd>" in page.replace(" <", "<").replace("> ", ">")
    assert "<dt>Tallied</dt>" in page.replace(" <", "<").replace("> ", ">")
    assert "Updated" not in page  # only the counters the type declares
    assert "Completed: 25 looked at, 25 tallied." in page  # its closing log line, in its words

    history = text(client.get("/history"))
    assert "Count the marks" in history and "Tally Count" in history
    assert "Count the marks" not in text(client.get("/"))  # done, with no file to download


def test_its_stop_question_uses_its_noun(app, client, auth, users, tally):
    job = tally_job(users["user"], upto=40)
    run = start_run(job, users["user"])
    run.state, run.progress_total, run.progress_done = RunState.PROCESSING, 40, 20
    db.session.commit()
    auth.login(users["user"].email)
    page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert "50% (20 of 40) are already tallied and stay so" in page


def test_the_group_wizard_offers_it_and_a_group_runs_it_as_a_step(app, client, auth, users, tally):
    owner = users["user"]
    job = tally_job(owner)
    export = export_job(owner, name="Then export")
    group = Job(owner_id=owner.id, job_type=JobGroup.key, name="Count then export", params={})
    db.session.add(group)
    db.session.commit()
    auth.login(owner.email)
    wizard = text(client.get(f"/groups/{group.id}/edit/1"))
    assert f'aria-label="Add {job.name}"' in wizard  # offered as a step like any other job

    saved = client.post(f"/groups/{group.id}/edit/1", data={"steps": [job.id, export.id], "nav": "next"})
    assert saved.status_code == 302
    assert GroupDefinition.of(db.session.get(Job, group.id)).steps == [job.id, export.id]

    group = db.session.get(Job, group.id)
    definition = GroupDefinition.of(group)
    definition.activated, definition.never_expires = True, True
    definition.save_to(group)
    db.session.commit()
    group_run = start_run(group, owner)
    work(app)
    group_run = fresh(group_run)
    assert group_run.state is RunState.COMPLETED
    steps = db.session.execute(db.select(Run).where(Run.parent_run_id == group_run.id)).scalars().all()
    assert sorted((s.step, s.job_type, s.state) for s in steps) == [
        (1, TallyCount.key, RunState.COMPLETED),
        (2, "user_data_export", RunState.COMPLETED),
    ]


def test_it_is_listed_as_a_job_and_can_be_scheduled(app, client, auth, users, tally):
    job = tally_job(users["user"])
    auth.login(users["user"].email)
    assert "Count the marks" in text(client.get("/jobs/"))
    page = text(client.get(f"/jobs/{job.id}"))
    assert "Count to" in page and "25" in page  # its own description of its parameters
    assert client.get(f"/jobs/{job.id}/schedule").status_code == 200
    saved = client.post(
        f"/jobs/{job.id}/schedule",
        data={
            "enabled": "y",
            "kind": "days_of_week",
            "weekdays": ["0", "2", "4"],
            "start_date": date.today().isoformat(),
            "time": "01:30",
            "overlap_policy": "skip",
        },
    )
    assert saved.status_code == 302 and saved.headers["Location"].endswith(f"/jobs/{job.id}")
    schedule = db.session.execute(db.select(JobSchedule).where(JobSchedule.job_id == job.id)).scalar_one()
    assert schedule.enabled and schedule.next_run_at is not None
    planned = db.session.execute(db.select(Run).where(Run.job_id == job.id)).scalar_one()
    assert planned.state is RunState.SCHEDULED and planned.job_type == TallyCount.key


def test_a_run_of_a_type_no_longer_installed_still_shows(app, client, auth, users, tally):
    job = tally_job(users["user"])
    run = start_run(job, users["user"])
    control.stop(run, users["user"])  # cancelled before it starts
    del jobtypes.REGISTRY[TallyCount.key]
    try:
        auth.login(users["user"].email)
        assert client.get("/").status_code == 200
        assert client.get(f"/runs/{run.id}").status_code == 200
        assert "Test Tally Count" in text(client.get("/history"))
    finally:
        jobtypes.register(TallyCount)
