"""Saved job definitions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import Model
from webapp.models.base import utcnow

if TYPE_CHECKING:
    from webapp.models.schedules import JobSchedule


class Job(Model):
    """A saved definition: a job type with its parameters, owned by a user."""

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    job_type: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    last_run_number: Mapped[int] = mapped_column(default=0)
    notify_emails: Mapped[str] = mapped_column(String(500), default="")  # comma separated
    notify_on: Mapped[str] = mapped_column(String(20), default="never")  # every, failure, never
    notify_missed: Mapped[bool] = mapped_column(default=False)
    notify_long: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner = relationship("User")
    # when it runs by itself, if ever (one schedule per job)
    schedule: Mapped[JobSchedule | None] = relationship(back_populates="job", uselist=False)
    # a group's steps in order (jobtypes/job_group.py reads and writes them); the database
    # deletes them with the group (passive_deletes: no loading them first)
    group_steps = relationship(
        "GroupStep",
        foreign_keys="GroupStep.group_id",
        order_by="GroupStep.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    @property
    def notify_list(self) -> list[str]:
        """The notification addresses."""
        return [a.strip() for a in (self.notify_emails or "").split(",") if a.strip()]
