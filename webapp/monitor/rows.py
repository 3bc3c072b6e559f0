"""One monitor (or History) row: its values worked out in Python, then its HTML. A page has up to
50 rows, a monitor is refreshed every 2 s by every open monitor, and a row's HTML depends on
nothing but those values, so the HTML of recent rows is kept and served again while the values
stay the same."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from flask import current_app, g, request
from flask_login import current_user
from markupsafe import Markup

from webapp.engine.runs import can_kill
from webapp.jobtypes import JobType, job_type_for
from webapp.models.runs import Run
from webapp.models.settings import AccountSettings
from webapp.rules.clock import format_day, format_local, to_local
from webapp.rules.states import RunState
from webapp.web import draft_link, queue_place, run_url, state_badge, stop_question

_SENTINEL = 987654321  # stands for the job id in a link built once (job_page_url)


@dataclass(frozen=True)
class MonitorRow:
    """What the monitor shows for a run, as plain values."""

    run_id: int
    job_id: int | None  # the job's own number (the "Job #" column); None once it was deleted
    job_url: str | None  # the job's page
    label: str  # "run #3", or "planned run" before a planned occurrence fires
    job_name: str
    state: str
    owner_email: str | None  # shown to super admins only
    group_line: str | None  # "step 2 in group “Nightly chain”" ("step 2" folded under its group)
    step_of: int | None  # folded under the row of this group run (hidden until it is unfolded)
    has_steps: bool  # a group run that started its chain: its row has the fold control
    type: str
    started: str
    completed: str
    detail_url: str
    progress: str  # running, starting (no total yet), waiting, collecting or state
    percent: int
    badge: Markup
    note: str
    result_url: str | None
    leaves_on_download: bool  # the viewer's own run: their download takes it off the monitor
    taken_for_owner: bool  # a super admin downloaded the result on the owner's behalf
    action: str | None  # stop, kill, stopping, dismiss
    action_url: str | None
    question: str
    draft_label: str | None  # "Edit campaign": what a cancelled run was made from is editable again
    draft_url: str | None


@dataclass(frozen=True)
class RowNames:
    """Names the rows of a page show beside their runs, each looked up once for the page."""

    groups: dict[int, str] = field(default_factory=dict)  # group name by step run id
    # the group run a step run is folded under, by step run id: its group run is in the monitor
    # (and seen by the viewer), so the step shows in that row's fold, not as a row of its own
    fold: dict[int, int] = field(default_factory=dict)
    owners: dict[int, str] = field(default_factory=dict)  # owner email by user id (super admins)
    taken: frozenset[int] = frozenset()  # runs whose result was taken for their owner (the same)
    # (place in line, the run it waits for) by queued run id, all in one query
    places: dict[int, tuple[int, Run | None]] = field(default_factory=dict)


class Viewing(NamedTuple):
    """What every row of a request shares: who looks and the account time zone."""

    viewer_id: int
    sees_owners: bool  # the User column (super admins)
    timezone: str


def _viewing() -> Viewing:
    """The request's Viewing, read once per request and kept in its environ (it replaces one
    such cache per value). What it buys: current_user.id costs 2.5 µs, .is_super_admin 2.7 µs
    and the time zone from current_app.config 1.0 µs (context-local lookups), this 0.9 µs; a
    page's 50 rows need them all: ~0.3 ms a page (2026-11-30, 2 cores)."""
    environ = request.environ
    viewing = environ.get("conveyor.viewing")
    if viewing is None:
        viewing = environ["conveyor.viewing"] = Viewing(
            current_user.id, current_user.is_super_admin, current_app.config["TIMEZONE"]
        )
    return viewing


def job_page_url(job_type: JobType, job_id: int | None) -> str | None:
    """The page of a run's job (None once the job was deleted), built once per request and job
    type like web.run_url: each row of a page links to its job."""
    if job_id is None:
        return None
    urls = g.setdefault("_job_page_urls", {})
    parts = urls.get(job_type.key)
    if parts is None:
        parts = urls[job_type.key] = job_type.page_url(_SENTINEL).split(str(_SENTINEL))
    head, tail = parts
    return f"{head}{job_id}{tail}"


