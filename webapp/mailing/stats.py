"""A campaign run's contact results, counted from its recipient list."""

from __future__ import annotations

from sqlalchemy import case, func, select

from webapp.extensions import db
from webapp.models.campaigns import Recipient, RecipientStatus
from webapp.models.runs import Run


def contact_stats(run: Run) -> dict[str, int]:
    """Audience, suppressed, sent, deliveries, opens, clicks, bounces, unsubscribes, failed."""
    r = Recipient
    row = db.session.execute(
        select(
            func.count(),
            func.sum(case((r.status == RecipientStatus.SENT, 1), else_=0)),
            func.sum(case((r.status == RecipientStatus.FAILED, 1), else_=0)),
            func.count(r.opened_at),
            func.count(r.clicked_at),
            func.count(r.bounced_at),
            func.count(r.unsubscribed_at),
        ).where(r.run_id == run.id)
    ).one()
    recipients, sent, failed, opens, clicks, bounces, unsubscribes = (v or 0 for v in row)
    return {
        "audience": run.checked,
        "suppressed": run.skipped,
        "recipients": recipients,
        "sent": sent,
        "deliveries": max(sent - bounces, 0),
        "opens": opens,
        "clicks": clicks,
        "bounces": bounces,
        "unsubscribes": unsubscribes,
        "failed": failed,
    }
