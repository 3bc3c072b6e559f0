"""Groups: ordered chains of jobs, their wizard, and their runs."""

from webapp.groups import wizard  # noqa: F401  (registers the wizard's routes on bp)
from webapp.groups.routes import bp

__all__ = ["bp"]
