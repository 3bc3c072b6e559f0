"""The scheduler process's loop: rq-scheduler's due jobs, the reconciler, the retention sweep and
group expiry. Every duty runs on its own: one that raises is logged and rolled back, and the
others still run, on this pass and every later one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import current_app

from webapp import metrics
from webapp.engine import queueing, retention
from webapp.engine.chains import sweep_expired_groups
from webapp.engine.collecting import finish_collecting
from webapp.engine.firing import fire, fire_overdue
from webapp.engine.followups import notice_long_runs
from webapp.engine.outage import clear_if_back
from webapp.engine.planner import plan_due
from webapp.engine.reconciler import reconcile
from webapp.engine.retention import sweep_audit, sweep_results
from webapp.extensions import db

log = logging.getLogger("conveyor.scheduler")
SWEEP_EVERY = 3600.0


def loop(*, once: bool = False) -> None:
    """Run until stopped: every second move due timed jobs; reconcile and sweep periodically.
    Only the scheduler holding the lease acts; another one started elsewhere stands by."""
    lease = queueing.SchedulerLease()
    try:
        _loop(lease, once)
    finally:
        lease.release()


def _loop(lease: queueing.SchedulerLease, once: bool) -> None:
    scheduler = queueing.scheduler(fire)
    every = current_app.config["RECONCILE_EVERY_SECONDS"]
    next_reconcile = next_sweep = 0.0
    standing_by = False
    while True:
        now = time.monotonic()
        if not lease.hold():
            if not standing_by:
                log.warning("another scheduler is active (%s); this one stands by", _holder(lease))
            standing_by = True
            if once:
                return
            time.sleep(1.0)
            continue
        if standing_by:
            log.warning("this scheduler is now the active one")
            standing_by = False
        run_duty("heartbeat", _beat)
        run_duty("firing", lambda: _fire_due(scheduler))
        run_duty("collecting", finish_collecting)
        run_duty("planning", plan_due)
        if now >= next_reconcile:
            next_reconcile = now + every
            run_duty("overdue runs", fire_overdue)
            run_duty("long runs", notice_long_runs)
            run_duty("reconciler", _reconcile)
            run_duty("queue outage", clear_if_back)
        if now >= next_sweep:
            next_sweep = now + SWEEP_EVERY
            run_duty("retention", _sweep_results)
            run_duty("audit retention", _sweep_audit)
            run_duty("log retention", lambda: _swept("run logs", retention.sweep_logs()))
            run_duty("upload retention", lambda: _swept("uploads", retention.sweep_uploads()))
            run_duty("outbox retention", lambda: _swept("outbox messages", retention.sweep_outbox()))
            run_duty(
                "partial results", lambda: _swept("partial result files", retention.sweep_partial_results())
            )
            run_duty("group expiry", _expire_groups)
        db.session.remove()
        if once:
            return
        time.sleep(max(0.05, 1.0 - (time.monotonic() - now)))  # one pass a second


_waiting_for_queue: set[str] = set()  # duties that found the job queue unreachable


def _holder(lease: queueing.SchedulerLease) -> str:
    try:
        return lease.holder() or "unknown"
    except queueing.REDIS_DOWN:
        return "unknown"


def run_duty(name: str, duty: Callable[[], object]) -> bool:
    """Run one duty of the pass; if it raises, roll back, log it and carry on (False). A duty
    that cannot reach the job queue says so once per outage, not with a traceback a second."""
    try:
        duty()
    except Exception as problem:
        try:
            db.session.rollback()
        except Exception:  # the connection itself is gone: the next duty gets a fresh one
            db.session.remove()
        if isinstance(problem, queueing.REDIS_DOWN):
            if name not in _waiting_for_queue:
                _waiting_for_queue.add(name)
                log.warning("scheduler duty %r waits: job queue unreachable (%s)", name, problem)
            return False
        log.exception("scheduler duty %r failed; the other duties carry on", name)
        return False
    if name in _waiting_for_queue:
        _waiting_for_queue.discard(name)
        log.warning("scheduler duty %r: job queue reachable again", name)
    return True


def _beat(lag: float | None = None) -> None:
    """The scheduler is alive (/healthz reads the age of its last pass), with its lag if known."""
    metrics.scheduler_passed(queueing.redis_connection(), current_app.config["QUEUE_NAME"], lag)


def _fire_due(scheduler: queueing.FiringScheduler) -> None:
    """Put the timed runs that came due onto the queue (one scheduler process at a time), and
    record how late the oldest of them was (the scheduler's lag)."""
    if scheduler.acquire_lock():
        try:
            lag = scheduler.lateness()
            scheduler.enqueue_jobs()
        finally:
            scheduler.remove_lock()
        _beat(lag)


def _reconcile() -> None:
    """Fail runs whose worker died; re-dispatch queued runs that lost their job."""
    outcome = reconcile()
    if any(outcome.values()):
        log.warning("reconciled runs: %s", outcome)


def _sweep_results() -> None:
    """Delete result files past the retention period."""
    deleted = sweep_results()
    if deleted:
        log.info("deleted %d expired result files", deleted)


def _swept(what: str, deleted: int) -> None:
    """Log what a retention sweep deleted."""
    if deleted:
        log.info("retention: deleted %d %s", deleted, what)


def _sweep_audit() -> None:
    """Delete audit entries past the audit retention period."""
    deleted = sweep_audit()
    if deleted:
        log.info("deleted %d audit entries past their retention", deleted)


def _expire_groups() -> None:
    """End groups past their expiry date."""
    expired = sweep_expired_groups()
    if any(expired.values()):
        log.info("group expiry: %s", expired)
