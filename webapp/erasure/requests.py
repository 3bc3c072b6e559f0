"""Supporter Delete requests: a draft job waiting for its confirmation, and the confirmation
that starts its only run — once, however often it is sent."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, delete, update

from webapp.engine.runs import dispatch, new_run
from webapp.engine.transitions import log
from webapp.extensions import db
from webapp.jobtypes.supporter_delete import SupporterDelete, forget_request
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.models.users import User
from webapp.rules.clock import plural
from webapp.rules.states import RunState
from webapp.storage import current_storage


def new_request(owner: User, name: str, params: dict[str, Any]) -> Job:
    """A draft Supporter Delete (inactive: never on the Jobs page, never run without its
    confirmation)."""
    job = Job(owner_id=owner.id, job_type=SupporterDelete.key, name=name, params=params, active=False)
    db.session.add(job)
    db.session.commit()
    return job


def is_draft(job: Job) -> bool:
    """Whether the delete still waits for its confirmation."""
    return job.last_run_number == 0


def confirm(job: Job, user: User, count: int) -> Run | None:
    """Start the delete's only run, recording the confirmed count; None when it was confirmed
    already (a double click, another tab): the database lets one request claim it."""
    db.session.commit()  # end any read: the UPDATE below opens the transaction
    claimed = cast(
        CursorResult[Any],
        db.session.execute(
            update(Job)
            .where(Job.id == job.id, Job.job_type == SupporterDelete.key, Job.last_run_number == 0)
            .values(last_run_number=1, params={**job.params, "confirmed": count})
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if not claimed:
        db.session.rollback()
        return None
    db.session.refresh(job)
    run = new_run(job, user, RunState.QUEUED, trigger="manual", numbered=False)
    run.number = 1
    log(run, f"Run #1: deleting {plural(count, 'supporter')}, confirmed by {user.display_name}.")
    db.session.commit()
    dispatch()
    return run


def discard_request(job: Job) -> bool:
    """Delete a draft delete and its uploaded file, committing what the session holds with it
    (its audit entry); False, and nothing committed, when it was confirmed meanwhile."""
    params = dict(job.params)
    discarded = cast(
        CursorResult[Any],
        db.session.execute(
            delete(Job)
            .where(Job.id == job.id, Job.job_type == SupporterDelete.key, Job.last_run_number == 0)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if not discarded:
        db.session.rollback()
        return False
    db.session.commit()
    forget_request(current_storage(), params)
    return True


def first_run(job: Job) -> Run | None:
    """The run the confirmation started."""
    return db.session.execute(db.select(Run).where(Run.job_id == job.id).order_by(Run.id)).scalars().first()
