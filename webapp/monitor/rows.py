"""One monitor row's values, worked out in Python once per row (a page has up to 50 rows and
is refreshed every 2 s, so the template only places them)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import url_for
from flask_login import current_user
from markupsafe import Markup

from webapp.engine.runs import can_kill
from webapp.engine.states import RunState
from webapp.jobtypes import REGISTRY, type_label
from webapp.models.runs import Run
from webapp.web import campaign_of, localtime, queue_place, run_url, state_badge, stop_question


@dataclass
class MonitorRow:
    """What the monitor shows for a run."""

    run: Run
    type: str
    started: str
    completed: str
    detail_url: str
    progress: str  # running, waiting or state
    percent: int
    badge: Markup
    note: str
    result_url: str | None
    action: str | None  # stop, kill, stopping, remove
    action_url: str | None
    question: str
    edit_campaign_url: str | None


def monitor_row(run: Run) -> MonitorRow:
    """The values of one monitor row."""
    state = run.state
    progress, note = "state", ""
    if state.is_running:
        progress = "running"
        note = "Stopping…" if run.control == "stop" else (
            "Extracting…" if state is RunState.INITIALIZING else "")
    elif state is RunState.SCHEDULED:
        progress, note = "waiting", f"for {localtime(run.scheduled_for)}"
    elif state is RunState.QUEUED:
        progress, note = "waiting", queue_place(run)
    elif state in (RunState.PAUSED, RunState.CANCELLED) and run.progress_total:
        progress, note = "waiting", f"at {run.percent}%"
    job_type = REGISTRY.get(run.job_type)
    action = action_url = None
    question = ""
    if not state.is_finished and state is not RunState.COLLECTING and (
            job_type is None or job_type.can_stop):
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
    campaign = campaign_of(run)
    return MonitorRow(
        run=run, type=type_label(run.job_type), started=localtime(run.started_at),
        completed=localtime(run.finished_at), detail_url=run_url("runs.detail", run.id),
        progress=progress, percent=run.percent, badge=state_badge(run), note=note,
        result_url=run_url("runs.result", run.id) if run.has_result else None,
        action=action, action_url=action_url, question=question,
        edit_campaign_url=url_for("campaigns.edit", campaign_id=campaign.id)
        if campaign is not None and campaign.status.value == "draft" else None,
    )
