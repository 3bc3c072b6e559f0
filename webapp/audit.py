"""Writing the audit log: one call per action, from the view that performs it."""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from webapp.extensions import db
from webapp.models.audit import AuditEntry

# the object kinds an entry can point at, and the attribute that names each for a person
LABELS = {
    "run": "job_name",
    "job": "name",
    "group": "name",
    "campaign": "name",
    "schedule": None,
    "user": "email",
    "settings": None,
    "filter": "name",
    "blackout": "reason",
    "apitoken": "name",
    "receipt": "number",
}


def client_ip() -> str:
    """The address the request came from (the proxy's client when a proxy is trusted, see
    CONVEYOR_TRUST_PROXY), or '' outside a request."""
    return (request.remote_addr or "") if has_request_context() else ""


def record(
    action: str,
    obj: Any = None,
    *,
    kind: str | None = None,
    detail: str = "",
    actor: Any = None,
    owner_id: int | None = None,
    commit: bool = True,
) -> AuditEntry:
    """Write one audit entry: `action` (e.g. "run.stopped", "user.role_changed") done by
    `actor` (default: the signed-in user) to `obj` (a model instance; `kind` names its type
    when the class name is not it, e.g. a group is a Job). Committed unless `commit=False`
    (then it goes in with the caller's own commit)."""
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user
    kind = kind or (type(obj).__name__.lower() if obj is not None else None)
    label_attr = LABELS.get(kind or "")
    label = str(getattr(obj, label_attr, "") or "") if obj is not None and label_attr else ""
    if owner_id is None and obj is not None:
        owner_id = getattr(obj, "owner_id", None)
    entry = AuditEntry(
        actor_id=getattr(actor, "id", actor),
        owner_id=owner_id,
        run_id=getattr(obj, "id", None) if kind == "run" else None,
        action=action,
        detail=detail[:500],
        object_type=kind,
        object_id=getattr(obj, "id", None),
        object_label=label[:200],
        ip=client_ip()[:64],
    )
    db.session.add(entry)
    if commit:
        db.session.commit()
    return entry
