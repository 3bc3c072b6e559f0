"""The versioned JSON API, /api/v1: a personal API token (`Authorization: Bearer …`, made on
the API tokens page) acts as its user, under the screens' rules (another user's run is a 404).
A read-only token may only read. Errors are JSON with a stable code and a 4xx status. Each
module declares its endpoints with `spec.operation`, from which /api/v1/openapi.json is made."""

from webapp.api.v1 import docs, groups, jobs, lists, runs  # noqa: F401  (they declare the routes)
from webapp.api.v1.core import bp

__all__ = ["bp"]
