"""Group runs driven by Conveyor's chain: steps in order on real RQ jobs, stop on failure with the
rest skipped, campaigns launched and one notification after success, pause/resume, stop, retry
from the failed step, never two runs of one group interleaved, and expiry."""

import email
import email.policy
import os
from datetime import timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from tests.conftest import export_job, fresh, import_job, work
from tests.test_email_campaign import campaign_for, supporters
from webapp.engine import chains
from webapp.engine.control import pause as request_pause
from webapp.engine.control import resume as resume_run
from webapp.engine.control import retry as retry_run
from webapp.engine.control import stop as request_stop
from webapp.engine.reconciler import reconcile
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.jobtypes.job_group import GroupDefinition
from webapp.models import GroupStep, Job, Run
from webapp.models.base import utcnow
from webapp.rules.clock import to_local
from webapp.rules.states import RunState


def group_of(owner, jobs, name="Nightly chain", **settings) -> Job:
    group = Job(owner_id=owner.id, job_type="job_group", name=name, params={})
    definition = GroupDefinition(
        **{
            "steps": [job.id for job in jobs],
            "never_expires": True,
            "notify_success": ["ops@example.org"],
            "notify_failure": ["alerts@example.org"],
            **settings,
        }
    )
    definition.save_to(group)
    db.session.add(group)
    db.session.commit()
    return group


def good_import(owner, tmp_path, name="Import donors", rows=3):
    path = tmp_path / f"{name}.csv"
    path.write_text("email\n" + "".join(f"{name[:3].lower()}{i}@example.org\n" for i in range(rows)))
    return import_job(owner, path, ["email"], name=name)


def broken_import(owner, tmp_path, name="Broken import"):
    return import_job(owner, tmp_path / "missing.csv", ["email"], name=name)


def group_mail(app):
    """The group notifications in the outbox (campaign emails are left out)."""
    folder = app.config["OUTBOX_DIR"]
    found = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as raw:
            message = email.message_from_binary_file(raw, policy=email.policy.default)
        if str(message["Subject"]).startswith("[Conveyor] Group"):
            found.append(message)
    return found


def steps(group_run):
    return {n: (run.job_name, run.state) for n, run in chains.steps_of(fresh(group_run)).items()}


def test_three_steps_in_order_then_the_campaign_launches_and_one_notification(app, users, tmp_path):
    user = users["user"]
    supporters(3)
    campaign = campaign_for(user, name="Thank-you email")
    first, second = good_import(user, tmp_path, "Import donors"), export_job(user, name="Export")
    third = good_import(user, tmp_path, "Import volunteers")
    group = group_of(user, [first, second, third], launch_campaigns=True, campaign_ids=[campaign.id])
    group_run = start_run(group, user)
    assert fresh(group_run).state is RunState.PROCESSING
    assert fresh(group_run).request_id.startswith("REQ-")
    assert steps(group_run) == {1: ("Import donors", RunState.QUEUED)}  # only step 1 so far
    work(app)
    group_run = fresh(group_run)
    assert group_run.state is RunState.COMPLETED and group_run.progress_done == 3
    step_runs = chains.steps_of(group_run)
    assert [step_runs[n].job_name for n in (1, 2, 3)] == ["Import donors", "Export", "Import volunteers"]
    assert all(run.state is RunState.COMPLETED and run.trigger == "group" for run in step_runs.values())
    assert step_runs[1].finished_at <= step_runs[2].started_at
    assert step_runs[2].finished_at <= step_runs[3].started_at
    launched = Run.query.filter_by(job_id=campaign.job_id).one()
    assert launched.trigger == "group" and launched.state is RunState.COLLECTING
    assert launched.progress_done == 3  # the campaign was sent to the three supporters
    [message] = group_mail(app)
    assert str(message["To"]) == "ops@example.org"
    assert str(message["Subject"]) == "[Conveyor] Group Nightly chain #1 completed"
    body = message.get_content()
    assert "3. Import volunteers run #1: completed" in body
    assert "Campaigns launched: Thank-you email" in body


