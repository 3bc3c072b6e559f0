"""What a job type sees while it runs: progress, counts, checkpoint, log and stop checks."""

from __future__ import annotations

import os
import secrets
from typing import Any

from flask import current_app
from sqlalchemy import insert, select

from webapp.engine.transitions import db_now_value, log, move
from webapp.errors import RunPaused, RunStopped
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.runs import COUNT_NAMES, Run, RunRejection
from webapp.rules.states import RunState
from webapp.storage import storage_for


def new_request_id() -> str:
    """A unique, readable request id (given when extraction ends)."""
    return f"REQ-{utcnow():%Y%m%d}-{secrets.token_hex(5).upper()}"


class RunContext:
    """The handle a job type's `run` works through; it never sees a request."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.config = current_app.config
        self.storage = storage_for(current_app)
        self._rejections: list[dict[str, Any]] = []

    @property
    def params(self) -> dict[str, Any]:
        return self.run.job.params if self.run.job else {}

    @property
    def checkpoint(self) -> dict[str, Any]:
        return dict(self.run.checkpoint or {})

    def log(self, message: str, *, level: str = "info") -> None:
        """Add a line to the run's log."""
        log(self.run, message, level=level)

    def reject(self, line: int, reason: str) -> None:
        """Record a rejected record with its line number; written with the next batch."""
        self._rejections.append({"run_id": self.run.id, "line": line, "reason": reason})

    def begin_processing(self, total: int | None) -> None:
        """Extraction is over: give the run its request id and its total, and start processing."""
        self.check_control()
        if self.run.state is RunState.INITIALIZING:
            move(self.run, RunState.PROCESSING)
        if not self.run.request_id:
            self.run.request_id = new_request_id()
            self.log(f"Extraction finished: {total or 0:,} records. Request id {self.run.request_id}.")
        self.run.progress_total = total
        db.session.commit()

    def commit_batch(self, *, done: int, checkpoint: dict[str, Any] | None = None, **counts: int) -> None:
        """Commit a batch: progress, counts and checkpoint in the same transaction as its data."""
        run = self.run
        run.progress_done = done
        for name, value in counts.items():
            if name not in COUNT_NAMES:
                raise ValueError(f"unknown count {name!r}")
            setattr(run, name, getattr(run, name) + value)
        if self._rejections:
            db.session.execute(insert(RunRejection), self._rejections)
            self._rejections = []
        if checkpoint is not None:
            run.checkpoint = checkpoint
        run.heartbeat_at = db_now_value()  # the deployment's one clock, as the heartbeat thread writes
        db.session.commit()
        self.check_control()

    def check_control(self) -> None:
        """Raise RunStopped/RunPaused if the web asked for it since the last batch."""
        control = db.session.execute(select(Run.control).where(Run.id == self.run.id)).scalar()
        if control == "stop":
            raise RunStopped
        if control == "pause":
            raise RunPaused

    def result_key(self, filename: str) -> str:
        """The storage key of this run's result file `filename` (results/run-12-export.csv)."""
        return f"results/run-{self.run.id}-{filename}"

    def scratch_path(self, filename: str) -> str:
        """Where this machine writes the result `filename` until it is finished: a .part file in
        the local results folder (with the local storage, the file its key ends in `.part`)."""
        return os.path.join(self.config["RESULTS_DIR"], f"run-{self.run.id}-{filename}.part")

    def keep_result(self, filename: str, name: str) -> None:
        """Move the finished scratch file into storage and attach it to the run, downloaded as
        `name` (Run.result_path holds its key)."""
        key = self.result_key(filename)
        self.storage.store(key, self.scratch_path(filename))
        self.set_result(key, name)

    def set_result(self, key: str, name: str) -> None:
        """Attach a stored result file to the run."""
        self.run.result_path = key
        self.run.result_name = name
