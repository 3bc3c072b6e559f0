"""Group runs: Conveyor drives the chain itself. A group run starts its first step; each step's
end starts the next one or, after a failure or a stop, records the rest as skipped; after the
last step the chosen campaigns launch and the group's notification goes out, once, from a small
follow-up job. Pause holds the chain between steps; retry continues from the failed step."""

from __future__ import annotations

from datetime import date, timedelta

from flask import current_app, url_for
from sqlalchemy import delete, select, update
from sqlalchemy.orm import joinedload

from webapp.engine import handoff, queueing
from webapp.engine.context import new_request_id
from webapp.engine.launches import send_after_group
from webapp.engine.planner import unplan
from webapp.engine.runs import (
    RunActionError,
    dispatch,
    job_busy,
    new_run,
    request_stop,
    retry_run,
)
from webapp.engine.transitions import log, move
from webapp.extensions import db
from webapp.jobtypes import lane_of
from webapp.jobtypes.job_group import MIN_STEPS, GroupDefinition, JobGroup
from webapp.mailing.notifications import notify
from webapp.models.base import utcnow
from webapp.models.groups import GroupStep
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.models.schedules import Blackout, JobSchedule
from webapp.models.users import User
from webapp.rules.clock import format_day, format_duration, format_local, to_local
from webapp.rules.states import RunState

FOLLOWUP_FUNCTION = "webapp.engine.chains.after_group_run"
STEP_DONE = (RunState.COMPLETED, RunState.COLLECTING)  # an email step is done once sent
STEP_BROKEN = (RunState.FAILED, RunState.CANCELLED, RunState.SKIPPED)
EXPIRY_WARNING = timedelta(days=7)


class GroupError(ValueError):
    """A group that cannot run or be saved as it is (shown to the user)."""


def _step_number(step: Run) -> int:
    """A step run's place in its chain (1, 2, ...). Every run with a parent run is a step,
    created with its number (_queue_step, _skip_from)."""
    assert step.step is not None, f"step run {step.id} has no step number"
    return step.step


def steps_of(group_run: Run) -> dict[int, Run]:
    """The latest run of each step of a group run, by step number."""
    runs = db.session.execute(select(Run).where(Run.parent_run_id == group_run.id).order_by(Run.id)).scalars()
    return {_step_number(run): run for run in runs}


def step_jobs(group_job: Job) -> list[Job | None]:
    """The group's step jobs in order (None where a job was deleted before its steps were kept
    as GroupStep rows; deleting a job a group uses is refused since)."""
    rows = db.session.execute(
        select(GroupStep.position, Job)
        .join(Job, Job.id == GroupStep.job_id)
        .where(GroupStep.group_id == group_job.id)
        .order_by(GroupStep.position)
    ).all()
    return [job if job.active else None for _, job in rows]


def _step_job(group_job: Job, number: int) -> Job | None:
    """Step `number`'s job: one query on the (group, position) unique index (hand_over's)."""
    return db.session.execute(
        select(Job)
        .join(GroupStep, GroupStep.job_id == Job.id)
        .where(GroupStep.group_id == group_job.id, GroupStep.position == number, Job.active.is_(True))
    ).scalar()


def _deleted_step(group_job: Job, jobs: list[Job | None]) -> str | None:
    """'step 2's job “Export” was deleted' for the first step whose job was deleted, if any."""
    number = next((n for n, job in enumerate(jobs, start=1) if job is None), None)
    if number is None:
        return None
    name = db.session.execute(
        select(Job.name)
        .join(GroupStep, GroupStep.job_id == Job.id)
        .where(GroupStep.group_id == group_job.id, GroupStep.position == number)
    ).scalar()
    return f"step {number}'s job “{name}” was deleted: remove it from the group"


def start(group_run: Run) -> None:
    """A waiting group run's turn came (dispatch): it starts its first step."""
    jobs = step_jobs(group_run.job) if group_run.job else []
    if not group_run.request_id:  # a group extracts nothing: its id is given as it starts
        group_run.request_id = new_request_id()
    move(
        group_run,
        RunState.PROCESSING,
        note=f"Group run started: {len(jobs)} steps. Request id {group_run.request_id}.",
    )
    group_run.progress_total, group_run.progress_done = len(jobs), 0
    db.session.commit()
    if len(jobs) < MIN_STEPS:
        _fail(group_run, 0, f"a group needs at least {MIN_STEPS} jobs")
        return
    deleted = _deleted_step(group_run.job, jobs)
    if deleted:  # fails before any step runs
        _fail(group_run, 0, deleted)
        return
    _start_step(group_run, 1)


