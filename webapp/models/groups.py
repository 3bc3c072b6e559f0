"""A group's steps: which job runs at which position of which group."""

from __future__ import annotations

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import Model


class GroupStep(Model):
    """One step of a group. The database keeps the chain whole: deleting the group's row takes
    its steps with it; a job's row that a step uses cannot be deleted."""

    __table_args__ = (UniqueConstraint("group_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"))
    position: Mapped[int]  # 1, 2, ... as the step numbers of a group run
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="RESTRICT"), index=True)
