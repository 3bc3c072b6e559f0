"""One monitor (or History) row: its values worked out in Python, then its HTML. A page has up to
50 rows, a monitor is refreshed every 2 s by every open monitor, and a row's HTML depends on
nothing but those values, so the HTML of recent rows is kept and served again while the values
stay the same."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app, request
from flask_login import current_user
from markupsafe import Markup

from webapp.engine.runs import can_kill
from webapp.jobtypes import job_type_for
from webapp.models.runs import Run
from webapp.rules.states import RunState
from webapp.web import draft_link, localtime, queue_place, run_url, state_badge, stop_question


@dataclass(frozen=True)
class MonitorRow:
    """What the monitor shows for a run, as plain values."""

    run_id: int
    number: int
    job_name: str
    state: str
    owner_email: str | None  # shown to super admins only
    group_line: str | None  # "step 2 in group “Nightly chain”"
    type: str
    started: str
    completed: str
    detail_url: str
    progress: str  # running, waiting or state
    percent: int
    badge: Markup
    note: str
    result_url: str | None
    leaves_on_download: bool  # the viewer's own run: their download takes it off the monitor
    taken_for_owner: bool  # a super admin downloaded the result on the owner's behalf
    action: str | None  # stop, kill, stopping, remove
    action_url: str | None
    question: str
    draft_label: str | None  # "Edit campaign": what a cancelled run was made from is editable again
    draft_url: str | None


@dataclass(frozen=True)
class RowNames:
    """Names the rows of a page show beside their runs, each looked up once for the page."""

    groups: dict[int, str] = field(default_factory=dict)  # group name by step run id
    owners: dict[int, str] = field(default_factory=dict)  # owner email by user id (super admins)
    taken: frozenset[int] = frozenset()  # runs whose result was taken for their owner (the same)


def _sees_owners() -> bool:
    """Whether the viewer sees the User column (asked once per request, not once per row)."""
    environ = request.environ
    if "conveyor.sees_owners" not in environ:
        environ["conveyor.sees_owners"] = current_user.is_super_admin
    return environ["conveyor.sees_owners"]


def _viewer_id() -> int:
    """The signed-in user's id (asked once per request, not once per row)."""
    environ = request.environ
    if "conveyor.viewer_id" not in environ:
        environ["conveyor.viewer_id"] = current_user.id
    return environ["conveyor.viewer_id"]


def monitor_row(
    run: Run, group_name: str | None = None, owner_email: str | None = None, *, taken_for_owner: bool = False
) -> MonitorRow:
    """The values of one monitor row (owner_email: the User column, shown to super admins only;
    None for others). A result downloaded by someone else than the owner (a super admin, on
    their behalf) leaves the row where it is: it waits for the owner (taken_for_owner says so)."""
    state = run.state
    progress, note = "state", ""
    if state.is_running:
        progress = "running"
        note = (
            "Stopping…"
            if run.control == "stop"
            else ("Extracting…" if state is RunState.INITIALIZING else "")
        )
    elif state is RunState.SCHEDULED:
        progress, note = "waiting", f"for {localtime(run.scheduled_for)}"
    elif state is RunState.QUEUED:
        progress, note = "waiting", queue_place(run)
    elif state in (RunState.PAUSED, RunState.CANCELLED) and run.progress_total:
        progress, note = "waiting", f"at {run.percent}%"
    job_type = job_type_for(run.job_type)
    action = action_url = None
    question = ""
    if (
        not state.is_finished
        and state is not RunState.COLLECTING
        and job_type.can_stop
        and job_type.monitor_stop == "stop"
    ):
        if run.control == "stop" and state.is_running:
            action = "kill" if current_user.is_admin and can_kill(run) else "stopping"
            action_url = run_url("runs.kill", run.id, **{"from": "monitor"})
        else:
            action = "stop"
            action_url = run_url("runs.stop", run.id, **{"from": "monitor"})
            question = stop_question(run)
    elif state is RunState.FAILED:
        action = "remove"
        action_url = run_url("runs.dismiss", run.id, **{"from": "monitor"})
    draft = draft_link(run)
    return MonitorRow(
        run_id=run.id,
        number=run.number,
        job_name=run.job_name,
        state=state.value,
        owner_email=owner_email,
        group_line=f"step {run.step} in group “{group_name}”" if group_name else None,
        type=job_type.label,
        started=localtime(run.started_at),
        completed=localtime(run.finished_at),
        detail_url=run_url("runs.detail", run.id),
        progress=progress,
        percent=run.percent,
        badge=state_badge(run),
        note=note,
        result_url=run_url("runs.result", run.id) if run.has_result else None,
        leaves_on_download=run.owner_id == _viewer_id(),
        taken_for_owner=taken_for_owner,
        action=action,
        action_url=action_url,
        question=question,
        draft_label=draft[0] if draft else None,
        draft_url=draft[1] if draft else None,
    )


