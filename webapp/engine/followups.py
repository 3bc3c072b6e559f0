"""What happens after a run ends: the job's notification emails, sent by a small follow-up job."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app, has_app_context, url_for
from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from webapp import metrics
from webapp.engine import handoff, queueing
from webapp.engine.durations import typical_run_seconds
from webapp.engine.transitions import ENDED
from webapp.extensions import db
from webapp.jobtypes import job_type_for
from webapp.mailing.notifications import notify
from webapp.models.base import utcnow
from webapp.models.runs import Run
from webapp.rules.clock import format_duration, format_local, sentence
from webapp.rules.states import RunState

NOTIFY_FUNCTION = "webapp.engine.followups.send_run_notification"
COUNTING = "conveyor.counting"  # session.info: the ended runs as counted, until the commit is done
log = logging.getLogger("conveyor.metrics")


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


def count_ended_runs() -> None:
    """Count every run whose work ended, deployment-wide, for /metrics: transitions.move notes
    each end, and once its transaction commits the counts go to Redis (webapp/metrics.py); an
    end rolled back (the worker's rehearsal of a hand-over) is never counted. Called once by
    create_app (listening twice would count twice)."""
    if not event.contains(Session, "before_commit", _note_ended):
        event.listen(Session, "before_commit", _note_ended)
        event.listen(Session, "after_commit", _send_ended)
        event.listen(Session, "after_soft_rollback", _forget_ended)
        event.listen(Session, "after_transaction_end", _transaction_ended)


def ended_run(run: Run) -> metrics.EndedRun:
    """What is counted of a run whose work ended: its type, state and run time; the records it
    processed (a data run) or the messages it sent (an email run: its `created` count)."""
    job_type = job_type_for(run.job_type)
    started, ended = run.started_at, run.finished_at or utcnow()  # (collecting: not finished)
    progress = 0 if job_type.drives_chain else run.progress_done  # a group's progress is steps
    return metrics.EndedRun(
        run_id=run.id,
        job_type=run.job_type,
        state=run.state.value,
        seconds=(ended - started).total_seconds() if started is not None else None,
        rows=progress if job_type.lane != "email" else 0,
        sent=run.created if job_type.lane == "email" else 0,
        may_be_retried=run.state is RunState.FAILED,
    )


def _note_ended(session: Session) -> None:
    """Before the commit: what is counted of each run that ended (read while it is loaded)."""
    runs = session.info.pop(ENDED, None)
    if runs:
        session.info[COUNTING] = [ended_run(run) for run in dict.fromkeys(runs)]


def _send_ended(session: Session) -> None:
    """After the commit: the counts go to Redis; never raises (an unreachable queue loses them)."""
    ended = session.info.pop(COUNTING, None)
    if not ended or not has_app_context():
        return
    try:
        if queueing.queue_reachable():
            metrics.count_ended(queueing.redis_connection(), current_app.config["QUEUE_NAME"], ended)
    except Exception:
        log.warning("could not count %d ended runs for /metrics", len(ended), exc_info=True)


def _forget_ended(session: Session, _transaction: SessionTransaction) -> None:
    """A rollback (of a savepoint too): the ends noted in it did not happen."""
    session.info.pop(ENDED, None)
    session.info.pop(COUNTING, None)


def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    """The session's transaction ended however it did (after its commit was counted, or
    closed without one): nothing noted in it is left for the next."""
    if transaction.parent is None:
        _forget_ended(session, transaction)
