"""Campaigns by the API: list, read, preview, launch (confirmed, after the audience size) and
cancel a scheduled launch. Each does what the campaign's page does, with the page's guards: a
campaign launches once, however often or however concurrently it is asked."""

from __future__ import annotations

from flask_login import current_user
from pydantic import BaseModel, Field

from webapp.api.v1.answers import run_out
from webapp.api.v1.core import fail, iso
from webapp.api.v1.runs import act_on_run
from webapp.api.v1.schemas import Body, Closed, RunOut
from webapp.api.v1.spec import operation
from webapp.campaigns.common import (
    campaign_or_404,
    message_parts,
    preview_for,
    recent_sends,
    record_send,
    visible_campaigns,
)
from webapp.engine import launches
from webapp.engine.queueing import QueueUnavailable
from webapp.mailing.audience import AudienceError, audience_sizes, describe_rule
from webapp.models.campaigns import Campaign, CampaignStatus
from webapp.rules.states import RunState

TAG = "Campaigns"


class CampaignOut(BaseModel):
    """A campaign: its content, audience, status and launch."""

    id: int
    name: str
    owner: str = Field(description="the email of the user the campaign belongs to")
    status: str = Field(description="draft, scheduled, launched or stopped")
    from_address: str
    subject: str
    audience: str = Field(description="opted_in, or filter (a saved filter's rule)")
    filter: str | None = Field(description="the saved filter's name and rule, for a filter audience")
    notify_email: str
    launch_at: str | None = Field(description="its own launch time; null: it launches when launched")
    launch_run_id: int | None = Field(description="the run of its launch (or its send to the remaining)")
    created_at: str | None
    updated_at: str | None


class CampaignList(BaseModel):
    """Campaigns, newest first."""

    campaigns: list[CampaignOut]


class CampaignDetail(CampaignOut):
    """A campaign with its bodies and its last 20 sends, newest first."""

    html_body: str
    text_body: str
    sends: list[RunOut]


class PreviewQuery(Closed):
    """Whom to preview the email for."""

    email: str = Field(default="", max_length=255, description="a supporter's email; else the first")


class PreviewOut(BaseModel):
    """The email as a supporter would get it."""

    supporter: str | None = Field(description="whose data it was rendered with; null: a sample person")
    from_address: str
    to: str
    subject: str
    text: str | None
    html: str | None


class Audience(BaseModel):
    """How many the launch would email: the audience, less those suppressed (not opted in, or
    on the suppression list)."""

    total: int
    suppressed: int
    to_send: int


class LaunchIn(Body):
    """The launch's confirmation."""

    confirm: bool = Field(default=False, description="true to launch; otherwise the audience size comes back")


class LaunchOut(BaseModel):
    """The launch: what happened, to how many, its run and the campaign as it is now."""

    message: str
    audience: Audience
    run: RunOut
    campaign: CampaignOut


class CampaignActionOut(BaseModel):
    """What an action did, and the campaign as it is now."""

    message: str
    campaign: CampaignOut


def campaign_out(campaign: Campaign) -> CampaignOut:
    """A campaign as the API shows it."""
    found = campaign.saved_filter if campaign.audience == "filter" else None
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        owner=campaign.owner.email,
        status=campaign.status.value,
        from_address=campaign.from_address,
        subject=campaign.subject,
        audience=campaign.audience,
        filter=f"{found.name} ({describe_rule(found.rule)})" if found else None,
        notify_email=campaign.notify_email,
        launch_at=iso(campaign.launch_at),
        launch_run_id=campaign.launch_run_id,
        created_at=iso(campaign.created_at),
        updated_at=iso(campaign.updated_at),
    )


@operation("GET", "/campaigns", tag=TAG, answers={200: CampaignList})
def campaigns():
    """The token's user's campaigns (everyone's for a super admin's token), newest first."""
    return CampaignList(campaigns=[campaign_out(found) for found in visible_campaigns()])


@operation("GET", "/campaigns/<int:campaign_id>", tag=TAG, answers={200: CampaignDetail}, errors=(404,))
def campaign(campaign_id: int):
    """One campaign, with its bodies and its last 20 sends."""
    found = campaign_or_404(campaign_id)
    return CampaignDetail(
        **campaign_out(found).model_dump(),
        html_body=found.html_body,
        text_body=found.text_body,
        sends=[run_out(run) for run in recent_sends(found)],
    )


@operation(
    "GET",
    "/campaigns/<int:campaign_id>/preview",
    tag=TAG,
    answers={200: PreviewOut},
    query=PreviewQuery,
    errors=(404, 409),
)
def campaign_preview(campaign_id: int, query: PreviewQuery):
    """The email rendered for the supporter with `email`, or for the first supporter (a sample
    person when there is none), as the Preview page shows it.

    404 when no supporter has that email; 409 when the campaign does not render (the reason)."""
    found = campaign_or_404(campaign_id)
    email = query.email.strip().lower()
    supporter, message, problem = preview_for(found, email)
    if message is None:
        raise fail(404 if supporter is None and email else 409, problem or "the email cannot be rendered")
    parts = message_parts(message)
    return PreviewOut(
        supporter=supporter.email if supporter else None,
        from_address=str(message["From"]),
        to=str(message["To"] or ""),
        subject=str(message["Subject"]),
        text=parts.get("text/plain"),
        html=parts.get("text/html"),
    )


def _audience(campaign: Campaign) -> Audience:
    """How many the launch would email, as its confirmation page counts them (409: a bad rule)."""
    try:
        total, suppressed = audience_sizes(campaign)
    except AudienceError as problem:
        raise fail(409, f"the audience rule is invalid: {problem}") from None
    return Audience(total=total, suppressed=suppressed, to_send=total - suppressed)


@operation(
    "POST",
    "/campaigns/<int:campaign_id>/launch",
    tag=TAG,
    answers={201: LaunchOut},
    body=LaunchIn,
    errors=(400, 403, 404, 409, 415, 503),
    found=campaign_or_404,
)
def launch_campaign(campaign_id: int, body: LaunchIn):
    """Launch a draft campaign: now, or scheduled for its own launch time.

    Without `"confirm": true` nothing is sent: the answer is a 409 with the code
    `confirmation_required` and the audience size (`audience`: total, suppressed, to_send), as
    the page's confirmation shows it. With it, the campaign launches as its Launch button does,
    once: a campaign already launched or scheduled (a retried or concurrent request) is a 409
    and nobody is emailed twice."""
    found = campaign_or_404(campaign_id)
    if found.status is not CampaignStatus.DRAFT:
        raise fail(409, launches.ALREADY_LAUNCHED, launch_run_id=found.launch_run_id)
    audience = _audience(found)
    if not body.confirm:
        when = "scheduled for its launch time" if found.launch_at else "sent now"
        raise fail(
            409,
            f'send {{"confirm": true}} to launch: {audience.to_send:,} of {audience.total:,} '
            f"supporters would be emailed ({audience.suppressed:,} suppressed), {when}",
            code="confirmation_required",
            audience=audience.model_dump(),
        )
    try:
        run = launches.launch(found.id, current_user)
    except launches.LaunchRefused as refused:
        raise fail(409, str(refused)) from None
    except QueueUnavailable as problem:
        raise fail(503, str(problem)) from None
    record_send(found, run, audience.total, remaining=False, note=" (API)")
    scheduled = run.state is RunState.SCHEDULED
    return LaunchOut(
        message="Scheduled: it launches on its own at its launch time." if scheduled else "Launched.",
        audience=audience,
        run=run_out(run),
        campaign=campaign_out(found),
    ), 201


@operation(
    "POST",
    "/campaigns/<int:campaign_id>/cancel",
    tag=TAG,
    answers={200: CampaignActionOut},
    errors=(403, 404, 409),
)
def cancel_campaign_launch(campaign_id: int):
    """Cancel a scheduled launch before its launch time: nobody is emailed and the campaign is
    a draft again (as Stop on its scheduled run does).

    409 when the campaign is not scheduled."""
    found = campaign_or_404(campaign_id)
    run = found.launch_run
    if found.status is not CampaignStatus.SCHEDULED or run is None or run.state is not RunState.SCHEDULED:
        raise fail(409, f"only a scheduled launch can be cancelled: this campaign is {found.status.value}")
    done = act_on_run(run, "stop")
    return CampaignActionOut(message=done.message, campaign=campaign_out(found))
