"""What happens after a run ends: the job's notification emails, sent by a small follow-up job."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, url_for
from sqlalchemy import select

from webapp.engine import handoff, queueing
from webapp.engine.durations import typical_run_seconds
from webapp.extensions import db
from webapp.jobtypes import job_type_for
from webapp.mailing.notifications import notify
from webapp.models.base import utcnow
from webapp.models.runs import Run
from webapp.rules.clock import format_duration, format_local, sentence
from webapp.rules.states import RunState

NOTIFY_FUNCTION = "webapp.engine.followups.send_run_notification"


def wants_notification(run: Run, reason: str) -> bool:
    """Whether the run's job asked to be told about this (ended, failed, missed, long).
    A group step's run never is: the group is what the user runs and schedules, and its own
    notification goes out once, after the whole group run (chains.after_group_run). So a step
    stays silent when it ends or fails; it is never "missed" (it is not scheduled itself); and
    a step running long is left to the group too, rather than one email per slow step."""
    if run.parent_run_id is not None:
        return False
    job = run.job
    if job is None or not job.notify_list:
        return False
    if reason == "missed":
        return job.notify_missed
    if reason == "long":
        return job.notify_long
    if job.notify_on == "every":
        return True
    return job.notify_on == "failure" and run.state is RunState.FAILED


def after_run_ended(run: Run, reason: str = "ended", *, chain_continued: bool = False) -> None:
    """Continue the chain of a group step (unless the step already handed over to the next:
    chain_continued); queue the notification follow-up when the job wants one (never raises)."""
    if run.parent_run_id and reason == "ended" and not chain_continued:
        try:
            handoff.step_ended(run)
        except Exception:
            db.session.rollback()
            current_app.logger.exception("the chain after step run %s could not continue", run.id)
    try:
        if wants_notification(run, reason):
            queueing.enqueue_followup(NOTIFY_FUNCTION, run.id, reason)
    except Exception:
        current_app.logger.exception("could not queue the notification for run %s", run.id)


def send_run_notification(run_id: int, reason: str = "ended") -> int:
    """The follow-up job: email the job's addresses about run `run_id`."""
    run = db.session.get(Run, run_id)
    if run is None or run.job is None:
        return 0
    tz = current_app.config["TIMEZONE"]
    with current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
        link = url_for("runs.detail", run_id=run.id, _external=True)
    what = {"missed": "was missed", "long": "is running much longer than usual"}.get(
        reason, f"ended: {run.state.value}"
    )
    job_type = job_type_for(run.job_type)
    counts = ", ".join(f"{value:,} {label.lower()}" for label, value in job_type.counts(run)) or "—"
    lines = [
        f"{job_type.label} “{run.job_name}”, {run.label} {what}.",
        "",
        f"State: {run.state.value}",
        f"Started: {format_local(run.started_at, tz) or '—'}",
        f"Finished: {format_local(run.finished_at, tz) or '—'}",
        f"Run time: {format_duration(run.duration_seconds) or '—'}",
        f"Counts: {counts}",
    ]
    if run.error:
        lines.append(f"Reason: {sentence(run.error)}")
    lines += ["", f"Details: {link}"]
    subject = f"[Conveyor] {run.job_name} {run.short_label} {what}"
    sent = 0
    for address in run.job.notify_list:
        sent += int(notify(address, subject, "\n".join(lines) + "\n"))
    return sent


def notice_long_runs() -> int:
    """Runs going over twice their job's median run time: notify once (scheduler loop)."""
    running = (
        db.session.execute(
            select(Run).where(
                Run.state.in_([RunState.INITIALIZING, RunState.PROCESSING]),
                Run.long_notified.is_(False),
                Run.started_at.is_not(None),
            )
        )
        .scalars()
        .all()
    )
    noticed = 0
    for run in running:
        if run.job_id is None or run.job is None or not run.job.notify_long:
            continue
        typical = typical_run_seconds(run.job_id)
        # (the query keeps started runs, but a commit below expires them: they are read again)
        if typical is None or run.started_at is None:
            continue
        if utcnow() - run.started_at > timedelta(seconds=2 * typical):
            run.long_notified = True
            db.session.commit()
            after_run_ended(run, "long")
            noticed += 1
    return noticed
