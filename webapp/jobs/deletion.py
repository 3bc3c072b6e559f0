"""Deleting a job, for its page and the JSON API alike: never one a group runs as a step; its
runs stay in History, its uploaded file goes (see uploads.discard_job_file)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, update

from webapp import audit
from webapp.engine.planner import unplan
from webapp.extensions import db
from webapp.jobs.uploads import discard_job_file
from webapp.jobtypes.job_group import groups_using
from webapp.models.jobs import Job


def refusal(job: Job) -> str | None:
    """Why the job may not be deleted now (a step of a group), or None."""
    groups = groups_using(job)
    if not groups:
        return None
    return (
        f"“{job.name}” is a step of the group{'s' if len(groups) > 1 else ''} "
        + ", ".join(f"“{group.name}”" for group in groups)
        + f". Remove it from {'them' if len(groups) > 1 else 'it'} first."
    )


def delete_job(job: Job) -> bool:
    """Delete the job (audited); the caller checked refusal() first. Its schedule is switched
    off and its planned runs go with it: nothing runs by itself for a deleted job. False when
    it was deleted already (a second click, another tab: the database lets one request do it)."""
    db.session.commit()  # end any read: the UPDATE below opens the transaction
    claimed = cast(
        CursorResult[Any],
        db.session.execute(
            update(Job)
            .where(Job.id == job.id, Job.active.is_(True))
            .values(active=False)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if not claimed:
        db.session.rollback()
        return False
    job.active = False
    if job.schedule is not None:
        job.schedule.enabled = False
        job.schedule.next_run_at = None
    audit.record("job.deleted", job, commit=False)
    db.session.commit()
    unplan(job)
    discard_job_file(job)
    return True
