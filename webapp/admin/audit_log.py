"""The Audit page: every audited action (who did what, when, to which object, from where),
filtered by user, action, object and dates, a page at a time, and the same entries as CSV.
There is no view that edits or deletes an entry: only the retention sweep removes old ones."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import Response, abort, current_app, render_template, request, stream_with_context, url_for
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from webapp.admin.routes import bp
from webapp.audit import LABELS as OBJECT_KINDS
from webapp.csvfiles import neutralise
from webapp.extensions import db
from webapp.jobtypes import types_where
from webapp.models.audit import AuditEntry
from webapp.models.campaigns import Campaign
from webapp.models.jobs import Job
from webapp.models.money import Receipt
from webapp.models.runs import Run
from webapp.models.schedules import Blackout
from webapp.models.users import User
from webapp.paging import Keyset
from webapp.permissions import super_admin_required
from webapp.request_args import MAX_ID, as_int, choice_arg, date_arg, int_arg
from webapp.rules.clock import format_local, local_midnight_utc

# every action the log knows, with the words the Audit page shows for it: its filter offers these
# (an action written without a line here is shown from its name but cannot be filtered on)
ACTIONS: dict[str, str] = {
    "auth.signed_in": "Signed in",
    "auth.sign_in_failed": "Sign-in failed",
    "auth.signed_out": "Signed out",
    "auth.signed_out_everywhere": "Signed out everywhere",
    "user.password_set": "Password set",
    "user.password_changed": "Password changed",
    "user.password_link_sent": "Set-password link sent",
    "user.created": "User created",
    "api_token.created": "API token created",
    "api_token.used": "API token used from a new address",
    "api_token.revoked": "API token revoked",
    "user.edited": "User edited",
    "user.role_changed": "Role changed",
    "user.deactivated": "User deactivated",
    "user.reactivated": "User reactivated",
    "job.created": "Job created",
    "job.edited": "Job edited",
    "job.deleted": "Job deleted",
    "schedule.set": "Schedule set",
    "schedule.paused": "Schedule paused",
    "schedule.resumed": "Schedule resumed",
    "blackout.added": "Blackout dates added",
    "blackout.removed": "Blackout dates removed",
    "group.created": "Group created",
    "group.edited": "Group edited",
    "group.activated": "Group activated",
    "group.deactivated": "Group deactivated",
    "group.deleted": "Group deleted",
    "campaign.created": "Campaign created",
    "campaign.edited": "Campaign edited",
    "campaign.launched": "Campaign launched",
    "campaign.scheduled": "Campaign launch scheduled",
    "campaign.sent_to_remaining": "Campaign sent to the remaining",
    "campaign.copied": "Campaign copied",
    "filter.created": "Saved filter created",
    "filter.edited": "Saved filter edited",
    "filter.deleted": "Saved filter deleted",
    "supporter_delete.confirmed": "Supporter Delete confirmed",
    "rollback.started": "Import rollback started",
    "receipt.voided": "Receipt voided",
    "receipts.template_changed": "Receipt template changed",
    "run.started": "Run started",
    "run.stopped": "Run stopped",
    "run.killed": "Run killed",
    "run.paused": "Run paused",
    "run.resumed": "Run resumed",
    "run.cancelled": "Run cancelled",
    "run.retried": "Run retried",
    "run.dismissed": "Run removed from the monitor",
    "settings.changed": "Settings changed",
    "run.result_downloaded_for_owner": "Result downloaded for its owner",
    "run.log_downloaded_for_owner": "Log downloaded for its owner",
    "run.rejections_downloaded_for_owner": "Rejected lines downloaded for its owner",
    "download_result": "Result downloaded for its owner",  # entries written before 2026-12
}
_OBJECT = re.compile(r"\s*([a-z_]+)\s*#?\s*([0-9]*)\s*", re.IGNORECASE)
CSV_HEADER = [
    "When (UTC)",
    "When ({zone})",
    "Who",
    "Action",
    "Action code",
    "Object type",
    "Object id",
    "Object",
    "Details",
    "IP",
]


def _first_code(text: str) -> str:
    return next(code for code, label in ACTIONS.items() if label == text)


# the Action filter's choices: each wording once (an older code with the same words is found too)
FILTER_ACTIONS = {code: text for code, text in ACTIONS.items() if code == _first_code(text)}


def action_label(action: str) -> str:
    """The words for an action ('run.stopped' → 'Run stopped'; an unknown one from its name)."""
    return ACTIONS.get(action) or action.replace(".", " ").replace("_", " ").capitalize()


@dataclass(frozen=True)
class AuditFilter:
    """What the Audit page is narrowed to (each part optional)."""

    user_id: int | None = None
    action: str = ""
    object_type: str = ""
    object_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def from_request(cls) -> AuditFilter:
        """The filter in the query string; a malformed value is a 400 with a plain sentence."""
        object_type, object_id = _object_arg()
        return cls(
            user_id=int_arg("user"),
            action=choice_arg("action", ACTIONS),
            object_type=object_type,
            object_id=object_id,
            date_from=date_arg("date_from"),
            date_to=date_arg("date_to"),
        )

    @property
    def object_text(self) -> str:
        """The object filter as typed: 'run 12', or just 'run'."""
        return f"{self.object_type} {self.object_id or ''}".strip()

    def args(self) -> dict[str, Any]:
        """The filter as query values, for the pager and the CSV link."""
        values = {
            "user": self.user_id or "",
            "action": self.action,
            "object": self.object_text,
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
        }
        return {name: value for name, value in values.items() if value}

    def apply(self, query: Select) -> Select:
        """`query` narrowed to the entries that match (dates are account-zone days)."""
        zone = current_app.config["TIMEZONE"]
        if self.user_id is not None:
            query = query.where(AuditEntry.actor_id == self.user_id)
        if self.action:  # every code shown with the same words (older entries' codes too)
            label = ACTIONS[self.action]
            query = query.where(
                AuditEntry.action.in_([code for code, text in ACTIONS.items() if text == label])
            )
        if self.object_type:
            query = query.where(AuditEntry.object_type == self.object_type)
        if self.object_id is not None:
            query = query.where(AuditEntry.object_id == self.object_id)
        if self.date_from is not None:
            query = query.where(AuditEntry.at >= local_midnight_utc(self.date_from.isoformat(), zone))
        if self.date_to is not None:
            end = (self.date_to + timedelta(days=1)).isoformat()
            query = query.where(AuditEntry.at < local_midnight_utc(end, zone))
        return query


def _object_arg() -> tuple[str, int | None]:
    """The "object" query value: a kind and maybe an id ('run 12', 'Job #5', 'campaign')."""
    raw = request.args.get("object", "")
    if not raw.strip():
        return "", None
    match = _OBJECT.fullmatch(raw) if len(raw) <= 60 else None
    kind = match.group(1).lower() if match else ""
    object_id = as_int(match.group(2), maximum=MAX_ID) if match and match.group(2) else None
    if kind not in OBJECT_KINDS or (match and match.group(2) and object_id is None):
        kinds = ", ".join(sorted(OBJECT_KINDS))
        abort(
            400,
            description=f"“object” must be one of {kinds}, maybe followed by an id "
            f"(e.g. “run 12”); “{raw[:40]}” is not.",
        )
    return kind, object_id


# what each kind of object links to while it exists: (which ids still exist, endpoint, argument)
_EXISTING = {
    "run": lambda ids: select(Run.id).where(Run.id.in_(ids)),
    "job": lambda ids: select(Job.id).where(
        Job.id.in_(ids), Job.active.is_(True), Job.job_type.not_in(types_where("drives_chain"))
    ),
    "group": lambda ids: select(Job.id).where(Job.id.in_(ids), Job.job_type.in_(types_where("drives_chain"))),
    "campaign": lambda ids: select(Campaign.id).where(Campaign.id.in_(ids)),
    "user": lambda ids: select(User.id).where(User.id.in_(ids)),
    "blackout": lambda ids: select(Blackout.id).where(Blackout.id.in_(ids), Blackout.job_id.is_(None)),
    "receipt": lambda ids: select(Receipt.id).where(Receipt.id.in_(ids)),
}
_LINKS = {
    "run": ("runs.detail", "run_id"),
    "job": ("jobs.detail", "job_id"),
    "group": ("groups.detail", "group_id"),
    "campaign": ("campaigns.detail", "campaign_id"),
    "user": ("admin.edit_user", "user_id"),
    "blackout": ("admin.settings", None),
    "settings": ("admin.settings", None),
    "receipt": ("receipts.detail", "receipt_id"),
}


def object_links(entries: list[AuditEntry]) -> dict[int, str]:
    """The link of each entry whose object still exists (by entry id); one query per kind."""
    ids: dict[str, set[int]] = {}
    for entry in entries:
        if entry.object_type in _EXISTING and entry.object_id is not None:
            ids.setdefault(entry.object_type, set()).add(entry.object_id)
    existing = {
        (kind, object_id)
        for kind, wanted in ids.items()
        for object_id in db.session.execute(_EXISTING[kind](wanted)).scalars()
    }
    links = {}
    for entry in entries:
        if entry.object_type not in _LINKS or (
            entry.object_type in _EXISTING and (entry.object_type, entry.object_id) not in existing
        ):
            continue
        endpoint, argument = _LINKS[entry.object_type]
        values: dict[str, Any] = {argument: entry.object_id} if argument else {}
        links[entry.id] = url_for(endpoint, **values)
    return links


@bp.route("/audit", endpoint="audit")
@super_admin_required
def audit_log():
    """The audit log, newest first: filter by user, action, object and dates; a page at a time."""
    filters = AuditFilter.from_request()
    keyset = Keyset.from_request(current_app.config["PAGE_SIZE"])
    query = filters.apply(select(AuditEntry).options(selectinload(AuditEntry.actor)))
    page = keyset.page(db.session.execute(keyset.narrow(query, AuditEntry.id)).scalars().all())
    entries = page.items
    users = db.session.execute(select(User.id, User.email).order_by(User.email)).all()
    return render_template(
        "admin/audit.html",
        entries=entries,
        page=page,
        filters=filters,
        users=users,
        actions=FILTER_ACTIONS,
        action_label=action_label,
        links=object_links(entries),
        kinds=sorted(OBJECT_KINDS),
    )


@bp.route("/audit.csv")
@super_admin_required
def audit_csv():
    """Every entry the filter matches (all pages) as CSV, streamed; no cell can run as a
    spreadsheet formula."""
    filters = AuditFilter.from_request()
    zone = current_app.config["TIMEZONE"]
    query = (
        filters.apply(select(AuditEntry, User.email).outerjoin(User, User.id == AuditEntry.actor_id))
        .order_by(AuditEntry.id.desc())
        .execution_options(yield_per=1000)
    )

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([column.format(zone=zone) for column in CSV_HEADER])
        for count, (entry, email) in enumerate(db.session.execute(query), start=1):
            writer.writerow(
                neutralise(str(cell))
                for cell in (
                    entry.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    format_local(entry.at, zone),
                    email or "",
                    action_label(entry.action),
                    entry.action,
                    entry.object_type or "",
                    entry.object_id if entry.object_id is not None else "",
                    entry.object_label,
                    entry.detail,
                    entry.ip,
                )
            )
            if count % 200 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )
