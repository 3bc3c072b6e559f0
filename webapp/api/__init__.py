"""The JSON API (bounce webhook for now)."""

from webapp.api.routes import bp

__all__ = ["bp"]