def row_html(run: Run, names: RowNames, *, oob: bool = False, message: str | None = None) -> Markup:
    """The monitor row of a run (`message`: what an action just did, shown in the row)."""
    group_name = names.groups.get(run.id)
    owner_email = names.owners.get(run.owner_id, "") if _sees_owners() else None
    taken = run.id in names.taken
    key = None if message else _settled_key(run, group_name, owner_email, oob)
    if key is None:
        return _render(monitor_row(run, group_name, owner_email, taken_for_owner=taken), oob, message)
    key = (*key, run.owner_id == _viewer_id(), taken)
    return _kept(
        key, lambda: _render(monitor_row(run, group_name, owner_email, taken_for_owner=taken), oob, None)
    )


def history_row_html(run: Run, owner_email: str | None) -> Markup:
    """The History row of a run (owner_email: for the User column of super admins, else None)."""
    key = (
        "history",
        run.id,
        run.job_type,
        run.job_name,
        run.number,
        owner_email,
        run.state,
        run.started_at,
        run.finished_at,
        run.has_result,
        run.downloaded_at,
        run.result_deleted_at,
        current_app.config["TIMEZONE"],
    )
    return _kept(
        key,
        lambda: Markup(
            current_app.jinja_env.get_template("monitor/partials/_history_row.html").render(
                run=run, owner_email=owner_email
            )
        ),
    )


def _kept(key: tuple, render: Callable[[], Markup]) -> Markup:
    """The row HTML kept for `key`, rendered now if it is not."""
    html = _SETTLED.get(key)
    if html is None:
        if len(_SETTLED) >= SETTLED_ROWS:
            _SETTLED.clear()
        html = _SETTLED[key] = render()
    return html


SETTLED_ROWS = 8192
_SETTLED: dict[tuple, Markup] = {}  # row HTML by the run values it is made of


def _settled_key(run: Run, group_name: str | None, owner_email: str | None, oob: bool) -> tuple | None:
    """Every run value a row is made of, for the rows made of nothing else: not a queued run
    (its place moves), a run being stopped (Kill comes with time) or a cancelled email run (its
    campaign's state shows)."""
    state = run.state
    if (
        state is RunState.QUEUED
        or (run.control == "stop" and state.is_running)
        or not job_type_for(run.job_type).settled_row(run)
    ):
        return None
    return (
        run.id,
        run.number,
        run.job_name,
        run.job_type,
        state,
        run.progress_done,
        run.progress_total,
        run.control,
        run.started_at,
        run.finished_at,
        run.scheduled_for,
        run.has_result,
        run.step,
        group_name,
        owner_email,
        current_app.config["TIMEZONE"],
        oob,
    )


def _render(row: MonitorRow, oob: bool, message: str | None) -> Markup:
    template = current_app.jinja_env.get_template("monitor/partials/_row.html")
    return Markup(template.render(r=row, oob=oob, message=message))