def _start_step(group_run: Run, number: int) -> None:
    """Queue step `number` (whoever ended the previous step dispatches it)."""
    job = _step_job(group_run.job, number) if group_run.job else None
    if job is None:
        _fail(group_run, number, f"step {number}'s job was deleted")
        return
    _queue_step(group_run, number, job)
    db.session.commit()


def _queue_step(group_run: Run, number: int, job: Job) -> Run:
    step = new_run(
        job,
        group_run.started_by_id,
        RunState.QUEUED,
        trigger="group",
        parent_run_id=group_run.id,
        step=number,
    )
    log(
        step,
        f"{step.label.capitalize()} requested by group “{group_run.job_name}” {group_run.label} "
        f"(step {number} of {group_run.progress_total}).",
    )
    log(group_run, f"Step {number}: “{job.name}” {step.label} queued.")
    return step


def hand_over(step: Run) -> Run | None:
    """Called as a step completes, inside the transaction that records it: when the chain just
    goes on, the next step's run is created holding the slot this step gives up, so the worker
    can enqueue it right after that one commit (no dispatch round). Anything else (the last
    step, a pause or stop asked for, the next job busy or deleted) is left to `step_ended`."""
    if not step.parent_run_id or step.state not in STEP_DONE:
        return None
    number = _step_number(step)
    group_run = db.session.get(
        Run, step.parent_run_id, populate_existing=True, options=[joinedload(Run.job)]
    )  # one query: the chain and its job
    if (
        group_run is None
        or group_run.state is not RunState.PROCESSING
        or group_run.control
        or number >= (group_run.progress_total or 0)
        or group_run.job is None
    ):
        return None
    job = _step_job(group_run.job, number + 1)
    if job is None or lane_of(job.job_type) != lane_of(step.job_type) or job_busy(job.id, besides=step.id):
        return None  # (a step of the other lane waits for a slot of its own lane)
    group_run.progress_done = number
    next_step = _queue_step(group_run, number + 1, job)
    next_step.rq_job_id = queueing.new_run_job_id(next_step.id)  # this step's slot
    return next_step


def step_ended(step: Run) -> None:
    """A step run ended (completed, failed, cancelled): continue, hold or stop the chain."""
    group_run = db.session.get(Run, step.parent_run_id, populate_existing=True)
    if group_run is None or group_run.state is not RunState.PROCESSING:
        return
    number = _step_number(step)
    if step.state in STEP_DONE:
        if _handed_over(group_run, step):
            return  # the next step is already on its way
        group_run.progress_done = number
        if number >= (group_run.progress_total or 0):
            _complete(group_run)
        elif group_run.control == "stop":
            _cancel(group_run, number + 1, "the group run was stopped")
        elif group_run.control == "pause":
            group_run.control = None
            move(
                group_run,
                RunState.PAUSED,
                note=f"Paused after step {number}; Resume continues with step {number + 1}.",
            )
            db.session.commit()
        else:
            db.session.commit()
            _start_step(group_run, number + 1)
    elif step.state in STEP_BROKEN:
        if group_run.control == "stop":
            _cancel(group_run, number + 1, "the group run was stopped")
        else:
            verb = "was cancelled" if step.state is RunState.CANCELLED else "failed"
            reason = f"step {number} “{step.job_name}” {step.label} {verb}"
            if step.error:
                reason += f": {step.error}"
            _fail(group_run, number, reason)


def _handed_over(group_run: Run, step: Run) -> bool:
    return (
        db.session.execute(
            select(Run.id)
            .where(Run.parent_run_id == group_run.id, Run.step == _step_number(step) + 1, Run.id > step.id)
            .limit(1)
        ).scalar()
        is not None
    )


def _skip_from(group_run: Run, first: int, why: str) -> None:
    """Record the steps from `first` on as skipped: they never run."""
    jobs = step_jobs(group_run.job) if group_run.job else []
    for number, job in enumerate(jobs[first - 1 :], start=first):
        if job is None:
            continue
        skipped = new_run(
            job,
            group_run.started_by,
            RunState.QUEUED,
            trigger="group",
            parent_run_id=group_run.id,
            step=number,
        )
        move(skipped, RunState.SKIPPED, note=f"Skipped: {why}.")
        skipped.error = f"Skipped: {why}."


def _fail(group_run: Run, failed_step: int, reason: str) -> None:
    _skip_from(group_run, failed_step + 1, "previous step failed")
    group_run.error = reason[0].upper() + reason[1:]
    move(group_run, RunState.FAILED, note=f"Failed: {group_run.error.rstrip('.')}.")
    group_run.control = None
    db.session.commit()
    _ended(group_run)


