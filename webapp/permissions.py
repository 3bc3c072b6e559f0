"""Who may see what: every route goes through these, so a guessed id answers 404.

Ids that arrive in a form or a query string follow the same rule as ids in URLs. A field that
refers from one object to another (a campaign's saved filter, a group's steps and campaigns)
may name only an object of the same owner as the object it edits (the acting user's, for a new
one) — which the acting user can then see: a super admin editing a user's group picks among
that user's jobs, never their own or a third user's. A list the viewer reads (the monitor's
polled `ids`, History's `user`) names only what the viewer may see. Then:
- a single-id field naming anything else answers 404, exactly as a guessed URL does, whether the
  object is someone else's or does not exist (usable_or_404, history_user_or_404);
- a list field drops the ids it may not use, as the UI already drops an id that disappeared
  (a deleted job, a run that left the monitor): usable_ids, and visible_runs_of_viewer for the
  monitor's `ids`.
Either way nothing of another user's object is stored or shown. Keyset cursors (`before`,
`after`) are positions in the viewer's own list, not objects: they are only parsed.
tests/test_permissions.py holds the matrix of every such field × role × own/other's id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user, login_required
from sqlalchemy import Select, bindparam, select

from webapp.extensions import db
from webapp.models.campaigns import Campaign, SavedFilter
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


Owned = Job | Run | Campaign | SavedFilter
# one of the Owned models, the same one throughout a call
OwnedT = TypeVar("OwnedT", Job, Run, Campaign, SavedFilter)


def can_see(user: User, owned: Owned) -> bool:
    """A user sees their own runs and jobs (and campaigns, saved filters); a super admin sees
    everyone's."""
    return user.is_super_admin or owned.owner_id == user.id


def seen_or_404(model: type[OwnedT], object_id: int) -> OwnedT:
    """The `model` object if the current user may see it; 404 otherwise (never 403: ids are not
    confirmed)."""
    obj = db.session.get(model, object_id)
    if obj is None or not can_see(current_user, obj):
        abort(404)
    return obj


def run_or_404(run_id: int) -> Run:
    """The run if the current user may see it; 404 otherwise."""
    return seen_or_404(Run, run_id)


def job_or_404(job_id: int) -> Job:
    """The job if the current user may see it; 404 otherwise."""
    return seen_or_404(Job, job_id)


def usable_or_404(model: type[OwnedT], object_id: int, owner_id: int) -> OwnedT:
    """The `model` object a single-id field names, if it may go into an object of `owner_id`
    (the owner of what the form edits; the acting user for a new object); 404 otherwise, the
    same answer for someone else's object and for none (see the module docstring)."""
    obj = db.session.get(model, object_id)
    if obj is None or obj.owner_id != owner_id or not can_see(current_user, obj):
        abort(404)
    return obj


def usable_ids(model: type[Owned], ids: Iterable[int | None], owner_id: int) -> list[int]:
    """Of the ids of a list field (None for a malformed one), in order and each once, those of
    `model` objects that may go into an object of `owner_id`; the others are dropped."""
    wanted = [object_id for object_id in dict.fromkeys(ids) if object_id is not None]
    if not wanted or not (current_user.is_super_admin or current_user.id == owner_id):
        return []
    found = set(
        db.session.execute(select(model.id).where(model.id.in_(wanted), model.owner_id == owner_id)).scalars()
    )
    return [object_id for object_id in wanted if object_id in found]


def history_user_or_404(user_id: int | None) -> int | None:
    """The user whose runs a list is narrowed to (History's `user`): any existing user for a
    super admin, only oneself for anyone else; 404 otherwise — the same answer whether or not
    that user exists, so the filter tells a plain user nothing about other accounts."""
    if user_id is None or user_id == current_user.id:
        return user_id
    if not current_user.is_super_admin or db.session.get(User, user_id) is None:
        abort(404)
    return user_id


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
