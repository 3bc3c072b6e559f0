"""Email campaigns and saved audience filters."""

from webapp.campaigns import filter_routes  # noqa: F401  (registers the saved filters views)
from webapp.campaigns.routes import bp

__all__ = ["bp"]