def monitor_row(
    run: Run,
    group_name: str | None = None,
    owner_email: str | None = None,
    *,
    taken_for_owner: bool = False,
    place: tuple[int, Run | None] | None = None,
    step_of: int | None = None,
) -> MonitorRow:
    """The values of one monitor row (owner_email: the User column, shown to super admins only;
    None for others). A result downloaded by someone else than the owner (a super admin, on
    their behalf) leaves the row where it is: it waits for the owner (taken_for_owner says so).
    `place`: a queued run's (place, blocking run) from RowNames.places (else asked for here).
    `step_of`: the group run a step row is folded under (RowNames.fold)."""
    # (each value is read once: a mapped attribute read costs about as much as a dict lookup
    # through a descriptor, and 50 rows are worked out for every monitor request)
    run_id, state, control, percent = run.id, run.state, run.control, run.percent
    viewing = _viewing()
    progress, note = "state", ""
    if state.is_running:
        progress, note = _running(run)
        if control == "stop":
            note = "Stopping…"
    elif state is RunState.SCHEDULED:
        progress, note = "waiting", f"for {format_local(run.scheduled_for, viewing.timezone)}"
    elif state is RunState.QUEUED:
        progress, note = "waiting", queue_place(run, place)
    elif state is RunState.COLLECTING:  # a sent campaign counting opens and clicks: no work left
        until = _local_day(run.collect_until, viewing.timezone)
        progress, note = "collecting", f"Collecting results until {until}"
    elif state in (RunState.PAUSED, RunState.CANCELLED) and run.progress_total:
        progress, note = "waiting", f"at {percent}%"
    job_type = job_type_for(run.job_type)
    action = action_url = None
    question = ""
    if (
        not state.is_finished
        and state is not RunState.COLLECTING
        and job_type.can_stop
        and job_type.monitor_stop == "stop"
    ):
        if control == "stop" and state.is_running:
            action = "kill" if current_user.is_admin and can_kill(run) else "stopping"
            action_url = run_url("runs.kill", run_id, **{"from": "monitor"})
        else:
            action = "stop"
            action_url = run_url("runs.stop", run_id, **{"from": "monitor"})
            question = stop_question(run)
    elif state.is_finished:
        action = "dismiss"
        action_url = run_url("runs.dismiss", run_id, **{"from": "monitor"})
    draft = draft_link(run)
    job_id = run.job_id
    if step_of is not None:
        group_line: str | None = f"step {run.step}"
    else:
        group_line = f"step {run.step} in group “{group_name}”" if group_name else None
    return MonitorRow(
        run_id=run_id,
        job_id=job_id,
        job_url=job_page_url(job_type, job_id),
        label=run.label,
        job_name=run.job_name,
        state=state.value,
        owner_email=owner_email,
        group_line=group_line,
        step_of=step_of,
        has_steps=job_type.drives_chain and run.started_at is not None,
        type=job_type.label,
        started=format_local(run.started_at, viewing.timezone),
        completed=format_local(run.finished_at, viewing.timezone),
        detail_url=run_url("runs.detail", run_id),
        progress=progress,
        percent=percent,
        badge=state_badge(run),
        note=note,
        result_url=run_url("runs.result", run_id) if run.has_result else None,
        leaves_on_download=run.owner_id == viewing.viewer_id,
        taken_for_owner=taken_for_owner,
        action=action,
        action_url=action_url,
        question=question,
        draft_label=draft[0] if draft else None,
        draft_url=draft[1] if draft else None,
    )


def _running(run: Run) -> tuple[str, str]:
    """(progress, note) of a running run: its progress bar once it knows its total; before,
    what it does instead of a bare "0% 0" (extracting, starting, or how many are done)."""
    if run.progress_total:
        return "running", ""
    if run.state is RunState.INITIALIZING:
        return "starting", "Extracting…"
    return "starting", f"{run.progress_done:,} done so far" if run.progress_done else "Starting…"


def row_html(run: Run, names: RowNames, *, oob: bool = False, message: str | None = None) -> Markup:
    """The monitor row of a run (`message`: what an action just did, shown in the row)."""
    row = monitor_row(
        run,
        names.groups.get(run.id),
        names.owners.get(run.owner_id, "") if _viewing().sees_owners else None,
        taken_for_owner=run.id in names.taken,
        place=names.places.get(run.id),
        step_of=names.fold.get(run.id),
    )
    if message:  # said once, after an action: not kept
        return _render(row, oob, message)
    return _kept((row, oob), lambda: _render(row, oob, None))


