"""The scheduler process's loop: rq-scheduler's due jobs, the reconciler, the retention sweep and
group expiry."""

from __future__ import annotations

import logging
import time

from flask import current_app

from webapp.engine import queueing
from webapp.engine.chains import sweep_expired_groups
from webapp.engine.collecting import finish_collecting
from webapp.engine.firing import fire, fire_overdue
from webapp.engine.followups import notice_long_runs
from webapp.engine.planner import plan_due
from webapp.engine.reconciler import reconcile
from webapp.engine.retention import sweep_results
from webapp.extensions import db

log = logging.getLogger("conveyor.scheduler")
SWEEP_EVERY = 3600.0


def loop(*, once: bool = False) -> None:
    """Run until stopped: every second move due timed jobs; reconcile and sweep periodically."""
    scheduler = queueing.scheduler(fire)
    every = current_app.config["RECONCILE_EVERY_SECONDS"]
    next_reconcile = next_sweep = 0.0
    while True:
        now = time.monotonic()
        try:
            if scheduler.acquire_lock():  # one scheduler process fires at a time
                try:
                    scheduler.enqueue_jobs()
                finally:
                    scheduler.remove_lock()
            finish_collecting()
            plan_due()
            if now >= next_reconcile:
                fire_overdue()
                notice_long_runs()
                outcome = reconcile()
                if any(outcome.values()):
                    log.warning("reconciled runs: %s", outcome)
                next_reconcile = now + every
            if now >= next_sweep:
                deleted = sweep_results()
                if deleted:
                    log.info("deleted %d expired result files", deleted)
                expired = sweep_expired_groups()
                if any(expired.values()):
                    log.info("group expiry: %s", expired)
                next_sweep = now + SWEEP_EVERY
        except Exception:
            db.session.rollback()
            log.exception("scheduler pass failed; trying again")
        finally:
            db.session.remove()
        if once:
            return
        time.sleep(max(0.05, 1.0 - (time.monotonic() - now)))  # one pass a second
