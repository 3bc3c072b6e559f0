"""Accounts and roles."""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import Model
from webapp.models.base import utcnow


class Role(enum.StrEnum):
    """What a user may do (DESIGN.md "Who uses it")."""

    USER = "user"
    ADMIN = "admin"
    SUPER_ADMIN = "super_admin"

    @property
    def label(self) -> str:
        return {"user": "User", "admin": "Admin", "super_admin": "Super admin"}[self.value]


class User(UserMixin, Model):
    """A staff member who logs in."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=Role.USER,
    )
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # raised to end every session of the user (sign-out everywhere, a new password); a session
    # carries the version it was signed in with and is refused once they differ
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    password_changed_at: Mapped[datetime | None] = mapped_column()

    def set_password(self, password: str) -> None:
        """Store a salted hash of the password, never the password; every session of the user
        ends (a caller that keeps the current one re-stamps it: auth.sessions.keep)."""
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
        self.password_hash = generate_password_hash(password, method=method)
        self.password_changed_at = utcnow()
        self.end_sessions()

    def end_sessions(self) -> None:
        """Refuse every session signed in before now (the caller commits)."""
        self.session_version = (self.session_version or 0) + 1

    def password_fingerprint(self) -> str:
        """A short digest of the password hash and email: a set-password link carries it, so
        the link stops working once the password (or the address) changes."""
        text = f"{self.password_hash}\0{self.email.lower()}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]

    def check_password(self, password: str) -> bool:
        """Whether the password matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role in (Role.ADMIN, Role.SUPER_ADMIN)

    @property
    def is_super_admin(self) -> bool:
        return self.role is Role.SUPER_ADMIN

    @property
    def display_name(self) -> str:
        return self.name or self.email
