"""Job definitions: create, view, run."""

from webapp.jobs.routes import bp

__all__ = ["bp"]
