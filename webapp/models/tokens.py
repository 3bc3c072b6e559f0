"""Personal API tokens: a user's key to the JSON API (/api/v1), stored as a hash only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import Model
from webapp.models.base import utcnow
from webapp.models.users import User


class ApiToken(Model):
    """One token: it acts as its user (a super admin's with super-admin rights), read-only or
    read-write, until it expires or is revoked. The secret itself is shown once and never kept:
    `secret_hash` is its SHA-256, `prefix` its first characters, to tell tokens apart."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    read_only: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    last_used_ip: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column()

    user = relationship(User)

    def usable(self, now: datetime) -> bool:
        """Neither revoked nor expired, and its user still active."""
        expired = self.expires_at is not None and self.expires_at <= now
        return self.revoked_at is None and not expired and self.user.active
