"""Who may see what: every route goes through these, so a guessed id answers 404."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort
from flask_login import current_user, login_required
from sqlalchemy import Select, bindparam, select

from webapp.extensions import db
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.models.users import User


def visible_runs_of_viewer(sees_all: bool) -> Select:
    """Runs a viewer may see, as a statement built once and run for many viewers: every user's
    for a super admin (`sees_all`), else the viewer's own — the user given as the `viewer_id`
    parameter (viewer())."""
    query = select(Run)
    return query if sees_all else query.where(Run.owner_id == bindparam("viewer_id"))


def viewer(user: User) -> dict[str, Any]:
    """The parameters of a statement built on visible_runs_of_viewer, for `user`."""
    return {"viewer_id": user.id}


def can_see(user: User, owned: Run | Job) -> bool:
    """A user sees their own runs and jobs; a super admin sees everyone's."""
    return user.is_super_admin or owned.owner_id == user.id


def run_or_404(run_id: int) -> Run:
    """The run if the current user may see it; 404 otherwise (never 403: ids are not confirmed)."""
    run = db.session.get(Run, run_id)
    if run is None or not can_see(current_user, run):
        abort(404)
    return run


def job_or_404(job_id: int) -> Job:
    """The job if the current user may see it; 404 otherwise."""
    job = db.session.get(Job, job_id)
    if job is None or not can_see(current_user, job):
        abort(404)
    return job


def schedulable_job_or_404(job_id: int) -> Job:
    """The job if the current user may see it and its type has a schedule of its own (a
    campaign has none: its launch time is its schedule); 404 otherwise."""
    from webapp.jobtypes import REGISTRY

    job = job_or_404(job_id)
    job_type = REGISTRY.get(job.job_type)
    if job_type is not None and not job_type.runs_on_request:
        abort(404)
    return job


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only admins and super admins (others get 403)."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def super_admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only super admins (others get 404: the page does not exist for them)."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_super_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapped
