"""A job's schedule as stored: the fields of engine.schedules.Schedule plus its switch and
policies."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.engine.schedules import Schedule
from webapp.extensions import db
from webapp.models.base import utcnow


class JobSchedule(db.Model):
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
    next_run_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    job = relationship("Job", backref=db.backref("schedule", uselist=False))

    def as_schedule(self, tz: str) -> Schedule:
        """The pure schedule the next-run maths works on."""
        return Schedule(
            kind=self.kind, tz=tz, start_date=self.start_date, time=self.time,
            times_per_day=self.times_per_day,
            weekdays=frozenset(self.weekdays) if self.weekdays else None,
            day_of_month=self.day_of_month, week_of_month=self.week_of_month,
            weekday=self.weekday, hour=self.hour, slot=self.slot, minute=self.minute,
            once_at=self.once_at,
        )
