"""The API tokens page: a user's personal keys to the JSON API."""

from webapp.tokens.routes import bp

__all__ = ["bp"]
