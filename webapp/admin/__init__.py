"""Users, account settings and the audit log."""

from webapp.admin import (  # noqa: F401  (each registers its views on bp)
    audit_log,  # the Audit page
    users,  # the Users page
)
from webapp.admin.routes import bp

__all__ = ["bp"]
