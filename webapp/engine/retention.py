"""Deletes result files past the account's retention period; History says so."""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from sqlalchemy import select

from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.runs import Run
from webapp.models.settings import AccountSettings

log = logging.getLogger("conveyor.scheduler")


def sweep_results() -> int:
    """Delete expired result files; return how many were deleted (a file that cannot be removed
    is logged and tried again at the next sweep)."""
    days = AccountSettings.get().retention_days
    cutoff = utcnow() - timedelta(days=days)
    expired = db.session.execute(
        select(Run).where(Run.result_path.is_not(None), Run.result_deleted_at.is_(None),
                          Run.finished_at < cutoff)
    ).scalars().all()
    deleted = 0
    for run in expired:
        try:
            os.remove(run.result_path)
        except FileNotFoundError:
            pass
        except OSError:
            log.exception("the result file of run %s could not be deleted", run.id)
            continue
        run.result_deleted_at = utcnow()
        run.in_monitor = False
        deleted += 1
    db.session.commit()
    return deleted
