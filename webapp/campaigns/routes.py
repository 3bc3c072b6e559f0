"""Campaigns: list, create, edit, preview, launch (with confirmation); saved filters."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from webapp import audit, once
from webapp.campaigns.common import campaigns_page, message_parts, preview_for, record_send, sends_page
from webapp.campaigns.forms import AUDIENCES, CampaignForm, merge_field_help
from webapp.engine import launches
from webapp.engine.queueing import QueueUnavailable
from webapp.extensions import db
from webapp.jobs.forms import ConfirmForm
from webapp.jobtypes.email_campaign import EmailCampaign
from webapp.mailing.audience import AudienceError, audience_sizes, describe_rule
from webapp.models.base import utcnow
from webapp.models.campaigns import Campaign, CampaignStatus, SavedFilter
from webapp.models.jobs import Job
from webapp.paging import Keyset
from webapp.permissions import seen_or_404
from webapp.rules.clock import check_plannable, local_to_utc, utc_to_local_naive
from webapp.rules.states import RunState
from webapp.security import email_html

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")


def _filters(owner_id: int) -> list[SavedFilter]:
    """The saved filters of `owner_id`: the ones a campaign of theirs may use."""
    return list(
        db.session.execute(
            select(SavedFilter).where(SavedFilter.owner_id == owner_id).order_by(SavedFilter.name)
        ).scalars()
    )


@bp.route("/")
@login_required
def index():
    """The user's campaigns (every user's for a super admin), newest first, a page at a time."""
    page = campaigns_page(Keyset.from_request(current_app.config["PAGE_SIZE"]))
    return render_template("campaigns/index.html", campaigns=page.items, page=page)


def _form(campaign: Campaign | None) -> CampaignForm:
    """The campaign form, offering the saved filters of the campaign's owner (the user's own for
    a new one): a posted filter id that is not one of them is refused on the form (CampaignForm)."""
    owner_id = campaign.owner_id if campaign is not None else current_user.id
    form = CampaignForm(obj=campaign)
    form.filter_id.choices = [(0, "— choose —")] + [(f.id, f.name) for f in _filters(owner_id)]
    if request.method == "GET" and campaign is not None and campaign.launch_at:
        form.launch_at.data = utc_to_local_naive(campaign.launch_at, current_app.config["TIMEZONE"])
    return form


def _save(form: CampaignForm, campaign: Campaign | None) -> Campaign | None:
    """Apply a valid form; None (with the field error set) when the launch time is past."""
    launch_at = None
    if form.launch_at.data:
        if problem := check_plannable(form.launch_at.data):
            form.launch_at.errors = [problem]
            return None
        launch_at = local_to_utc(form.launch_at.data, current_app.config["TIMEZONE"])
        if launch_at <= utcnow():
            form.launch_at.errors = ["The launch time is in the past."]
            return None
    created = campaign is None
    if campaign is None:
        job = Job(owner_id=current_user.id, job_type=EmailCampaign.key, name=form.name.data, params={})
        campaign = Campaign(owner_id=current_user.id, job=job)
        db.session.add_all([job, campaign])
    form.populate_obj(campaign)
    campaign.filter_id = form.filter_id.data or None if form.audience.data == "filter" else None
    campaign.launch_at = launch_at
    campaign.notify_email = form.notify_email.data or ""
    db.session.flush()
    campaign.job.name = campaign.name
    campaign.job.params = {"campaign_id": campaign.id}
    audit.record(
        "campaign.created" if created else "campaign.edited",
        campaign,
        commit=False,
        detail=f"Subject: {campaign.subject}",
    )
    db.session.commit()
    return campaign


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    """Create a campaign (a draft)."""
    form = _form(None)
    if form.validate_on_submit():
        said = "The form was sent twice: it saved one campaign."
        if (again := once.sent_again(said, url_for("campaigns.index"))) is not None:
            return again
        if (campaign := _save(form, None)) is None:
            once.forget()
        else:
            once.remember(url_for("campaigns.detail", campaign_id=campaign.id))
            flash(f"Campaign “{campaign.name}” saved as a draft.", "success")
            return redirect(url_for("campaigns.detail", campaign_id=campaign.id))
    return render_template("campaigns/form.html", form=form, campaign=None, merge_help=merge_field_help())


@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
@login_required
def edit(campaign_id: int):
    """Edit a draft campaign."""
    campaign = seen_or_404(Campaign, campaign_id)
    if campaign.status is not CampaignStatus.DRAFT:
        why = {
            CampaignStatus.SCHEDULED: "Cancel its scheduled launch first (on this page), then edit it.",
            CampaignStatus.LAUNCHED: "It was launched: its emails went out as they were.",
            CampaignStatus.STOPPED: "It was launched and stopped part-way: what was sent stays as it was.",
        }.get(campaign.status, "")
        flash(f"Only a draft can be edited. {why}".strip(), "warning")
        return redirect(url_for("campaigns.detail", campaign_id=campaign.id))
    form = _form(campaign)
    if form.validate_on_submit() and _save(form, campaign) is not None:
        flash("Campaign saved.", "success")
        return redirect(url_for("campaigns.detail", campaign_id=campaign.id))
    return render_template("campaigns/form.html", form=form, campaign=campaign, merge_help=merge_field_help())


@bp.route("/<int:campaign_id>")
@login_required
def detail(campaign_id: int):
    """A campaign: its content, audience, preview and runs (a page at a time)."""
    campaign = seen_or_404(Campaign, campaign_id)
    page = sends_page(campaign, Keyset.from_request(current_app.config["PAGE_SIZE"]))
    return render_template(
        "campaigns/detail.html",
        campaign=campaign,
        runs=page.items,
        page=page,
        audiences=AUDIENCES,
        form=ConfirmForm(),
        rule=describe_rule(campaign.saved_filter.rule) if campaign.saved_filter else "",
    )


@bp.route("/<int:campaign_id>/preview")
@login_required
def preview(campaign_id: int):
    """The email rendered for a chosen supporter (by email), or for the first in the audience."""
    campaign = seen_or_404(Campaign, campaign_id)
    email = request.args.get("email", "").strip().lower()
    supporter, message, problem = preview_for(campaign, email)
    return render_template(
        "campaigns/preview.html",
        campaign=campaign,
        supporter=supporter,
        message=message,
        parts=message_parts(message),
        problem=problem,
        email=email,
    )


@bp.route("/<int:campaign_id>/preview.html")
@login_required
def preview_html(campaign_id: int):
    """The HTML part of that preview on its own, for the preview page's sandboxed frame."""
    campaign = seen_or_404(Campaign, campaign_id)
    _supporter, message, _problem = preview_for(campaign, request.args.get("email", "").strip().lower())
    html = message_parts(message).get("text/html")
    if not html:
        abort(404)
    return email_html(html)


