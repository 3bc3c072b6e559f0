"""The API's answers made from the app's objects (one place, so every endpoint shows a run or a
job alike)."""

from __future__ import annotations

from sqlalchemy import inspect, select
from sqlalchemy.orm.attributes import set_committed_value

from webapp.api.v1.core import iso
from webapp.api.v1.schemas import Counts, GroupOut, JobOut, Progress, RunOut
from webapp.extensions import db
from webapp.jobtypes import REGISTRY, type_label
from webapp.jobtypes.job_group import GroupDefinition
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.models.users import User


def run_out(run: Run, owner: str | None = None) -> RunOut:
    """A run as the API shows it (`owner`: its owner's email, when the caller has it at hand)."""
    return RunOut(
        id=run.id,
        job_id=run.job_id,
        job_name=run.job_name,
        type=run.job_type,
        type_label=type_label(run.job_type),
        number=run.number,
        state=run.state.value,
        owner=owner or run.owner.email,
        progress=Progress(done=run.progress_done, total=run.progress_total, percent=run.percent),
        counts=Counts(**run.counts),
        error=run.error,
        created_at=iso(run.created_at),
        started_at=iso(run.started_at),
        finished_at=iso(run.finished_at),
        result_available=run.has_result,
        parent_run_id=run.parent_run_id,
    )


def runs_out(runs: list[Run]) -> list[RunOut]:
    """A list's runs as answers, with what the list's query left out (each run's error, its
    owner) fetched in one query each rather than once per run."""
    missing = [run for run in runs if "error" in inspect(run).unloaded]
    if missing:
        query = select(Run.id, Run.error).where(Run.id.in_([run.id for run in missing]))
        errors: dict[int, str | None] = {run_id: error for run_id, error in db.session.execute(query)}
        for run in missing:
            set_committed_value(run, "error", errors.get(run.id))
    owner_ids = {run.owner_id for run in runs}
    query = select(User.id, User.email).where(User.id.in_(owner_ids))
    emails: dict[int, str] = {user_id: email for user_id, email in db.session.execute(query)} if runs else {}
    return [run_out(run, emails.get(run.owner_id)) for run in runs]


def job_out(job: Job) -> JobOut:
    job_type = REGISTRY.get(job.job_type)
    described = job_type.describe(job.params) if job_type else []
    return JobOut(
        id=job.id,
        name=job.name,
        type=job.job_type,
        type_label=type_label(job.job_type),
        owner=job.owner.email,
        created_at=iso(job.created_at),
        settings={label: str(value) for label, value in described},
    )


def group_out(group: Job) -> GroupOut:
    definition = GroupDefinition.of(group)
    return GroupOut(
        **job_out(group).model_dump(),
        activated=definition.activated,
        steps=definition.steps,
        expires_on=definition.expires_on,
    )
