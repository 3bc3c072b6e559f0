"""What the groups screens read: a group by id, its state, the jobs it may chain, its runs and
their steps (one query per page, not one per row)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask import abort
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.jobtypes import types_where
from webapp.jobtypes.job_group import GroupDefinition, JobGroup
from webapp.models.campaigns import Campaign
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.permissions import job_or_404
from webapp.rules.clock import format_day, format_duration
from webapp.rules.states import RunState

GROUP = JobGroup.key
EXPIRES_SOON = timedelta(days=7)


def group_or_404(group_id: int) -> Job:
    """The group if the current user may see it; 404 otherwise (also for a non-group job)."""
    job = job_or_404(group_id)
    if job.job_type != GROUP:
        abort(404)
    return job


@dataclass
class GroupState:
    """A group's state as the list shows it."""

    label: str  # Draft, Active
    css: str
    expires_soon: bool
    expiry: str  # 'Expires 2026-05-01', 'Never expires', 'No expiration set'


def group_state(definition: GroupDefinition, today: date) -> GroupState:
    """Draft or Active, whether it expires within a week, and its expiry in words."""
    expires = definition.expiry_date
    soon = not definition.never_expires and expires is not None and expires - today <= EXPIRES_SOON
    if definition.never_expires:
        expiry = "Never expires"
    elif expires is not None:
        expiry = f"Expires {format_day(expires)}"
    else:
        expiry = "No expiration set"
    if definition.activated:
        return GroupState("Active", "state-completed", soon, expiry)
    return GroupState("Draft", "state-queued", soon, expiry)


def candidate_jobs(owner_id: int) -> list[Job]:
    """The owner's active jobs a group may chain (imports and exports; not groups, not emails)."""
    return list(
        db.session.execute(
            select(Job)
            .where(
                Job.owner_id == owner_id, Job.active.is_(True), Job.job_type.in_(types_where("can_be_step"))
            )
            .order_by(Job.name, Job.id)
        ).scalars()
    )


def jobs_by_id(ids: list[int]) -> dict[int, Job]:
    """Jobs by id (any state), for naming a group's steps."""
    if not ids:
        return {}
    return {job.id: job for job in db.session.execute(select(Job).where(Job.id.in_(ids))).scalars()}


def owner_campaigns(owner_id: int) -> list[Campaign]:
    """The campaigns a group of this owner may launch."""
    return list(
        db.session.execute(
            select(Campaign).where(Campaign.owner_id == owner_id).order_by(Campaign.name, Campaign.id)
        ).scalars()
    )


def last_runs(group_ids: list[int]) -> dict[int, Run]:
    """The latest run (not a planned one) of each group, in one query."""
    if not group_ids:
        return {}
    latest = (
        select(func.max(Run.id))
        .where(Run.job_id.in_(group_ids), Run.state != "scheduled")
        .group_by(Run.job_id)
    )
    runs = db.session.execute(select(Run).where(Run.id.in_(latest))).scalars()
    return {run.job_id: run for run in runs if run.job_id is not None}  # (all are: job_id IN …)


def steps_by_run(run_ids: list[int]) -> dict[int, dict[int, Run]]:
    """For each group run, its latest run of every step (as chains.steps_of), in one query."""
    found: dict[int, dict[int, Run]] = {run_id: {} for run_id in run_ids}
    if not run_ids:
        return found
    for run in db.session.execute(
        select(Run).where(Run.parent_run_id.in_(run_ids)).order_by(Run.id)
    ).scalars():
        # the query keeps runs with a parent; every step run is created with its number (chains)
        assert run.parent_run_id is not None and run.step is not None
        found[run.parent_run_id][run.step] = run
    return found


@dataclass
class TimelineItem:
    """One step of a group run, as its timeline shows it."""

    number: int
    name: str
    run: Run | None
    state: str  # 'completed', 'not started', 'Failed', ...
    duration: str
    reason: str = ""  # why a step that never ran failed (its job was deleted)
    css: str = "not-started"  # the state's class: 'state-completed', 'state-failed', ...


@dataclass
class StepName:
    """A group's step as it is now: its job's name, and whether that job was deleted."""

    name: str
    deleted: bool = False


def timeline(group_run: Run, steps: dict[int, Run], names: list[StepName]) -> list[TimelineItem]:
    """The steps of a group run in order: job name, state in words and how long each took.
    `names` are the group's current steps, for steps that never started. A step that never ran
    because its job was deleted shows as failed with the reason, once the group run is over."""
    count = group_run.progress_total if group_run.progress_total else len(names)
    count = max(count, max(steps, default=0))
    items = []
    for number in range(1, count + 1):
        run = steps.get(number)
        if run is not None:
            items.append(
                TimelineItem(
                    number,
                    run.job_name,
                    run,
                    run.state.label,
                    format_duration(run.duration_seconds) if run.started_at else "",
                    css=f"state-{run.state.value}",
                )
            )
            continue
        now = names[number - 1] if number <= len(names) else StepName(f"Step {number}")
        reason = _deleted_reason(group_run, number, now) if group_run.state.is_finished else ""
        if reason:
            items.append(
                TimelineItem(number, now.name, None, RunState.FAILED.label, "", reason, "state-failed")
            )
        else:
            items.append(TimelineItem(number, now.name, None, "not started", ""))
    return items


def _deleted_reason(group_run: Run, number: int, now: StepName) -> str:
    """Why step `number` of an ended group run never ran, if its job was deleted: the group
    run's own reason when it names this step (chains: "Step 2's job “Export” was deleted…"),
    else the job's name, deleted since."""
    if (group_run.error or "").startswith(f"Step {number}'s job"):
        return group_run.error or ""
    return f"The job “{now.name}” was deleted." if now.deleted else ""


def step_names(group: Job | None) -> list[StepName]:
    """The group's steps now, by their jobs' names (a deleted job shows as such)."""
    if group is None:
        return []
    ids = GroupDefinition.of(group).steps
    jobs = jobs_by_id(ids)
    return [
        StepName(jobs[i].name, deleted=not jobs[i].active)
        if i in jobs
        else StepName(f"Deleted job #{i}", True)
        for i in ids
    ]


def group_names_for(runs: list[Run]) -> dict[int, str]:
    """The group name of every step run among `runs`, by step run id, in one query."""
    parents = {run.parent_run_id for run in runs if run.parent_run_id}
    if not parents:
        return {}
    names = dict(db.session.execute(select(Run.id, Run.job_name).where(Run.id.in_(parents))).all())
    return {run.id: names[run.parent_run_id] for run in runs if run.parent_run_id in names}
