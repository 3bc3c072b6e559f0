"""A campaign's sends: its launch (now or at its launch time), "send to the remaining" after a
stop, a group's "launch after success", and copying a campaign into a new draft.

Each send that changes the campaign is one transaction that begins with a conditional UPDATE of
the campaign's status (only a draft can be launched, only a stopped campaign sent to the rest),
so any number of concurrent requests make exactly one run. The run row is the record of a
scheduled launch; its timed RQ job is derived from it, and fires only while that run is still
the campaign's launch."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, and_, case, select, update

from webapp.engine import queueing
from webapp.engine.runs import arm_timed_job, dispatch, new_run
from webapp.engine.transitions import log
from webapp.extensions import db
from webapp.jobtypes.email_campaign import EmailCampaign
from webapp.models.base import utcnow
from webapp.models.campaigns import Campaign, CampaignStatus
from webapp.models.runs import Run
from webapp.models.users import User
from webapp.rules.states import RunState

ALREADY_LAUNCHED = "This campaign was already launched or scheduled; it was not sent again."


class LaunchRefused(ValueError):
    """A send that does not apply to the campaign as it is now (shown to the user)."""


def _claim(campaign_id: int, from_status: CampaignStatus, to_status) -> Campaign | None:
    """Move the campaign out of `from_status` as this transaction's first statement; None when
    another request already did (the database lets only one of them change the row)."""
    db.session.commit()  # end any read: the UPDATE below opens the transaction and takes the lock
    # an UPDATE's result is a CursorResult (Session.execute is typed as returning a Result)
    claimed = cast(
        CursorResult[Any],
        db.session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == from_status.value)
            .values(status=to_status, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if not claimed:
        db.session.rollback()
        return None
    return db.session.get(Campaign, campaign_id, populate_existing=True)


def launch(campaign_id: int, user: User) -> Run:
    """Launch a draft campaign now, or schedule it when its launch time is ahead: one run,
    however many times this is asked at once."""
    queueing.require_queue()  # refused before anything is written when Redis is down
    now = utcnow()
    ahead = and_(Campaign.launch_at.is_not(None), Campaign.launch_at > now)
    campaign = _claim(
        campaign_id,
        CampaignStatus.DRAFT,
        case((ahead, CampaignStatus.SCHEDULED.value), else_=CampaignStatus.LAUNCHED.value),
    )
    if campaign is None:
        raise LaunchRefused(ALREADY_LAUNCHED)
    if campaign.job is None:
        db.session.rollback()
        raise LaunchRefused("This campaign has lost its job and cannot be launched.")
    scheduled = campaign.status is CampaignStatus.SCHEDULED
    if scheduled:
        run = new_run(
            campaign.job, user, RunState.SCHEDULED, trigger="manual", scheduled_for=campaign.launch_at
        )
        log(
            run,
            f"Run #{run.number}: launch of “{campaign.name}” scheduled by "
            f"{user.display_name} for its launch time.",
        )
    else:
        run = new_run(campaign.job, user, RunState.QUEUED, trigger="manual")
        log(run, f"Run #{run.number}: “{campaign.name}” launched by {user.display_name}.")
    campaign.launch_run_id = run.id
    db.session.commit()
    if scheduled:
        arm_timed_job(run)
    else:
        dispatch()
    return run


def sent_by(run: Run) -> list[int]:
    """The runs of this campaign's launch whose recipients must not get it again: a "send to
    the remaining" carries the runs before it in its checkpoint."""
    return [*(run.checkpoint or {}).get("not_sent_by", []), run.id]


def remaining_size(campaign: Campaign) -> tuple[int, int]:
    """(audience members not reached by the stopped launch, how many of them are suppressed)."""
    from webapp.mailing.audience import audience_sizes

    return audience_sizes(campaign, not_sent_by=sent_by(campaign.launch_run) if campaign.launch_run else [])


def send_remaining(campaign_id: int, user: User) -> Run:
    """Send a stopped campaign to those of its audience its launch did not reach yet; nobody
    who received it gets it again, and concurrent requests make one run."""
    queueing.require_queue()
    campaign = _claim(campaign_id, CampaignStatus.STOPPED, CampaignStatus.LAUNCHED.value)
    if campaign is None:
        raise LaunchRefused("This campaign is not stopped; nothing more was sent.")
    stopped = campaign.launch_run
    if campaign.job is None or stopped is None:
        db.session.rollback()
        raise LaunchRefused("This campaign's launch is gone; copy it into a new draft instead.")
    run = new_run(campaign.job, user, RunState.QUEUED, trigger="manual")
    run.checkpoint = {"not_sent_by": sent_by(stopped)}
    log(
        run,
        f"Run #{run.number}: “{campaign.name}” sent to the remaining by "
        f"{user.display_name}; those reached by run #{stopped.number} are left out.",
    )
    campaign.launch_run_id = run.id
    db.session.commit()
    dispatch()
    return run


def send_after_group(campaign_id: int, group_run: Run) -> Run | None:
    """A new send of a campaign after a successful group run (its "launch after success"). The
    campaign's own launch — status, launch time, scheduled run — is not touched."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.job is None or campaign.owner_id != group_run.owner_id:
        return None
    sent = select(Run).where(Run.job_id == campaign.job.id, Run.origin_run_id == group_run.id).limit(1)
    if (earlier := db.session.execute(sent).scalar()) is not None:  # this follow-up done twice
        return earlier
    run = new_run(
        campaign.job, group_run.started_by_id, RunState.QUEUED, trigger="group", origin_run_id=group_run.id
    )
    log(
        run,
        f"Run #{run.number}: “{campaign.name}” sent after group “{group_run.job_name}” "
        f"run #{group_run.number} succeeded.",
    )
    log(group_run, f"Launched campaign “{campaign.name}”: run #{run.number}.")
    db.session.commit()
    dispatch()
    return run


def copy_campaign(campaign: Campaign, user: User) -> Campaign:
    """A new draft with the campaign's content and audience (no launch time: choose one)."""
    from webapp.models.jobs import Job

    name = f"Copy of {campaign.name}"[:200]
    job = Job(owner_id=user.id, job_type=EmailCampaign.key, name=name, params={})
    copy = Campaign(
        owner_id=user.id,
        job=job,
        name=name,
        from_address=campaign.from_address,
        subject=campaign.subject,
        html_body=campaign.html_body,
        text_body=campaign.text_body,
        audience=campaign.audience,
        filter_id=campaign.filter_id if campaign.owner_id == user.id else None,
        notify_email=campaign.notify_email,
        status=CampaignStatus.DRAFT,
    )
    db.session.add_all([job, copy])
    db.session.flush()
    job.params = {"campaign_id": copy.id}
    db.session.commit()
    return copy