def test_a_failed_step_skips_the_rest_launches_nothing_and_notifies_failure_once(app, users, tmp_path):
    user = users["user"]
    campaign = campaign_for(user)
    group = group_of(
        user,
        [good_import(user, tmp_path), broken_import(user, tmp_path), export_job(user, name="Export")],
        launch_campaigns=True,
        campaign_ids=[campaign.id],
    )
    group_run = start_run(group, user)
    work(app)
    group_run = fresh(group_run)
    assert group_run.state is RunState.FAILED
    assert group_run.error.startswith(
        "Step 2 “Broken import” run #1 failed: the file missing.csv is no longer there (FileNotFoundError)"
    )
    assert steps(group_run) == {
        1: ("Import donors", RunState.COMPLETED),
        2: ("Broken import", RunState.FAILED),
        3: ("Export", RunState.SKIPPED),
    }
    skipped = chains.steps_of(group_run)[3]
    assert skipped.error == "Skipped: previous step failed." and skipped.started_at is None
    assert Run.query.filter_by(job_id=campaign.job_id).count() == 0
    [message] = group_mail(app)
    assert str(message["To"]) == "alerts@example.org"
    assert "failed" in str(message["Subject"])
    assert "3. Export run #1: skipped" in message.get_content()


def all_mail(app):
    """Every message in the outbox (group and job notifications alike)."""
    folder = app.config["OUTBOX_DIR"]
    found = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as raw:
            found.append(email.message_from_binary_file(raw, policy=email.policy.default))
    return found


def asks_every_run(*jobs):
    """The jobs ask for a notification after every run (and missed and long runs) themselves."""
    for job in jobs:
        job.notify_emails, job.notify_on = "steps@example.org", "every"
        job.notify_missed = job.notify_long = True
    db.session.commit()


def test_steps_whose_jobs_ask_for_every_run_stay_silent_only_the_group_notifies(app, users, tmp_path):
    user = users["user"]
    jobs = [good_import(user, tmp_path), export_job(user, name="Export")]
    asks_every_run(*jobs)
    group_run = start_run(group_of(user, jobs), user)
    work(app)
    assert fresh(group_run).state is RunState.COMPLETED
    [message] = all_mail(app)  # the group's, once: no job notification from either step
    assert str(message["To"]) == "ops@example.org"
    assert str(message["Subject"]) == "[Conveyor] Group Nightly chain #1 completed"

    start_run(jobs[1], user)  # the same job run by itself still notifies as it asked
    work(app)
    assert [str(m["To"]) for m in all_mail(app)].count("steps@example.org") == 1


def test_a_failing_step_whose_job_asks_for_every_run_sends_only_the_groups_failure(app, users, tmp_path):
    user = users["user"]
    jobs = [good_import(user, tmp_path), broken_import(user, tmp_path), export_job(user, name="Export")]
    asks_every_run(*jobs)
    group_run = start_run(group_of(user, jobs), user)
    work(app)
    assert fresh(group_run).state is RunState.FAILED
    [message] = all_mail(app)
    assert str(message["To"]) == "alerts@example.org"
    assert str(message["Subject"]) == "[Conveyor] Group Nightly chain #1 failed"


def test_retry_from_the_failed_step_continues_without_running_completed_steps(app, users, tmp_path):
    user = users["user"]
    first, flaky = good_import(user, tmp_path), broken_import(user, tmp_path)
    group = group_of(user, [first, flaky, export_job(user, name="Export")])
    group_run = start_run(group, user)
    work(app)
    (tmp_path / "missing.csv").write_text("email\nlate@example.org\n")  # the file arrived
    assert "step 2" in retry_run(fresh(group_run), user)
    work(app)
    group_run = fresh(group_run)
    assert group_run.state is RunState.COMPLETED
    assert Run.query.filter_by(job_id=first.id).count() == 1  # step 1 not run again
    assert fresh(chains.steps_of(group_run)[2]).state is RunState.COMPLETED
    assert chains.steps_of(group_run)[3].state is RunState.COMPLETED


