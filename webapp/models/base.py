"""Shared column helpers."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current instant as a naive UTC datetime (storage is UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)
