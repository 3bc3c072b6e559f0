"""The monitor and History by the API, with the screens' filters and cursor pagination."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from flask import current_app, url_for
from flask_login import current_user
from pydantic import Field
from sqlalchemy import Row

from webapp.api.v1.answers import RUN_COLUMNS, run_fields, runs_out
from webapp.api.v1.core import fail
from webapp.api.v1.schemas import Closed, MonitorPage, RunPage
from webapp.api.v1.spec import operation
from webapp.jobtypes import REGISTRY
from webapp.models.runs import Run
from webapp.monitor.queries import HistoryFilter, history_page, monitor_from
from webapp.paging import Keyset
from webapp.permissions import history_user_or_404
from webapp.request_args import as_int, choice_arg, int_arg
from webapp.rules.states import RunState

TAG = "Monitor and History"
MONITOR_COLUMNS = (*RUN_COLUMNS, Run.sort_at)  # and where the next page starts
STATES = frozenset(state.value for state in RunState)


class HistoryQuery(Closed):
    """History's filters and where a page starts."""

    type: str | None = Field(default=None, description="a job type's key")
    state: str | None = Field(default=None, description="a run state, e.g. failed")
    user: int | None = Field(default=None, description="a user's id (super admins only)")
    before: int | None = Field(default=None, description="the page after (older than) this run id")
    after: int | None = Field(default=None, description="the page before (newer than) this run id")


class MonitorQuery(Closed):
    """Where a page of the monitor starts."""

    cursor: str | None = Field(default=None, description="the `next` address's cursor")


@operation("GET", "/history", tag=TAG, answers={200: RunPage}, errors=(400, 404), query=HistoryQuery)
def history(query: HistoryQuery):
    """History: every run that happened, newest first, 50 a page.

    Follow `next` (`before` a run id) and `previous` (`after` one). Filters: `type` (a job
    type's key), `state`, and a super admin's `user` (an id)."""
    filters = HistoryFilter(
        job_type=choice_arg("type", REGISTRY),
        state=choice_arg("state", STATES),
        user_id=history_user_or_404(int_arg("user")),
    )
    page = history_page(current_user, filters, Keyset.from_request(current_app.config["PAGE_SIZE"]))
    kept: dict[str, Any] = {
        name: value
        for name, value in (("type", filters.job_type), ("state", filters.state), ("user", filters.user_id))
        if value not in (None, "")
    }

    def link(args: dict | None) -> str | None:
        return url_for("api_v1.history", **kept, **args) if args else None

    return RunPage.model_validate(
        {"runs": runs_out(page.items), "next": link(page.next_args), "previous": link(page.prev_args)}
    )


def _cursor_of(run: Row) -> str:
    raw = f"{run.sort_at.isoformat()}|{run.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(raw: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        moment, _, number = text.partition("|")
        at, run_id = datetime.fromisoformat(moment), as_int(number, minimum=1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        at, run_id = None, None
    if at is None or at.tzinfo is not None or run_id is None:  # (sort times are naive UTC)
        raise fail(400, "cursor is not one this API gave: follow the `next` address")
    return at, run_id


@operation("GET", "/monitor", tag=TAG, answers={200: MonitorPage}, errors=(400,), query=MonitorQuery)
def monitor(query: MonitorQuery):
    """The monitor's rows: runs waiting, running, and finished ones not yet dismissed.

    Newest first, 50 a page, with how many there are: follow `next` (an opaque `cursor`),
    which does not shift when new runs arrive while you page."""
    after = _read_cursor(query.cursor[:200]) if query.cursor else None
    rows, total, more = monitor_from(current_user, after, current_app.config["PAGE_SIZE"], MONITOR_COLUMNS)
    following = url_for("api_v1.monitor", cursor=_cursor_of(rows[-1])) if more and rows else None
    runs = [run_fields(row, row.owner) for row in rows]
    return MonitorPage.model_validate({"runs": runs, "total": total, "next": following, "previous": None})
