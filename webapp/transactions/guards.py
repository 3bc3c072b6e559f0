"""The NUL check is app-wide now (webapp.guards, registered by webapp.web for every request)."""

from webapp.guards import refuse_nul

__all__ = ["refuse_nul"]