@bp.route("/<int:campaign_id>/launch", methods=["GET", "POST"])
@login_required
def launch(campaign_id: int):
    """Confirm with the audience size, then launch (or schedule) the campaign: once, however
    often the form is sent."""
    campaign = seen_or_404(Campaign, campaign_id)
    if campaign.status is not CampaignStatus.DRAFT:
        return _not_sent(campaign.id, launches.ALREADY_LAUNCHED)
    return _confirm_then_send(campaign, audience_sizes, launches.launch, remaining=False)


@bp.route("/<int:campaign_id>/remaining", methods=["GET", "POST"])
@login_required
def send_remaining(campaign_id: int):
    """After a stop: confirm with the number not reached yet, then send to them only."""
    campaign = seen_or_404(Campaign, campaign_id)
    if campaign.status is not CampaignStatus.STOPPED:
        return _not_sent(
            campaign.id,
            "Only a stopped campaign can be sent to the remaining supporters; nothing more was sent.",
        )
    return _confirm_then_send(campaign, launches.remaining_size, launches.send_remaining, remaining=True)


def _confirm_then_send(campaign: Campaign, sizes, send, *, remaining: bool):
    """The confirmation page of a send (how many will be emailed); on POST the send itself,
    which the database lets happen once."""
    try:
        total, suppressed = sizes(campaign)
    except AudienceError as exc:
        flash(f"The audience rule is invalid: {exc}.", "error")
        return redirect(url_for("campaigns.detail", campaign_id=campaign.id))
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            run = send(campaign.id, current_user)
        except launches.LaunchRefused as refused:
            return _not_sent(campaign.id, str(refused))
        except QueueUnavailable as exc:
            flash(str(exc), "error")
            return redirect(url_for("campaigns.detail", campaign_id=campaign.id))
        record_send(campaign, run, total, remaining=remaining)
        if remaining:
            flash(f"“{campaign.name}” is being sent to the remaining supporters.", "success")
        elif run.state is RunState.SCHEDULED:
            flash(f"“{campaign.name}” is scheduled; it launches on its own at its launch time.", "success")
        else:
            flash(f"“{campaign.name}” launched.", "success")
        return redirect(url_for("runs.detail", run_id=run.id))
    return render_template(
        "campaigns/launch.html",
        campaign=campaign,
        total=total,
        suppressed=suppressed,
        form=form,
        remaining=remaining,
    )


def _not_sent(campaign_id: int, why: str):
    """A send asked for again (a double click, a second tab, a retried request) or that no
    longer applies: say so, and show the campaign's launch run if it has one."""
    flash(why, "info")
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is not None and campaign.launch_run_id:
        return redirect(url_for("runs.detail", run_id=campaign.launch_run_id))
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.route("/<int:campaign_id>/copy", methods=["POST"])
@login_required
def copy(campaign_id: int):
    """Copy a campaign (e.g. a stopped one) into a new draft."""
    campaign = seen_or_404(Campaign, campaign_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    said = "Copy was sent twice: it made one draft."
    if (again := once.sent_again(said, url_for("campaigns.index"))) is not None:
        return again
    draft = launches.copy_campaign(campaign, current_user)
    once.remember(url_for("campaigns.detail", campaign_id=draft.id))
    audit.record("campaign.copied", draft, detail=f"Copied from “{campaign.name}” (campaign {campaign.id})")
    flash(f"Copied into the new draft “{draft.name}”.", "success")
    return redirect(url_for("campaigns.detail", campaign_id=draft.id))
