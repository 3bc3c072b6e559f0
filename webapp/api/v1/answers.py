"""The API's answers made from the app's objects (one place, so every endpoint shows a run or a
job alike)."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from sqlalchemy import Row, inspect, select
from sqlalchemy.orm.attributes import set_committed_value

from webapp.api.v1.core import iso
from webapp.api.v1.schemas import GroupOut, JobOut, RunOut
from webapp.extensions import db
from webapp.jobtypes import REGISTRY, type_label
from webapp.jobtypes.job_group import GroupDefinition
from webapp.models.jobs import Job
from webapp.models.runs import COUNT_NAMES, Run, percent_done, result_kept
from webapp.models.users import User

# a run's answer read as columns, with its owner's email (`owner`): a list of runs needs no Run
# objects (monitor_from selects these)
RUN_COLUMNS = (
    Run.id,
    Run.job_id,
    Run.job_name,
    Run.job_type,
    Run.number,
    Run.state,
    Run.progress_done,
    Run.progress_total,
    *(getattr(Run, name) for name in COUNT_NAMES),
    Run.error,
    Run.created_at,
    Run.started_at,
    Run.finished_at,
    Run.result_path,
    Run.result_deleted_at,
    Run.parent_run_id,
)


_COUNTS = attrgetter(*COUNT_NAMES)


def run_fields(run: Run | Row, owner: str) -> dict[str, Any]:
    """A run's answer (RunOut) as plain values, from a Run or a row of RUN_COLUMNS: a page of
    runs is validated into its models in one go."""
    return {
        "id": run.id,
        "job_id": run.job_id,
        "job_name": run.job_name,
        "type": run.job_type,
        "type_label": type_label(run.job_type),
        "number": run.number,
        "state": run.state.value,
        "owner": owner,
        "progress": {
            "done": run.progress_done,
            "total": run.progress_total,
            "percent": percent_done(run.progress_done, run.progress_total, run.state),
        },
        "counts": dict(zip(COUNT_NAMES, _COUNTS(run), strict=True)),
        "error": run.error,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "result_available": result_kept(run.result_path, run.result_deleted_at),
        "parent_run_id": run.parent_run_id,
    }


def run_out(run: Run, owner: str | None = None) -> RunOut:
    """A run as the API shows it (`owner`: its owner's email, when the caller has it at hand)."""
    return RunOut.model_validate(run_fields(run, owner or run.owner.email))


def runs_out(runs: list[Run]) -> list[dict[str, Any]]:
    """A list's runs as answers' values, with what the list's query left out (each run's error,
    its owner) fetched in one query each rather than once per run."""
    if not runs:
        return []
    if "error" in inspect(runs[0]).unloaded:  # one query loaded them all alike
        query = select(Run.id, Run.error).where(Run.id.in_([run.id for run in runs]))
        errors: dict[int, str | None] = {run_id: error for run_id, error in db.session.execute(query)}
        for run in runs:
            set_committed_value(run, "error", errors.get(run.id))
    query = select(User.id, User.email).where(User.id.in_({run.owner_id for run in runs}))
    emails: dict[int, str] = {user_id: email for user_id, email in db.session.execute(query)}
    return [run_fields(run, emails[run.owner_id]) for run in runs]


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
        deleted=not job.active,
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
