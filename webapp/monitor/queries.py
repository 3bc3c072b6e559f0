"""The monitor's and History's queries (indexed: fast with a million runs)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Row, Select, bindparam, func, select
from sqlalchemy.orm import defer

from webapp.engine.waiting import queue_places
from webapp.extensions import db
from webapp.groups.queries import group_names_for
from webapp.models.audit import AuditEntry
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.models.schedules import JobSchedule
from webapp.models.users import User
from webapp.monitor.rows import RowNames
from webapp.paging import Keyset, KeysetPage, NumberedPage, offset
from webapp.permissions import viewer, visible_runs_of_viewer
from webapp.rules.states import RunState

POLLED = (RunState.QUEUED, RunState.INITIALIZING, RunState.PROCESSING)
# what a monitor row needs of a run: not its checkpoint or error (owners come with row_names)
ROW_LOAD = (defer(Run.checkpoint), defer(Run.error))


# The monitor's statements are built once per kind of viewer and run with parameters: the page
# and its refresh are asked for every 2 s by every open monitor, and building a statement costs
# more than running it.


@cache
def _monitor_statements(sees_all: bool) -> tuple[Select, Select]:
    in_monitor = visible_runs_of_viewer(sees_all).where(Run.in_monitor.is_(True))
    count = in_monitor.with_only_columns(func.count()).order_by(None)
    page = (
        in_monitor.options(*ROW_LOAD)
        .order_by(Run.sort_at.desc(), Run.id.desc())
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )
    return count, page


def monitor_page(user: User, page: int, per_page: int) -> NumberedPage[Run]:
    """The monitor's rows for a page, newest start first, and how many rows there are."""
    count, rows = _monitor_statements(user.is_super_admin)
    total = db.session.execute(count, viewer(user)).scalar_one()
    runs = (
        db.session.execute(rows, {**viewer(user), "offset": offset(page, per_page), "limit": per_page})
        .scalars()
        .all()
    )
    return NumberedPage(list(runs), page, per_page, total)


@cache
def _polled_statements(sees_all: bool) -> tuple[Select, Select]:
    visible = visible_runs_of_viewer(sees_all).options(*ROW_LOAD)
    by_id = visible.where(Run.id.in_(bindparam("ids", expanding=True)))
    joined = (
        visible.where(Run.in_monitor.is_(True), Run.id > bindparam("after")).order_by(Run.id.desc()).limit(50)
    )
    return by_id, joined


def runs_by_id(user: User, ids: list[int]) -> list[Run]:
    """The visible runs among `ids` (the rows a monitor page is polling)."""
    if not ids:
        return []
    by_id, _ = _polled_statements(user.is_super_admin)
    return list(db.session.execute(by_id, {**viewer(user), "ids": ids}).scalars())


def new_monitor_runs(user: User, after: int) -> list[Run]:
    """Runs that joined the monitor after the page was drawn."""
    _, joined = _polled_statements(user.is_super_admin)
    return list(db.session.execute(joined, {**viewer(user), "after": after}).scalars())


_OWNER_EMAILS = select(User.id, User.email).where(User.id.in_(bindparam("ids", expanding=True)))


_TAKEN_FOR_OWNER = select(AuditEntry.object_id).where(
    AuditEntry.object_type == "run",
    AuditEntry.object_id.in_(bindparam("ids", expanding=True)),
    AuditEntry.action == "run.result_downloaded_for_owner",
)


def row_names(user: User, runs: list[Run]) -> RowNames:
    """The group names and (for super admins) owner emails the rows of `runs` show, which of
    the other users' results a super admin already took for them, and the queued runs' places
    in line: four plain queries at most, not a User object per owner nor a query per queued run
    (engine.waiting.queue_places)."""
    owners: dict[int, str] = {}
    taken: frozenset[int] = frozenset()
    if user.is_super_admin and runs:
        owners = dict(db.session.execute(_OWNER_EMAILS, {"ids": list({run.owner_id for run in runs})}).all())
        results = [run.id for run in runs if run.has_result and run.owner_id != user.id]
        if results:
            taken = frozenset(
                run_id
                for run_id in db.session.execute(_TAKEN_FOR_OWNER, {"ids": results}).scalars()
                if run_id
            )
    return RowNames(groups=group_names_for(runs), owners=owners, taken=taken, places=queue_places(runs))


@dataclass
class HistoryFilter:
    """History's filters; user_id is a super admin's (anyone else may name only themselves)."""

    job_type: str = ""
    state: str = ""
    user_id: int | None = None

    def params(self) -> dict[str, Any]:
        """The values of the filters in use, as the parameters of _history_statement."""
        values = {
            "job_type": self.job_type,
            "state": self.state and RunState(self.state),
            "user_id": self.user_id,
        }
        return {name: value for name, value in values.items() if value}


@cache
def _history_statement(sees_all: bool, filters: frozenset[str], page_from: str) -> Select:
    """History's page statement for one kind of viewer, set of filters in use and direction
    (page_from: "top", "before" or "after" an id), built once."""
    query = visible_runs_of_viewer(sees_all).options(defer(Run.checkpoint), defer(Run.error))
    if "job_type" in filters:
        query = query.where(Run.job_type == bindparam("job_type"))
    if "state" in filters:
        query = query.where(Run.state == bindparam("state", type_=Run.state.type))
    if "user_id" in filters:
        query = query.where(Run.owner_id == bindparam("user_id"))
    if page_from == "after":
        return query.where(Run.id > bindparam("id")).order_by(Run.id.asc()).limit(bindparam("limit"))
    if page_from == "before":
        query = query.where(Run.id < bindparam("id"))
    return query.order_by(Run.id.desc()).limit(bindparam("limit"))


def history_page(user: User, filters: HistoryFilter, keyset: Keyset) -> KeysetPage[Run]:
    """One page of History by keyset (no slow counts)."""
    params = filters.params()
    before, after = keyset.before, keyset.after
    page_from = "after" if after is not None else "before" if before is not None else "top"
    statement = _history_statement(user.is_super_admin, frozenset(params), page_from)
    rows = (
        db.session.execute(
            statement,
            {**params, **viewer(user), "limit": keyset.limit, "id": after if after is not None else before},
        )
        .scalars()
        .all()
    )
    return keyset.page(rows)


@cache
def _paused_statement(sees_all: bool) -> Select:
    query = (
        select(
            JobSchedule.job_id,
            Job.name.label("job_name"),
            func.coalesce(func.nullif(User.name, ""), User.email).label("paused_by"),
            JobSchedule.paused_reason,
            JobSchedule.resume_on,
        )
        .join(Job, Job.id == JobSchedule.job_id)
        .outerjoin(User, User.id == JobSchedule.paused_by_id)
        .where(JobSchedule.paused_at.is_not(None), Job.active.is_(True))
        .limit(20)
    )
    return query if sees_all else query.where(Job.owner_id == bindparam("viewer_id"))


def paused_schedules(user: User) -> list[Row]:
    """Paused schedules of the jobs the user may see (shown above the monitor), as rows of
    job_id, job_name, paused_by (a name, or None), paused_reason and resume_on."""
    return list(db.session.execute(_paused_statement(user.is_super_admin), viewer(user)).all())
