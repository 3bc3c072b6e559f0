"""Rollback Transaction Data Import: the preview and confirmation that undo one import."""

from webapp.rollbacks.routes import bp

__all__ = ["bp"]
