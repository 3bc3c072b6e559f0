"""The monitor's and History's queries (indexed: fast with a million runs)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, Select, bindparam, func, select
from sqlalchemy.orm import aliased, defer

from webapp.engine.waiting import queue_places
from webapp.extensions import db
from webapp.jobtypes import job_type_for
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


def _folds_under_its_group(sees_all: bool):
    """A step run whose group run is in the viewer's monitor: it is shown folded under that
    group run's row (on the group run's page), not as a row of its own."""
    group = aliased(Run, name="group_run")
    in_monitor = select(group.id).where(group.id == Run.parent_run_id, group.in_monitor.is_(True))
    if not sees_all:
        in_monitor = in_monitor.where(group.owner_id == bindparam("viewer_id"))
    return Run.parent_run_id.is_not(None) & in_monitor.exists()


@cache
def _monitor_statements(sees_all: bool) -> tuple[Select, Select, Select]:
    in_monitor = visible_runs_of_viewer(sees_all).where(Run.in_monitor.is_(True))
    top_level = in_monitor.where(~_folds_under_its_group(sees_all))
    count = top_level.with_only_columns(func.count()).order_by(None)
    page = (
        top_level.options(*ROW_LOAD)
        .order_by(Run.sort_at.desc(), Run.id.desc())
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )
    steps = (
        in_monitor.options(*ROW_LOAD)
        .where(Run.parent_run_id.in_(bindparam("groups", expanding=True)))
        .order_by(Run.sort_at.desc(), Run.id.desc())
    )
    return count, page, steps


def monitor_page(user: User, page: int, per_page: int) -> NumberedPage[Run]:
    """The monitor's top-level rows for a page, newest start first, and how many there are (a
    step run whose group run is in the monitor is no row of its own: see folded_steps)."""
    count, rows, _ = _monitor_statements(user.is_super_admin)
    total = db.session.execute(count, viewer(user)).scalar_one()
    runs = (
        db.session.execute(rows, {**viewer(user), "offset": offset(page, per_page), "limit": per_page})
        .scalars()
        .all()
    )
    return NumberedPage(list(runs), page, per_page, total)


@cache
def _listed_statements(sees_all: bool, columns: tuple[Any, ...]) -> tuple[Select, Select]:
    """monitor_from's statements: the first page, and a page after a row (its sort time, id)."""
    count, _, _ = _monitor_statements(sees_all)
    top_level = count.with_only_columns(*columns, User.email.label("owner"))
    first = (
        top_level.join(User, User.id == Run.owner_id)
        .order_by(Run.sort_at.desc(), Run.id.desc())
        .limit(bindparam("limit"))
    )
    after = first.where(
        (Run.sort_at < bindparam("sort_at"))
        | ((Run.sort_at == bindparam("sort_at")) & (Run.id < bindparam("run_id")))
    )
    return first, after


def monitor_from(
    user: User, after: tuple[datetime, int] | None, per_page: int, columns: tuple[Any, ...]
) -> tuple[list[Row], int, bool]:
    """The monitor's top-level rows after a row (its sort time and id; None: from the top), in
    the monitor's order: a page of them as rows of `columns` (of Run) and the owner's email
    (`owner`), how many rows the monitor has, and whether more follow. A cursor, unlike a page
    number, does not shift when new runs arrive while a client pages."""
    count, _, _ = _monitor_statements(user.is_super_admin)
    connection = db.session.connection()  # columns only: no ORM step needed
    total = connection.execute(count, viewer(user)).scalar_one()
    first, following = _listed_statements(user.is_super_admin, columns)
    params: dict[str, Any] = {**viewer(user), "limit": per_page + 1}
    if after is not None:
        params["sort_at"], params["run_id"] = after
    rows = list(connection.execute(first if after is None else following, params))
    return rows[:per_page], total, len(rows) > per_page


