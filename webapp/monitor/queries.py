"""The monitor's and History's queries (indexed: fast with a million runs)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import defer

from webapp.engine.states import RunState
from webapp.extensions import db
from webapp.groups.queries import group_names_for
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.models.schedules import JobSchedule
from webapp.models.users import User
from webapp.monitor.rows import RowNames
from webapp.permissions import visible_runs

POLLED = (RunState.QUEUED, RunState.INITIALIZING, RunState.PROCESSING)
# what a monitor row needs of a run: not its checkpoint or error (owners come with row_names)
ROW_LOAD = (defer(Run.checkpoint), defer(Run.error))


def monitor_page(user: User, page: int, per_page: int) -> tuple[list[Run], int]:
    """The monitor's rows for a page, newest start first, and how many rows there are."""
    base = visible_runs(user).where(Run.in_monitor.is_(True))
    total = db.session.execute(
        base.with_only_columns(func.count()).order_by(None)
    ).scalar_one()
    runs = db.session.execute(
        base.options(*ROW_LOAD)
        .order_by(Run.sort_at.desc(), Run.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).scalars().all()
    return list(runs), total


def runs_by_id(user: User, ids: list[int]) -> list[Run]:
    """The visible runs among `ids` (the rows a monitor page is polling)."""
    if not ids:
        return []
    return list(db.session.execute(
        visible_runs(user).where(Run.id.in_(ids)).options(*ROW_LOAD)
    ).scalars())


def new_monitor_runs(user: User, after: int) -> list[Run]:
    """Runs that joined the monitor after the page was drawn."""
    return list(db.session.execute(
        visible_runs(user)
        .where(Run.in_monitor.is_(True), Run.id > after)
        .options(*ROW_LOAD)
        .order_by(Run.id.desc())
        .limit(50)
    ).scalars())


def row_names(user: User, runs: list[Run]) -> RowNames:
    """The group names and (for super admins) owner emails the rows of `runs` show: two plain
    queries at most, not a User object per owner."""
    owners = {}
    if user.is_super_admin and runs:
        owners = dict(db.session.execute(
            select(User.id, User.email).where(User.id.in_({run.owner_id for run in runs}))).all())
    return RowNames(groups=group_names_for(runs), owners=owners)


@dataclass
class HistoryFilter:
    """History's filters; user_id applies to super admins only."""

    job_type: str = ""
    state: str = ""
    user_id: int | None = None

    def apply(self, query: Select) -> Select:
        if self.job_type:
            query = query.where(Run.job_type == self.job_type)
        if self.state:
            query = query.where(Run.state == RunState(self.state))
        if self.user_id:
            query = query.where(Run.owner_id == self.user_id)
        return query


def history_page(user: User, filters: HistoryFilter, *, before: int | None, after: int | None,
                 per_page: int) -> tuple[list[Run], bool, bool]:
    """One page of History by keyset (no slow counts): (runs, has_newer, has_older)."""
    base = filters.apply(visible_runs(user)).options(defer(Run.checkpoint), defer(Run.error))
    if after is not None:
        rows = db.session.execute(
            base.where(Run.id > after).order_by(Run.id.asc()).limit(per_page + 1)
        ).scalars().all()
        has_newer = len(rows) > per_page
        runs = list(reversed(rows[:per_page]))
        return runs, has_newer, True
    query = base.order_by(Run.id.desc()).limit(per_page + 1)
    if before is not None:
        query = query.where(Run.id < before)
    rows = db.session.execute(query).scalars().all()
    return list(rows[:per_page]), before is not None, len(rows) > per_page


def paused_schedules(user: User) -> list[Row]:
    """Paused schedules of the jobs the user may see (shown above the monitor), as rows of
    job_id, job_name, paused_by (a name, or None), paused_reason and resume_on."""
    query = (select(JobSchedule.job_id, Job.name.label("job_name"),
                    func.coalesce(func.nullif(User.name, ""), User.email).label("paused_by"),
                    JobSchedule.paused_reason, JobSchedule.resume_on)
             .join(Job, Job.id == JobSchedule.job_id)
             .outerjoin(User, User.id == JobSchedule.paused_by_id)
             .where(JobSchedule.paused_at.is_not(None), Job.active.is_(True)))
    if not user.is_super_admin:
        query = query.where(Job.owner_id == user.id)
    return list(db.session.execute(query.limit(20)).all())