def _cancel(group_run: Run, first_skipped: int, why: str) -> None:
    _skip_from(group_run, first_skipped, why)
    move(group_run, RunState.CANCELLED, note=f"Cancelled: {why}; the remaining steps were skipped.")
    group_run.control = None
    db.session.commit()
    _ended(group_run)


def _complete(group_run: Run) -> None:
    group_run.control = None
    move(group_run, RunState.COMPLETED, note=f"Completed: all {group_run.progress_total} steps.")
    db.session.commit()
    _ended(group_run)


def _ended(group_run: Run) -> None:
    """The group is free again: its next waiting run may start; the follow-up job launches the
    campaigns and notifies."""
    queueing.enqueue_followup(FOLLOWUP_FUNCTION, group_run.id)
    dispatch()


# ------------------------------------------------------------------ what people ask of a group run


def current_step(group_run: Run) -> Run | None:
    """The step run that is queued or running now, if any."""
    return next(
        (
            run
            for run in steps_of(group_run).values()
            if not run.state.is_finished and run.state is not RunState.COLLECTING
        ),
        None,
    )


def stop(group_run: Run, user: User) -> str:
    """Stop the current step and skip the rest."""
    if group_run.state is RunState.QUEUED:
        return request_stop(group_run, user)
    if group_run.state is RunState.PAUSED:
        _cancel(group_run, group_run.progress_done + 1, f"stopped by {user.display_name}")
        return "The group run was cancelled; its remaining steps were skipped."
    if group_run.state is not RunState.PROCESSING:
        raise RunActionError(f"A {group_run.state.value} group run cannot be stopped.")
    group_run.control, group_run.control_at = "stop", utcnow()
    log(group_run, f"Stop requested by {user.display_name}.")
    db.session.commit()
    step = current_step(group_run)
    if step is not None:
        request_stop(step, user)
    return "Stopping the current step; the remaining steps will be skipped."


def pause(group_run: Run, user: User) -> str:
    """Let the current step finish, then hold the chain."""
    if group_run.state is not RunState.PROCESSING:
        raise RunActionError("Only a running group run can be paused.")
    group_run.control, group_run.control_at = "pause", utcnow()
    log(group_run, f"Pause requested by {user.display_name}; the chain holds after this step.")
    db.session.commit()
    return "The current step finishes, then the chain holds until you resume it."


def resume(group_run: Run, user: User) -> str:
    """Continue a held chain with its next step (or cancel a pause not reached yet)."""
    if group_run.state is RunState.PROCESSING and group_run.control == "pause":
        group_run.control = None
        log(group_run, f"Pause withdrawn by {user.display_name}.")
        db.session.commit()
        return "The chain continues."
    if group_run.state is not RunState.PAUSED:
        raise RunActionError("Only a paused group run can be resumed.")
    move(group_run, RunState.PROCESSING, note=f"Resumed by {user.display_name}.")
    db.session.commit()
    _start_step(group_run, group_run.progress_done + 1)
    dispatch()
    return "Resumed: the chain continues with the next step."


def retry(group_run: Run, user: User) -> str:
    """Re-run the failed step and continue the chain; completed steps are not run again."""
    if group_run.state is not RunState.FAILED:
        raise RunActionError("Only a failed group run can be retried.")
    failed = steps_of(group_run).get(group_run.progress_done + 1)
    _reopen(group_run, f"Retry from step {group_run.progress_done + 1} requested by {user.display_name}.")
    if failed is not None and failed.state is RunState.FAILED:
        retry_run(failed, user)  # continues from its checkpoint
    else:
        _start_step(group_run, group_run.progress_done + 1)
        dispatch()
    return f"Retrying from step {group_run.progress_done + 1}; completed steps are not run again."


def _reopen(group_run: Run, note: str) -> None:
    move(group_run, RunState.PROCESSING, note=note)
    group_run.error = None
    db.session.commit()


def step_retried(step: Run) -> None:
    """A failed step was retried by itself (e.g. after its worker died): the chain reopens."""
    group_run = db.session.get(Run, step.parent_run_id)
    if (
        group_run is not None
        and group_run.state is RunState.FAILED
        and group_run.progress_done + 1 == step.step
    ):
        _reopen(group_run, f"Step {step.step} is retried; the chain continues after it.")


def install() -> None:
    """Let group runs follow the run engine: their turn, their steps' ends and retries reach
    this module through engine/handoff.py (create_app calls this once)."""
    handoff.install(handoff.ChainDriver(start=start, step_ended=step_ended, step_retried=step_retried))