def folded_steps(user: User, runs: list[Run]) -> dict[int, list[Run]]:
    """The step runs in the monitor of the group runs among `runs`, newest first, by group run
    id: the rows folded under each group run's row."""
    groups = [run.id for run in runs if job_type_for(run.job_type).drives_chain]
    if not groups:
        return {}
    _, _, statement = _monitor_statements(user.is_super_admin)
    folded: dict[int, list[Run]] = {}
    for step in db.session.execute(statement, {**viewer(user), "groups": groups}).scalars():
        folded.setdefault(step.parent_run_id, []).append(step)
    return folded


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

_GROUP_RUNS = select(Run.id, Run.job_name, Run.in_monitor, Run.owner_id).where(
    Run.id.in_(bindparam("ids", expanding=True))
)


def row_names(user: User, runs: list[Run], *, on_page: Collection[int] = ()) -> RowNames:
    """The group names and (for super admins) owner emails the rows of `runs` show, which of
    the other users' results a super admin already took for them, the queued runs' places in
    line and which step rows fold under their group run's row (`on_page`: the runs a polling
    page shows, whose step rows stay folded under them even once they left the monitor): four
    plain queries at most, not a User object per owner nor a query per queued run
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
    groups, fold = _groups_of(user, runs, on_page)
    return RowNames(groups=groups, owners=owners, taken=taken, places=queue_places(runs), fold=fold)


def _groups_of(
    user: User, runs: list[Run], on_page: Collection[int]
) -> tuple[dict[int, str], dict[int, int]]:
    """For RowNames: the group name of each step run among `runs`, and the group run each one
    folds under: a group run the viewer sees that is in the monitor (_folds_under_its_group)
    or on the polling page (`on_page`)."""
    parents = list({run.parent_run_id for run in runs if run.parent_run_id})
    if not parents:
        return {}, {}
    names: dict[int, str] = {}
    shown: set[int] = set()
    for group_id, name, in_monitor, owner_id in db.session.execute(_GROUP_RUNS, {"ids": parents}):
        names[group_id] = name
        if (in_monitor or group_id in on_page) and (user.is_super_admin or owner_id == user.id):
            shown.add(group_id)
    groups = {run.id: names[run.parent_run_id] for run in runs if run.parent_run_id in names}
    fold = {run.id: run.parent_run_id for run in runs if run.parent_run_id in shown}
    return groups, fold


@dataclass
class HistoryFilter:
    """History's filters; user_id is a super admin's (anyone else may name only themselves)."""

    job_type: str = ""
    state: str = ""
    user_id: int | None = None
    job_id: int | None = None  # one job's runs (a job the viewer may see: permissions.job_or_404)

    def params(self) -> dict[str, Any]:
        """The values of the filters in use, as the parameters of _history_statement."""
        values = {
            "job_type": self.job_type,
            "state": self.state and RunState(self.state),
            "user_id": self.user_id,
            "job_id": self.job_id,
        }
        return {name: value for name, value in values.items() if value}


@cache
def _history_statement(sees_all: bool, filters: frozenset[str], page_from: str) -> Select:
    """History's page statement for one kind of viewer, set of filters in use and direction
    (page_from: "top", "before" or "after" an id), built once."""
    query = visible_runs_of_viewer(sees_all).options(defer(Run.checkpoint), defer(Run.error))
    # what happened: a planned occurrence joins History once it fires (it then has a number);
    # until then the monitor shows it waiting and its job's page shows it as Next
    query = query.where(Run.number.is_not(None))
    if "job_type" in filters:
        query = query.where(Run.job_type == bindparam("job_type"))
    if "state" in filters:
        query = query.where(Run.state == bindparam("state", type_=Run.state.type))
    if "user_id" in filters:
        query = query.where(Run.owner_id == bindparam("user_id"))
    if "job_id" in filters:
        query = query.where(Run.job_id == bindparam("job_id"))
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


def history_count(user: User, job_id: int) -> int:
    """How many runs of a job History lists to `user` (the runs that happened: those with a
    number), for a job page's "All N runs in History"."""
    query = select(func.count()).select_from(Run).where(Run.job_id == job_id, Run.number.is_not(None))
    if not user.is_super_admin:
        query = query.where(Run.owner_id == user.id)
    return db.session.execute(query).scalar_one()


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
