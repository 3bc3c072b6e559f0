"""Logging in and out."""

from webapp.auth.routes import bp

__all__ = ["bp"]
