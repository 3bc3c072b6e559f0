"""Audit log of actions taken on behalf of other users."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import utcnow


class AuditEntry(db.Model):
    """One action by a super admin on another user's data (e.g. a result download)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(60))
    detail: Mapped[str] = mapped_column(String(500), default="")

    actor = relationship("User", foreign_keys=[actor_id])
    owner = relationship("User", foreign_keys=[owner_id])
