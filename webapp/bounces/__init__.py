"""Email Bounces: bounce data of a campaign send or a date range, as a CSV job."""

from webapp.bounces.routes import bp

__all__ = ["bp"]
