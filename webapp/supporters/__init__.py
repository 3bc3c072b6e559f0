"""Browsing supporters."""

from webapp.supporters.routes import bp

__all__ = ["bp"]
