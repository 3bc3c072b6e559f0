"""Users, account settings and the audit log."""

from webapp.admin import audit_log  # noqa: F401  (registers the Audit page)
from webapp.admin.routes import bp

__all__ = ["bp"]
