"""Recording what recipients do: opens, clicks, unsubscribes and bounces."""

from __future__ import annotations

import re

from sqlalchemy import select

from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.campaigns import BOUNCE_REASON_MAX, Bounce, BounceKind, Recipient, Suppression
from webapp.models.people import Supporter
from webapp.models.runs import Run


def record_open(recipient: Recipient) -> None:
    """The first open counts."""
    if recipient.opened_at is None:
        recipient.opened_at = utcnow()
        db.session.commit()


def record_click(recipient: Recipient) -> None:
    """A click also proves an open."""
    now = utcnow()
    recipient.clicked_at = recipient.clicked_at or now
    recipient.opened_at = recipient.opened_at or now
    db.session.commit()


def suppress(email: str, reason: str, run_id: int | None) -> None:
    """Put an address on the suppression list (once)."""
    email = email.strip().lower()
    exists = db.session.execute(select(Suppression.id).where(Suppression.email == email)).scalar()
    if exists is None:
        db.session.add(Suppression(email=email, reason=reason, run_id=run_id))


def record_unsubscribe(recipient: Recipient) -> None:
    """Unsubscribe: opted out, suppressed, and counted as attrition for the run."""
    if recipient.unsubscribed_at is None:
        recipient.unsubscribed_at = utcnow()
    supporter = db.session.get(Supporter, recipient.supporter_id)
    if supporter is not None:
        supporter.opted_in = False
    suppress(recipient.email, "unsubscribe", recipient.run_id)
    db.session.commit()


def record_bounce(email: str, request_id: str | None, hard: bool, reason: str = "") -> bool:
    """A bounce for an address (in a run, when its request id is given; else its latest send):
    kept with its type, the server's reason (the address itself in it written <recipient>) and
    its time; hard ones suppress. The same report received again (a webhook's retry: same
    recipient, type and reason) is kept once. False when no recipient has that address."""
    email = email.strip().lower()
    query = select(Recipient).where(Recipient.email == email)
    if request_id:
        query = query.join(Run, Run.id == Recipient.run_id).where(Run.request_id == request_id)
    recipient = db.session.execute(query.order_by(Recipient.id.desc()).limit(1)).scalar()
    if recipient is None:
        return False
    now = utcnow()
    kind = BounceKind.HARD if hard else BounceKind.SOFT
    # the address stays the recipient's alone (Supporter Delete blanks it there): a server that
    # echoes it in its reason ("550 5.1.1 <a@b.org>: no such user") has it written <recipient>
    address = re.compile(rf"<{re.escape(email)}>|{re.escape(email)}", re.IGNORECASE)
    reason = address.sub("<recipient>", reason.strip())[:BOUNCE_REASON_MAX]
    repeated = db.session.execute(
        select(Bounce.id).where(
            Bounce.recipient_id == recipient.id, Bounce.kind == kind, Bounce.reason == reason
        )
    ).first()
    if repeated is None:
        db.session.add(
            Bounce(
                recipient_id=recipient.id, run_id=recipient.run_id, kind=kind, reason=reason, bounced_at=now
            )
        )
    recipient.bounced_at = recipient.bounced_at or now
    if hard:
        suppress(email, "hard_bounce", recipient.run_id)
    db.session.commit()
    return True
