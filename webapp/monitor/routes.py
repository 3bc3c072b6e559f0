"""Monitor page, its polled refresh, and History."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from webapp.extensions import db
from webapp.jobtypes import REGISTRY
from webapp.models.users import User
from webapp.monitor.queries import (
    POLLED,
    HistoryFilter,
    history_page,
    monitor_page,
    new_monitor_runs,
    paused_schedules,
    row_names,
    runs_by_id,
)
from webapp.monitor.rows import history_row_html, row_html
from webapp.paging import Keyset
from webapp.permissions import history_user_or_404
from webapp.request_args import choice_arg, ids_arg, int_arg, page_arg
from webapp.rules.states import RunState

bp = Blueprint("monitor", __name__)
STATES = frozenset(state.value for state in RunState)


@bp.record_once
def _row_helpers(state) -> None:
    """Every page that lists runs (monitor, History, a run's row after an action) renders its
    rows with these."""
    state.app.jinja_env.globals.update(row_html=row_html, history_row_html=history_row_html)


@bp.route("/")
@login_required
def index():
    """The job monitor: active, pending and not-yet-downloaded runs."""
    page = monitor_page(current_user, page_arg(), current_app.config["PAGE_SIZE"])
    runs = page.items
    return render_template(
        "monitor/index.html",
        runs=runs,
        page=page,
        paused=paused_schedules(current_user),
        names=row_names(current_user, runs),
        poll_ids=[r.id for r in runs if r.state in POLLED],
        after=max((r.id for r in runs), default=0),
    )


@bp.route("/monitor/updates")
@login_required
def updates():
    """The rows still running, re-rendered out of band, plus runs that joined since (`ids`
    the viewer may not see are dropped, never rendered: runs_by_id)."""
    ids = ids_arg("ids", limit=500)
    after = int_arg("after", 0) or 0
    changed = runs_by_id(current_user, ids)
    fresh = new_monitor_runs(current_user, after)
    still = [r.id for r in changed if r.state in POLLED]
    still += [r.id for r in fresh if r.state in POLLED and r.id not in still]
    return render_template(
        "monitor/partials/_updates.html",
        changed=changed,
        fresh=fresh,
        poll_ids=still,
        names=row_names(current_user, [*changed, *fresh]),
        after=max([after, *(r.id for r in fresh)]),
    )


@bp.route("/history")
@login_required
def history():
    """Every run, newest first, filterable, a page at a time (`user`: a super admin's filter;
    anyone else may name only themselves, see permissions.history_user_or_404)."""
    filters = HistoryFilter(
        job_type=choice_arg("type", REGISTRY),
        state=choice_arg("state", STATES),
        user_id=history_user_or_404(int_arg("user")),
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
    )