def test_pause_holds_the_chain_after_the_current_step_and_resume_continues(app, users, tmp_path):
    user = users["user"]
    group = group_of(user, [good_import(user, tmp_path), export_job(user, name="Export")])
    group_run = start_run(group, user)
    request_pause(fresh(group_run), user)
    work(app)
    group_run = fresh(group_run)
    assert group_run.state is RunState.PAUSED
    assert steps(group_run) == {1: ("Import donors", RunState.COMPLETED)}
    resume_run(group_run, user)
    work(app)
    assert fresh(group_run).state is RunState.COMPLETED
    assert steps(group_run)[2] == ("Export", RunState.COMPLETED)


def test_stop_stops_the_current_step_and_skips_the_rest(app, users, tmp_path):
    user = users["user"]
    group = group_of(
        user,
        [good_import(user, tmp_path), export_job(user, name="Export"), export_job(user, name="Export 2")],
    )
    group_run = start_run(group, user)
    request_stop(fresh(group_run), user)  # step 1 is still queued: it is cancelled
    work(app)
    group_run = fresh(group_run)
    assert group_run.state is RunState.CANCELLED
    assert steps(group_run) == {
        1: ("Import donors", RunState.CANCELLED),
        2: ("Export", RunState.SKIPPED),
        3: ("Export 2", RunState.SKIPPED),
    }
    assert len(group_mail(app)) == 1


def test_two_runs_of_one_group_never_interleave(app, users, tmp_path):
    user = users["user"]
    group = group_of(user, [good_import(user, tmp_path), export_job(user, name="Export")])
    first, second = start_run(group, user), start_run(group, user)
    assert fresh(first).state is RunState.PROCESSING and fresh(second).state is RunState.QUEUED
    work(app)
    first, second = fresh(first), fresh(second)
    assert first.state is second.state is RunState.COMPLETED
    first_steps, second_steps = chains.steps_of(first), chains.steps_of(second)
    assert max(r.finished_at for r in first_steps.values()) <= min(
        r.started_at for r in second_steps.values()
    )
    assert second.started_at >= first.finished_at


def test_a_step_whose_worker_died_fails_the_chain_and_its_retry_continues_it(app, users, tmp_path):
    user = users["user"]
    group = group_of(user, [good_import(user, tmp_path), export_job(user, name="Export")])
    group_run = start_run(group, user)
    step = chains.steps_of(fresh(group_run))[1]
    step.state, step.started_at = RunState.PROCESSING, utcnow() - timedelta(minutes=5)
    step.heartbeat_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    assert reconcile()["failed"] == 1  # the group run itself has no worker: left alone
    assert fresh(group_run).state is RunState.FAILED
    assert steps(group_run)[2] == ("Export", RunState.SKIPPED)
    retry_run(fresh(step), user)
    assert fresh(group_run).state is RunState.PROCESSING
    work(app)
    assert fresh(group_run).state is RunState.COMPLETED


def test_a_group_with_fewer_than_two_jobs_fails_with_the_reason(app, users, tmp_path):
    group = group_of(users["user"], [export_job(users["user"])])
    group_run = start_run(group, users["user"])
    assert fresh(group_run).state is RunState.FAILED
    assert fresh(group_run).error == "A group needs at least 2 jobs"


def test_a_broken_group_does_not_stop_the_expiry_of_the_others(app, users):
    user = users["user"]
    today = to_local(utcnow(), app.config["TIMEZONE"]).date()
    jobs = [export_job(user, name="A"), export_job(user, name="B")]
    broken = Job(owner_id=user.id, job_type="job_group", name="Broken", params=["not", "a", "map"])
    db.session.add(broken)
    db.session.commit()
    expiring = group_of(user, jobs, name="Old chain", never_expires=False, expires_on=today.isoformat())
    assert chains.sweep_expired_groups() == {"deleted": 1, "warned": 0}
    assert db.session.get(Job, expiring.id) is None and db.session.get(Job, broken.id)


