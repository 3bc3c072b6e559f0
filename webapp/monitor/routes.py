"""Monitor page, its polled refresh, and History."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from webapp import audit
from webapp.engine import runs as engine
from webapp.extensions import db
from webapp.jobtypes import REGISTRY
from webapp.models.runs import Run
from webapp.models.users import User
from webapp.monitor.queries import (
    POLLED,
    HistoryFilter,
    folded_steps,
    history_count,
    history_page,
    monitor_page,
    new_monitor_runs,
    paused_schedules,
    row_names,
    runs_by_id,
)
from webapp.monitor.rows import history_row_html, row_html
from webapp.paging import Keyset
from webapp.permissions import history_user_or_404, job_or_404
from webapp.request_args import as_int, choice_arg, ids_arg, int_arg, page_arg
from webapp.rules.clock import plural
from webapp.rules.states import RunState
from webapp.web import is_htmx

bp = Blueprint("monitor", __name__)
STATES = frozenset(state.value for state in RunState)


@bp.record_once
def _row_helpers(state) -> None:
    """Every page that lists runs (monitor, History, a run's row after an action) renders its
    rows with these; a job's page links to its runs in History with their count."""
    state.app.jinja_env.globals.update(
        row_html=row_html, history_row_html=history_row_html, history_count=_history_count
    )


def _history_count(job_id: int) -> int:
    """How many of a job's runs History shows the current user (the job page's link)."""
    return history_count(current_user, job_id)


@bp.route("/")
@login_required
def index():
    """The job monitor: active, pending and not-yet-downloaded runs."""
    return render_template(
        "monitor/index.html", paused=paused_schedules(current_user), **_monitor_table(page_arg())
    )


def _monitor_table(number: int) -> dict:
    """What the monitor's table shows for page `number`: its top-level rows, the step rows
    folded under each group run's row, their names, and what the poller asks for."""
    page = monitor_page(current_user, number, current_app.config["PAGE_SIZE"])
    runs = page.items
    steps = folded_steps(current_user, runs)
    shown = [*runs, *(step for folded in steps.values() for step in folded)]
    return {
        "runs": runs,
        "steps": steps,
        "page": page,
        "names": row_names(current_user, shown),
        "finished": any(run.state.is_finished for run in shown),
        "poll_ids": [r.id for r in shown if r.state in POLLED],
        "after": max((r.id for r in shown), default=0),
    }


@bp.route("/monitor/updates")
@login_required
def updates():
    """The rows still running, re-rendered out of band, plus runs that joined since (`ids`
    the viewer may not see are dropped, never rendered: runs_by_id). A new step run of a group
    run on the page goes into that row's fold; one of a group run on another page shows there."""
    ids = ids_arg("ids", limit=500)
    after = int_arg("after", 0) or 0
    changed = runs_by_id(current_user, ids)
    fresh = new_monitor_runs(current_user, after)
    on_page = {r.id for r in changed}
    names = row_names(current_user, [*changed, *fresh], on_page=on_page | {r.id for r in fresh})
    top: list[Run] = []  # rows of their own, at the top of the table
    under: dict[int, list[Run]] = {}  # step rows by the group run they fold under
    for run in fresh:
        group = names.fold.get(run.id)
        if group is None:
            top.append(run)
        elif group in on_page or any(r.id == group for r in top):
            under.setdefault(group, []).append(run)
        # (else its group run's row is on another page: it shows there)
    joined = [*top, *(step for folded in under.values() for step in folded)]
    still = [r.id for r in changed if r.state in POLLED]
    still += [r.id for r in joined if r.state in POLLED and r.id not in still]
    return render_template(
        "monitor/partials/_updates.html",
        changed=changed,
        top=top,
        under=under,
        on_page=on_page,
        poll_ids=still,
        names=names,
        finished=any(run.state.is_finished for run in changed),
        after=max([after, *(r.id for r in fresh)]),
    )


@bp.route("/monitor/dismiss-finished", methods=["POST"])
@login_required
def dismiss_finished():
    """Dismiss all finished: take every finished row the viewer sees (the runs its rows post)
    off the monitor in one UPDATE; they stay in History. A plain user's UPDATE touches their
    own runs only (another user's ids posted by hand change nothing). htmx gets the table
    again; without JavaScript, back to the monitor."""
    ids = [number for raw in request.form.getlist("run")[:500] if (number := as_int(raw)) is not None]
    left = engine.dismiss_finished(ids, None if current_user.is_super_admin else current_user.id)
    for run in left:
        audit.record(
            "run.dismissed",
            run,
            kind="run",
            detail=f"Run #{run.number}: Dismiss all finished took it off the monitor; it stays in History.",
            commit=False,
        )
    db.session.commit()
    stay = "it stays" if len(left) == 1 else "they stay"
    message = (
        f"{plural(len(left), 'finished run')} dismissed; {stay} in History."
        if left
        else "Nothing to dismiss."
    )
    if is_htmx():
        return render_template("monitor/partials/_table.html", message=message, **_monitor_table(page_arg()))
    flash(message, "info")
    return redirect(url_for("monitor.index", page=page_arg()))


@bp.route("/history")
@login_required
def history():
    """Every run, newest first, filterable, a page at a time (`user`: a super admin's filter;
    anyone else may name only themselves, see permissions.history_user_or_404; `job`: one job's
    runs, a job the viewer may see, else a 404)."""
    job_id = int_arg("job")
    job = job_or_404(job_id) if job_id is not None else None
    filters = HistoryFilter(
        job_type=choice_arg("type", REGISTRY),
        state=choice_arg("state", STATES),
        user_id=history_user_or_404(int_arg("user")),
        job_id=job_id,
    )
    page = history_page(current_user, filters, Keyset.from_request(current_app.config["PAGE_SIZE"]))
    users = (
        db.session.execute(select(User.id, User.email).order_by(User.email)).all()
        if current_user.is_super_admin
        else []
    )
    return render_template(
        "monitor/history.html",
        runs=page.items,
        page=page,
        filters=filters,
        users=users,
        owner_emails=dict(users),
        job=job,
    )
