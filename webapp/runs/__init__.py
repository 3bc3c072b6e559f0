"""A run's page and the actions on a run (stop, kill, retry, download)."""

from webapp.runs.routes import bp

__all__ = ["bp"]
