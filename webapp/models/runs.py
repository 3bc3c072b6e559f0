"""Runs: one execution of a job; the source of truth for its state (Redis only queues it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import Model
from webapp.models.base import utcnow
from webapp.rules.states import RunState

COUNT_NAMES = ("checked", "created", "updated", "unchanged", "skipped", "rejected")


class Run(Model):
    """One execution of a job, with its progress, counts, result file and log."""

    __table_args__ = (
        UniqueConstraint("job_id", "number", name="uq_run_job_number"),
        # one run per planned occurrence, whatever number of schedulers are running
        UniqueConstraint("job_id", "planned_for", name="uq_run_job_planned_for"),
        # the monitor: its rows by start time (queued ones by when they were asked for)
        Index("ix_run_monitor_order", "in_monitor", "sort_at", "id"),
        Index("ix_run_owner_monitor_order", "owner_id", "in_monitor", "sort_at", "id"),
        Index("ix_run_owner_id", "owner_id", "id"),
        Index("ix_run_type_id", "job_type", "id"),
        Index("ix_run_state_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    job_type: Mapped[str] = mapped_column(String(60))
    job_name: Mapped[str] = mapped_column(String(200))
    # the job's own count of what happened (1, 2, ...); None while a schedule's occurrence is
    # only planned: it takes its number when it fires (engine/firing.py)
    number: Mapped[int | None] = mapped_column()
    state: Mapped[RunState] = mapped_column(
        Enum(RunState, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=RunState.QUEUED,
    )
    trigger: Mapped[str] = mapped_column(String(20), default="manual")
    request_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    progress_done: Mapped[int] = mapped_column(default=0)
    progress_total: Mapped[int | None] = mapped_column()
    checked: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    checkpoint: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result_path: Mapped[str | None] = mapped_column(String(500))
    result_name: Mapped[str | None] = mapped_column(String(200))
    downloaded_at: Mapped[datetime | None] = mapped_column()
    result_deleted_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    control: Mapped[str | None] = mapped_column(String(20))  # "stop" or "pause" requested
    control_at: Mapped[datetime | None] = mapped_column()
    rq_job_id: Mapped[str | None] = mapped_column(String(60))
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    scheduled_for: Mapped[datetime | None] = mapped_column()
    planned_for: Mapped[datetime | None] = mapped_column()  # the schedule occurrence it is
    collect_until: Mapped[datetime | None] = mapped_column()
    in_monitor: Mapped[bool] = mapped_column(default=True)
    sort_at: Mapped[datetime] = mapped_column(default=utcnow)  # started, else created
    long_notified: Mapped[bool] = mapped_column(default=False)
    # a step of a group run: the group's run and the step's place in the chain (1, 2, ...)
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="SET NULL"), index=True)
    step: Mapped[int | None] = mapped_column()
    # the group run whose success started this run (a campaign's "launch after success")
    origin_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("run.id", ondelete="SET NULL", name="fk_run_origin_run")
    )

    job = relationship("Job")
    parent = relationship("Run", remote_side=[id], foreign_keys=[parent_run_id])
    origin = relationship("Run", remote_side=[id], foreign_keys=[origin_run_id])
    owner = relationship("User", foreign_keys=[owner_id])
    started_by = relationship("User", foreign_keys=[started_by_id])

    @property
    def label(self) -> str:
        """How the run is named beside its job: 'run #3', or 'planned run' before it has a number."""
        return "planned run" if self.number is None else f"run #{self.number}"

    @property
    def short_label(self) -> str:
        """The run in a column of runs: '#3', or 'planned' before it has a number."""
        return "planned" if self.number is None else f"#{self.number}"

    @property
    def trigger_text(self) -> str:
        """How the run came about, in words: 'by hand', 'on its schedule', 'at a time set by hand',
        'a step of a group run', 'after a group run', 'through the API'."""
        if self.trigger == "schedule":
            return "on its schedule"
        if self.trigger == "group":
            return "after a group run" if self.origin_run_id else "a step of a group run"
        if self.trigger == "api":
            return "through the API"
        if self.scheduled_for is not None:
            return "at a time set by hand"
        return "by hand"

    @property
    def reference(self) -> str:
        """The run's number and its job's own, never to be confused: 'run #3 of Job #2'."""
        if self.job_id is None:
            return f"{self.label} of a deleted job"
        return f"{self.label} of Job #{self.job_id}"

    @property
    def percent(self) -> int:
        """Whole percent done, 0 when the total is not known yet."""
        return percent_done(self.progress_done, self.progress_total, self.state)

    @property
    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNT_NAMES}

    @property
    def has_result(self) -> bool:
        """A result file exists and may be downloaded."""
        return result_kept(self.result_path, self.result_deleted_at)

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        return ((self.finished_at or utcnow()) - self.started_at).total_seconds()


def percent_done(done: int, total: int | None, state: RunState) -> int:
    """Whole percent done, 0 when the total is not known yet (Run.percent, for a run's values
    read as columns)."""
    if not total:
        return 100 if state is RunState.COMPLETED else 0
    return min(100, int(done * 100 / total))


def result_kept(path: str | None, deleted_at: datetime | None) -> bool:
    """A result file exists and may be downloaded (Run.has_result, from a run's columns)."""
    return bool(path) and deleted_at is None


class RunLogLine(Model):
    """One line of a run's log."""

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    level: Mapped[str] = mapped_column(String(10), default="info")
    message: Mapped[str] = mapped_column(Text)


class RunRejection(Model):
    """A record a run rejected, with its line number and reason."""

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    line: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(String(500))
