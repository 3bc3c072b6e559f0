"""The job monitor and History."""

from webapp.monitor.routes import bp

__all__ = ["bp"]
