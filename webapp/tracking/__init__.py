"""Open pixel, signed click redirects and one-click unsubscribe (no login: recipients use them)."""

from webapp.tracking.routes import bp

__all__ = ["bp"]
