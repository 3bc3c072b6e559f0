"""Account-wide settings (one row)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import Model, db
from webapp.rules.countries import DEFAULT


class AccountSettings(Model):
    """Settings an admin changes on the Settings page."""

    id: Mapped[int] = mapped_column(primary_key=True)
    retention_days: Mapped[int] = mapped_column(default=30)
    audit_retention_days: Mapped[int] = mapped_column(default=365, server_default="365")
    # the country of a postal code an import checks when its row names no country
    default_country: Mapped[str] = mapped_column(String(2), default=DEFAULT, server_default=DEFAULT)
    # since when the job queue (Redis) has been unreachable; None while it answers
    queue_down_since: Mapped[datetime | None] = mapped_column()

    @classmethod
    def get(cls) -> AccountSettings:
        """The account's settings row, created with defaults on first use."""
        settings = db.session.get(cls, 1)
        if settings is None:
            settings = cls(id=1)
            db.session.add(settings)
            db.session.flush()
        return settings

    @classmethod
    def postal_country(cls) -> str:
        """The account's default country for postal codes (read only: no row is created)."""
        settings = db.session.get(cls, 1)
        return settings.default_country if settings is not None else DEFAULT
