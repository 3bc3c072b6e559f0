"""Deletes what is past the account's retention period — result files (History says so), run
logs, local-outbox messages, audit entries (past their own setting) — and uploads no job
needs: never mapped within UPLOAD_TTL_HOURS, or the file of a deleted job. Files are deleted
through the storage, wherever the machine that wrote them is. Each sweep stands alone, so one
that fails leaves the others to run."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, delete, insert, or_, select

from webapp.extensions import db
from webapp.models.audit import AuditEntry
from webapp.models.base import utcnow
from webapp.models.jobs import Job
from webapp.models.runs import Run, RunLogLine
from webapp.models.settings import AccountSettings
from webapp.rules.states import ACTIVE, RunState
from webapp.storage import Entry, Storage, current_storage, located

log = logging.getLogger("conveyor.scheduler")


def sweep_results() -> int:
    """Delete expired result files; return how many were deleted. A run is marked deleted only
    once its file is (or was already) gone: one that cannot be deleted is logged and tried
    again at the next sweep."""
    days = AccountSettings.get().retention_days
    cutoff = utcnow() - timedelta(days=days)
    expired = (
        db.session.execute(
            select(Run).where(
                Run.result_path.is_not(None), Run.result_deleted_at.is_(None), Run.finished_at < cutoff
            )
        )
        .scalars()
        .all()
    )
    storage, deleted = current_storage(), 0
    for run in expired:
        assert run.result_path is not None  # the query keeps runs with a result file
        if not _remove(*located(storage, run.result_path)):
            continue
        run.result_deleted_at = utcnow()
        run.in_monitor = False
        deleted += 1
    db.session.commit()
    return deleted


LOG_DELETED = "Log deleted after the retention period."
LOG_BATCH = 500  # runs whose log lines one transaction deletes
_PARTIAL_RESULT = re.compile(r"run-(\d+)-.*\.part$")


def _retention_days() -> int:
    return AccountSettings.get().retention_days


def sweep_logs() -> int:
    """Replace the log of every run that finished before the retention period with one line
    saying so (the run, its counts and its rejected lines stay); return how many runs."""
    cutoff = utcnow() - timedelta(days=_retention_days())
    swept = 0
    while True:
        run_ids = (
            db.session.execute(
                select(RunLogLine.run_id)
                .join(Run, Run.id == RunLogLine.run_id)
                .where(Run.finished_at < cutoff, RunLogLine.message != LOG_DELETED)
                .distinct()
                .limit(LOG_BATCH)
            )
            .scalars()
            .all()
        )
        if not run_ids:
            return swept
        db.session.execute(delete(RunLogLine).where(RunLogLine.run_id.in_(run_ids)))
        db.session.execute(
            insert(RunLogLine),
            [
                {"run_id": run_id, "at": utcnow(), "level": "info", "message": LOG_DELETED}
                for run_id in run_ids
            ],
        )
        db.session.commit()
        swept += len(run_ids)


def sweep_outbox() -> int:
    """Delete local-outbox messages (and half-written ones) older than the retention period;
    return how many files."""
    cutoff = time.time() - _retention_days() * 86400
    storage = current_storage()
    return sum(
        _remove(storage, entry.key)
        for entry in _older_than(storage.entries("outbox"), cutoff)
        if entry.name.endswith((".eml", ".eml.part"))
    )


def sweep_partial_results() -> int:
    """Delete half-written result files older than the retention period that no run can continue
    (their run ended other than failed, or is gone); return how many."""
    cutoff = time.time() - _retention_days() * 86400
    storage = current_storage()
    old = {
        entry.key: int(match.group(1))
        for entry in _older_than(storage.entries("results"), cutoff)
        if (match := _PARTIAL_RESULT.match(entry.name))
    }
    if not old:
        return 0
    resumable = set(
        db.session.execute(  # a failed run's retry continues its partial file
            select(Run.id).where(Run.id.in_(set(old.values())), Run.state.in_([*ACTIVE, RunState.FAILED]))
        ).scalars()
    )
    return sum(_remove(storage, key) for key, run_id in old.items() if run_id not in resumable)


def upload_files_in_use() -> set[str]:
    """The names of the upload files a job still reads: those of jobs not deleted, and of
    deleted jobs with a run that has not finished (a paused import resumes from its file)."""
    unfinished = select(Run.job_id).where(Run.state.in_(ACTIVE), Run.job_id.is_not(None))
    paths = db.session.execute(
        select(Job.params["path"].as_string()).where(or_(Job.active.is_(True), Job.id.in_(unfinished)))
    ).scalars()
    return {os.path.basename(path) for path in paths if path}


def sweep_uploads() -> int:
    """Delete every upload whose files are all older than UPLOAD_TTL_HOURS and that no job
    reads: never mapped (its pending record goes first, so the mapping step never offers a
    missing file), or the file of a deleted job; return how many uploads."""
    storage = current_storage()
    cutoff = time.time() - current_app.config["UPLOAD_TTL_HOURS"] * 3600
    uploads: dict[str, list[str]] = {}
    young: set[str] = set()
    for entry in storage.entries("uploads"):
        token = entry.name.split(".", 1)[0]  # token.csv, token.csv.part, token.json
        uploads.setdefault(token, []).append(entry.key)
        if entry.modified >= cutoff:
            young.add(token)
    in_use = upload_files_in_use()
    deleted = 0
    for token, keys in uploads.items():
        if token in young or f"{token}.csv" in in_use:
            continue
        keys.sort(key=lambda key: not key.endswith(".json"))  # the record first
        if all([_remove(storage, key) for key in keys]):
            deleted += 1
    return deleted


def _older_than(entries: Iterable[Entry], cutoff: float) -> list[Entry]:
    """The stored files last written before `cutoff` (a Unix time)."""
    return [entry for entry in entries if entry.modified < cutoff]


def _remove(storage: Storage, key: str) -> bool:
    """Delete one file; False if it could not be (logged, and tried again at the next sweep)."""
    try:
        storage.delete(key)
    except OSError:
        log.exception("%s could not be deleted", storage.where(key))
        return False
    return True


def sweep_audit() -> int:
    """Delete audit entries older than the account's audit retention; return how many."""
    cutoff = utcnow() - timedelta(days=AccountSettings.get().audit_retention_days)
    # a DELETE's result is a CursorResult (Session.execute is typed as returning a Result)
    deleted = cast(
        CursorResult[Any], db.session.execute(delete(AuditEntry).where(AuditEntry.at < cutoff))
    ).rowcount
    db.session.commit()
    return deleted or 0