@dataclass(frozen=True)
class HistoryRow:
    """What History shows for a run, as plain values (the key its HTML is kept by)."""

    run_id: int
    type: str
    job_name: str
    job_id: int | None  # the job's own number (the "Job #" column); None once it was deleted
    label: str  # "run #3", or "planned run"
    owner_email: str | None  # the User column, for super admins only
    detail_url: str
    started: str
    completed: str
    badge: Markup
    result_url: str | None
    downloaded: str  # when the result was downloaded ("" if not)
    result_deleted: str  # the day a result past its retention period was deleted ("" if not)
    kept_until: str  # the day the retention sweep deletes the result ("" if none)
    kept_until_time: str  # the same, to the minute


def _result_retention() -> timedelta:
    """How long results are kept: the account's setting, as the sweep reads it (once per request)."""
    environ = request.environ
    kept = environ.get("conveyor.result_retention")
    if kept is None:
        kept = environ["conveyor.result_retention"] = timedelta(days=AccountSettings.get().retention_days)
    return kept


def _local_day(moment: datetime | None, timezone: str) -> str:
    """'Dec 30, 2026': the day of a stored time in the account time zone ('' for none)."""
    return format_day(to_local(moment, timezone).date()) if moment is not None else ""


def history_row(run: Run, owner_email: str | None) -> HistoryRow:
    """The values of one History row: everything monitor/partials/_history_row.html shows."""
    timezone = _viewing().timezone
    has_result = run.has_result
    # the sweep (engine/retention.py) deletes a result once its run finished longer ago than this
    deleted_after = run.finished_at + _result_retention() if has_result and run.finished_at else None
    return HistoryRow(
        run_id=run.id,
        type=job_type_for(run.job_type).label,
        job_name=run.job_name,
        job_id=run.job_id,
        label=run.label,
        owner_email=owner_email,
        detail_url=run_url("runs.detail", run.id),
        started=format_local(run.started_at, timezone),
        completed=format_local(run.finished_at, timezone),
        badge=state_badge(run),
        result_url=run_url("runs.result", run.id) if has_result else None,
        downloaded=format_local(run.downloaded_at, timezone) if has_result and run.downloaded_at else "",
        result_deleted=_local_day(run.result_deleted_at, timezone) if not has_result else "",
        kept_until=_local_day(deleted_after, timezone),
        kept_until_time=format_local(deleted_after, timezone),
    )


def history_row_html(run: Run, owner_email: str | None) -> Markup:
    """The History row of a run (owner_email: for the User column of super admins, else None).
    Its HTML is kept by its HistoryRow: whatever the template shows must be in HistoryRow."""
    row = history_row(run, owner_email)
    template = current_app.jinja_env.get_template("monitor/partials/_history_row.html")
    return _kept(row, lambda: Markup(template.render(run=run, owner_email=owner_email, row=row)))


# The row cache. A page has up to 50 rows and every open monitor asks for its page or its
# refresh every 2 s, yet a row's HTML is made of its values alone (MonitorRow, HistoryRow): the
# HTML is kept by those values and served again while they stay the same. A changed run, a
# queue place that moved, Kill offered after a delay or another time zone is another value,
# so nothing is kept too long and no key is kept by hand. What it buys (2026-11-30, 2 cores,
# 1,000,050 runs): a page's 50 rows cost 1.1 ms instead of 2.6 ms (monitor) and 0.55 ms
# instead of 2.2 ms (History), in-process best of 15; in bench/monitor_bench.py the server's
# CPU per request 5.0 ms instead of 6.7 ms (monitor), 4.1 instead of 6.5 (History).
SETTLED_ROWS = 8192
_SETTLED: dict[Hashable, Markup] = {}  # row HTML by the row's values (oldest first)


def _kept(key: Hashable, render: Callable[[], Markup]) -> Markup:
    """The row HTML kept for `key` (a row's values), rendered now if it is not."""
    html = _SETTLED.get(key)
    if html is None:
        if len(_SETTLED) >= SETTLED_ROWS:
            del _SETTLED[next(iter(_SETTLED))]  # the oldest entry goes
        html = _SETTLED[key] = render()
    return html


def _render(row: MonitorRow, oob: bool, message: str | None) -> Markup:
    template = current_app.jinja_env.get_template("monitor/partials/_row.html")
    return Markup(template.render(r=row, oob=oob, message=message))
