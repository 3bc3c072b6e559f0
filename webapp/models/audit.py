"""The audit log: who did what, when, to which object, from where."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import Model
from webapp.models.base import utcnow


class AuditEntry(Model):
    """One action: when, who (None for an unknown sign-in), what, the object it touched (kept
    as type, id and label so the entry reads the same after the object is deleted), whose data
    it was, details and the IP it came from. Never edited in the UI."""

    __table_args__ = (
        Index("ix_audit_entry_actor_id", "actor_id", "id"),
        Index("ix_audit_entry_action_id", "action", "id"),
        Index("ix_audit_entry_object", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(60))
    detail: Mapped[str] = mapped_column(String(500), default="")
    object_type: Mapped[str | None] = mapped_column(String(30))  # run, job, group, campaign, ...
    object_id: Mapped[int | None] = mapped_column()
    object_label: Mapped[str] = mapped_column(String(200), default="", server_default="")
    ip: Mapped[str] = mapped_column(String(64), default="", server_default="")

    actor = relationship("User", foreign_keys=[actor_id])
    owner = relationship("User", foreign_keys=[owner_id])
