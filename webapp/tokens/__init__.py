"""The API tokens page (a user's personal keys to the JSON API) and the API reference page."""

from webapp.tokens import reference  # noqa: F401  (declares the reference page's route)
from webapp.tokens.routes import bp

__all__ = ["bp"]