def test_expired_groups_are_deleted_and_owners_warned_a_week_before(app, users, tmp_path):
    user = users["user"]
    today = to_local(utcnow(), app.config["TIMEZONE"]).date()
    jobs = [export_job(user, name="A"), export_job(user, name="B")]
    expiring = group_of(user, jobs, name="Old chain", never_expires=False, expires_on=today.isoformat())
    soon = group_of(
        user, jobs, name="Soon chain", never_expires=False, expires_on=(today + timedelta(days=5)).isoformat()
    )
    later = group_of(
        user,
        jobs,
        name="Later chain",
        never_expires=False,
        expires_on=(today + timedelta(days=30)).isoformat(),
    )
    old_run = start_run(expiring, user)
    work(app)
    assert chains.sweep_expired_groups() == {"deleted": 1, "warned": 1}
    assert db.session.get(Job, expiring.id) is None
    old_run = fresh(old_run)
    assert old_run.job_id is None and old_run.job_name == "Old chain"  # history stays
    assert GroupDefinition.of(db.session.get(Job, soon.id)).expiry_warned
    assert db.session.get(Job, later.id) is not None
    assert chains.sweep_expired_groups() == {"deleted": 0, "warned": 0}  # warned once
    folder = app.config["OUTBOX_DIR"]
    subjects = [
        email.message_from_binary_file(open(os.path.join(folder, n), "rb"), policy=email.policy.default)[
            "Subject"
        ]
        for n in os.listdir(folder)
    ]
    assert sum("Soon chain expires on" in str(s) for s in subjects) == 1


def test_a_step_whose_job_was_deleted_before_steps_had_rows_fails_the_run_before_it_starts(
    app, users, tmp_path
):
    user = users["user"]
    second = export_job(user, name="Export")
    group = group_of(user, [good_import(user, tmp_path), second])
    second.active = False  # deleted before deleting a job a group uses was refused
    db.session.commit()
    group_run = start_run(group, user)
    work(app)
    group_run = fresh(group_run)
    assert group_run.state is RunState.FAILED
    assert group_run.error == "Step 2's job “Export” was deleted: remove it from the group"
    assert steps(group_run) == {1: ("Import donors", RunState.SKIPPED)}


def test_the_database_refuses_to_delete_a_job_row_that_a_group_step_uses(app, users):
    user = users["user"]
    first, second = export_job(user, name="First"), export_job(user, name="Second")
    group = group_of(user, [first, second])
    with pytest.raises(IntegrityError):
        db.session.execute(delete(Job).where(Job.id == second.id))
        db.session.flush()
    db.session.rollback()
    assert GroupDefinition.of(db.session.get(Job, group.id)).steps == [first.id, second.id]
    chains.delete_group(db.session.get(Job, group.id))  # the group's own steps go with it
    assert db.session.execute(select(GroupStep)).scalars().all() == []
    assert db.session.get(Job, second.id) is not None


def test_a_draft_group_is_not_planned_by_its_schedule_until_activated(app, users):
    from datetime import date, time

    from webapp.engine.planner import plan
    from webapp.models import JobSchedule

    group = group_of(users["user"], [export_job(users["user"]), export_job(users["user"])])
    schedule = JobSchedule(
        job_id=group.id,
        kind="days_of_week",
        start_date=date.today(),
        time=time(3, 0),
        weekdays=list(range(7)),
        enabled=True,
    )
    db.session.add(schedule)
    db.session.commit()
    assert plan(schedule) is None and schedule.next_run_at is None
    definition = GroupDefinition.of(group)
    definition.activated = True
    definition.save_to(group)
    db.session.commit()
    planned = plan(schedule)
    assert planned is not None and planned.state is RunState.SCHEDULED
