"""Email campaigns and saved audience filters."""

from webapp.campaigns.routes import bp

__all__ = ["bp"]