# --------------------------------------------------------------------------- after a group run


def after_group_run(group_run_id: int) -> int:
    """The follow-up job: launch the chosen campaigns after a success, then notify once."""
    group_run = db.session.get(Run, group_run_id)
    if group_run is None:
        return 0
    definition = GroupDefinition.of(group_run.job) if group_run.job else GroupDefinition()
    launched = []
    if group_run.state is RunState.COMPLETED and definition.launch_campaigns:
        launched = _launch_campaigns(group_run, definition.campaign_ids)
    addresses = (
        definition.notify_success if group_run.state is RunState.COMPLETED else definition.notify_failure
    )
    if not addresses:
        return 0
    subject, body = _group_message(group_run, launched)
    return sum(int(notify(address, subject, body)) for address in addresses)


def _launch_campaigns(group_run: Run, campaign_ids: list[int]) -> list[Run]:
    """Each chosen campaign gets a new send of its own after this successful group run; the
    campaign's own launch (its status, launch time and scheduled run) is left as it is."""
    launched = []
    for campaign_id in campaign_ids:
        run = send_after_group(campaign_id, group_run)
        if run is not None:
            launched.append(run)
    return launched


def _group_message(group_run: Run, launched: list[Run]) -> tuple[str, str]:
    tz = current_app.config["TIMEZONE"]
    with current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
        link = url_for("runs.detail", run_id=group_run.id, _external=True)
    outcome = {RunState.COMPLETED: "completed", RunState.CANCELLED: "was cancelled"}.get(
        group_run.state, "failed"
    )
    lines = [f"Group “{group_run.job_name}”, {group_run.label} {outcome}.", ""]
    for number, step in sorted(steps_of(group_run).items()):
        took = format_duration(step.duration_seconds) if step.started_at else ""
        lines.append(
            f"  {number}. {step.job_name} {step.label}: {step.state.value}" + (f" ({took})" if took else "")
        )
    if group_run.error:
        lines += ["", f"Reason: {group_run.error}"]
    if launched:
        lines += ["", "Campaigns launched: " + ", ".join(r.job_name for r in launched)]
    lines += [
        "",
        f"Started: {format_local(group_run.started_at, tz) or '—'}",
        f"Finished: {format_local(group_run.finished_at, tz) or '—'}",
        "",
        f"Details: {link}",
    ]
    return f"[Conveyor] Group {group_run.job_name} {group_run.short_label} {outcome}", "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- expiry


def sweep_expired_groups() -> dict[str, int]:
    """Warn owners a week before a group expires; delete the definitions whose day has come
    (their runs stay, with the group's name). The scheduler process calls this."""
    today = to_local(utcnow(), current_app.config["TIMEZONE"]).date()
    deleted = warned = 0
    groups = (
        db.session.execute(select(Job).where(Job.job_type == JobGroup.key, Job.active.is_(True)))
        .scalars()
        .all()
    )
    for group in groups:
        group_id = group.id
        try:
            outcome = _expire_group(group, today)
        except Exception:  # one broken group never stops the sweep of the others
            db.session.rollback()
            current_app.logger.exception("group %s: expiry could not be handled", group_id)
            continue
        deleted += outcome == "deleted"
        warned += outcome == "warned"
    return {"deleted": deleted, "warned": warned}


def _expire_group(group: Job, today: date) -> str | None:
    """Delete a group whose day has come, or warn its owner a week before ("deleted",
    "warned" or None)."""
    definition = GroupDefinition.of(group)
    expires = definition.expiry_date
    if definition.never_expires or expires is None:
        return None
    if expires <= today:
        delete_group(group)
        return "deleted"
    if expires - today <= EXPIRY_WARNING and not definition.expiry_warned:
        definition.expiry_warned = True
        definition.save_to(group)
        db.session.commit()
        notify(
            group.owner.email,
            f"[Conveyor] Group {group.name} expires on {format_day(expires)}",
            f"Your group “{group.name}” expires on {expires:%A, %B %d, %Y}. On that day "
            "its definition is deleted and cannot be recovered (its run history stays).\n"
            "To keep it, edit the group and change its expiration.\n",
        )
        return "warned"
    return None


def delete_group(group: Job) -> None:
    """Delete a group definition for good: its schedule and planned runs go, its runs stay."""
    unplan(group)
    db.session.execute(update(Run).where(Run.job_id == group.id).values(job_id=None))
    db.session.execute(delete(JobSchedule).where(JobSchedule.job_id == group.id))
    db.session.execute(delete(Blackout).where(Blackout.job_id == group.id))
    db.session.delete(group)
    db.session.commit()
