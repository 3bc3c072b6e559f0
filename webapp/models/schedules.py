"""A job's schedule as stored: the fields of rules.recurrence.Schedule plus its switch and
policies."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import cast

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import Model
from webapp.models.base import utcnow
from webapp.rules.recurrence import Schedule, ScheduleKind


class JobSchedule(Model):
    """When a job runs by itself (one schedule per job)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    start_date: Mapped[date] = mapped_column()
    time: Mapped[time | None] = mapped_column()
    times_per_day: Mapped[int | None] = mapped_column()
    weekdays: Mapped[list[int] | None] = mapped_column(JSON)
    day_of_month: Mapped[int | None] = mapped_column()
    week_of_month: Mapped[int | None] = mapped_column()
    weekday: Mapped[int | None] = mapped_column()
    hour: Mapped[int | None] = mapped_column()
    slot: Mapped[int | None] = mapped_column()
    minute: Mapped[int | None] = mapped_column()
    once_at: Mapped[datetime | None] = mapped_column()  # local wall-clock time
    enabled: Mapped[bool] = mapped_column(default=False)
    overlap_policy: Mapped[str] = mapped_column(String(20), default="skip")  # or "queue"
    # an occurrence the scheduler was down for: "run_once" (if under the grace) or "skip"
    misfire_policy: Mapped[str] = mapped_column(String(20), default="run_once", server_default="run_once")
    misfire_grace_minutes: Mapped[int] = mapped_column(default=60, server_default="60")
    next_run_at: Mapped[datetime | None] = mapped_column()
    paused_reason: Mapped[str | None] = mapped_column(String(300))
    paused_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    paused_at: Mapped[datetime | None] = mapped_column()
    resume_on: Mapped[date | None] = mapped_column()  # local date the pause ends by itself
    # why the scheduler could not plan it (a plain sentence for its page); None once it plans
    problem: Mapped[str | None] = mapped_column(String(500))
    problem_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    job = relationship("Job", back_populates="schedule")
    paused_by = relationship("User")

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    def as_schedule(self, tz: str) -> Schedule:
        """The pure schedule the next-run maths works on."""
        return Schedule(
            # stored as its text: Schedule turns it into a ScheduleKind (ScheduleError if unknown)
            kind=cast(ScheduleKind, self.kind),
            tz=tz,
            start_date=self.start_date,
            time=self.time,
            times_per_day=self.times_per_day,
            weekdays=frozenset(self.weekdays) if self.weekdays else None,
            day_of_month=self.day_of_month,
            week_of_month=self.week_of_month,
            weekday=self.weekday,
            hour=self.hour,
            slot=self.slot,
            minute=self.minute,
            once_at=self.once_at,
        )


class Blackout(Model):
    """Dates on which scheduled runs do not happen: account-wide (no job) or for one job."""

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    start_date: Mapped[date] = mapped_column()
    end_date: Mapped[date] = mapped_column()
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
