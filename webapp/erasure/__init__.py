"""Supporter Delete: preview, confirm and delete supporters on request."""

from webapp.erasure.routes import bp

__all__ = ["bp"]
