"""Job definitions: create, view, run."""

from webapp.jobs import schedule_routes  # noqa: F401  (registers the schedule views)
from webapp.jobs.routes import bp

__all__ = ["bp"]
