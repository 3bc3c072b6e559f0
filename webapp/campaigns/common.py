"""What the campaign pages and the API both do: find the campaigns a user may see and their
sends, render a preview, and audit a send."""

from __future__ import annotations

from email.message import EmailMessage

from flask_login import current_user
from sqlalchemy import Select, select

from webapp import audit
from webapp.extensions import db
from webapp.mailing.render import MERGE_FIELDS, CompiledCampaign, RenderError
from webapp.models.campaigns import Campaign
from webapp.models.people import Supporter
from webapp.models.runs import Run
from webapp.paging import Keyset, KeysetPage
from webapp.permissions import seen_or_404
from webapp.rules.states import RunState


def campaign_or_404(campaign_id: int) -> Campaign:
    """The campaign if the current user owns it (or is a super admin); 404 otherwise."""
    return seen_or_404(Campaign, campaign_id)


def _visible() -> Select:
    """The campaigns the current user may see: their own (every user's for a super admin)."""
    query = select(Campaign)
    return query if current_user.is_super_admin else query.where(Campaign.owner_id == current_user.id)


def visible_campaigns() -> list[Campaign]:
    """The current user's campaigns (every user's for a super admin), newest first."""
    return list(db.session.execute(_visible().order_by(Campaign.id.desc())).scalars())


def campaigns_page(keyset: Keyset) -> KeysetPage[Campaign]:
    """One page of the current user's campaigns (every user's for a super admin), newest first."""
    return keyset.page(db.session.execute(keyset.narrow(_visible(), Campaign.id)).scalars().all())


def recent_sends(campaign: Campaign) -> list[Run]:
    """The campaign's last 20 runs (its launch, sends to the remaining, sends after groups)."""
    if not campaign.job_id:
        return []
    query = select(Run).where(Run.job_id == campaign.job_id).order_by(Run.id.desc()).limit(20)
    return list(db.session.execute(query).scalars())


def sends_page(campaign: Campaign, keyset: Keyset) -> KeysetPage[Run]:
    """One page of the campaign's runs (its launch, sends to the remaining, sends after
    groups), newest first."""
    if not campaign.job_id:
        return KeysetPage([], has_newer=False, has_older=False)
    query = keyset.narrow(select(Run).where(Run.job_id == campaign.job_id), Run.id)
    return keyset.page(db.session.execute(query).scalars().all())


def preview_for(campaign: Campaign, email: str) -> tuple[Supporter | None, EmailMessage | None, str | None]:
    """(supporter, the rendered message, a problem) for the supporter with `email`, or for the
    first supporter (a sample one when there is none)."""
    query = select(Supporter)
    query = query.where(Supporter.email == email) if email else query.order_by(Supporter.id)
    supporter = db.session.execute(query.limit(1)).scalar()
    if email and supporter is None:
        return None, None, f"No supporter has the email {email}."
    data = (
        {name: getattr(supporter, name) for name in MERGE_FIELDS}
        if supporter
        else {"email": "someone@example.org", "first_name": "Alex"}
    )
    try:
        message = (
            CompiledCampaign(
                from_address=campaign.from_address,
                subject=campaign.subject,
                html_body=campaign.html_body,
                text_body=campaign.text_body,
            )
            .render(data)
            .as_email()
        )
    except RenderError as exc:
        return supporter, None, str(exc)
    return supporter, message, None


def message_parts(message: EmailMessage | None) -> dict[str, str]:
    """The text/plain and text/html parts of a message, by type."""
    if message is None:
        return {}
    return {
        part.get_content_type(): part.get_content()
        for part in message.walk()
        if part.get_content_type() in ("text/plain", "text/html")
    }


def record_send(campaign: Campaign, run: Run, total: int, *, remaining: bool, note: str = "") -> None:
    """The audit entry of a send: launched, scheduled, or sent to the remaining, and to how many."""
    audit.record(
        "campaign.sent_to_remaining"
        if remaining
        else "campaign.scheduled"
        if run.state is RunState.SCHEDULED
        else "campaign.launched",
        campaign,
        detail=f"{total:,} supporters, {run.reference}{note}",
    )
