"""The group wizard: 1 Jobs, 2 After success, 3 Notifications, 4 Schedule (with expiration,
Save and Activate). Every step is a plain form POST; with htmx the wizard region is swapped.
On step 1 every change to the list (a button or drag and drop) is saved at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import login_required

from webapp import audit
from webapp.extensions import db
from webapp.formutil import local_today
from webapp.groups.activation import activate_group, deactivate_group
from webapp.groups.forms import CampaignsForm, ExpirationForm, NotifyForm, split_addresses
from webapp.groups.queries import (
    candidate_jobs,
    group_or_404,
    jobs_by_id,
    owner_campaigns,
)
from webapp.groups.routes import bp
from webapp.jobs.schedule_forms import schedule_summary
from webapp.jobtypes.job_group import MIN_STEPS, GroupDefinition
from webapp.models.campaigns import Campaign, CampaignStatus
from webapp.models.jobs import Job
from webapp.permissions import usable_ids
from webapp.request_args import as_int
from webapp.rules.clock import format_day
from webapp.web import is_htmx, localtime

STEPS = {1: "Jobs", 2: "After success", 3: "Notifications", 4: "Schedule"}
TOO_FEW = f"A group needs at least {MIN_STEPS} jobs."
ADD_MORE = f"Add at least {MIN_STEPS} jobs to the group."
NO_EXPIRATION = "Set an expiration date or choose Never expires before saving."


@bp.route("/<int:group_id>/edit/<int:step>", methods=["GET", "POST"])
@login_required
def wizard(group_id: int, step: int):
    """One step of the group wizard: show it, or save it (and go Back or Next)."""
    group = group_or_404(group_id)
    if step not in STEPS:
        abort(404)
    if request.method == "GET":
        return _show(group, step)
    return _POSTS[step](group)


def _show(
    group: Job,
    step: int,
    *,
    status: int = 200,
    message: str | None = None,
    problems: list[str] | None = None,
    **overrides: Any,
):
    """The wizard on `step`: the whole page, or only its region for htmx (always 200 then,
    as htmx leaves error responses unswapped)."""
    context = {
        "group": group,
        "step": step,
        "steps": STEPS,
        "message": message,
        "problems": problems or [],
        "wizard_url": url_for("groups.wizard", group_id=group.id, step=step),
        **_CONTEXTS[step](group, **overrides),
    }
    if is_htmx():
        response = make_response(render_template("groups/partials/_wizard.html", **context))
        response.headers["HX-Push-Url"] = context["wizard_url"]
        return response
    return make_response(render_template("groups/wizard.html", **context), status)


def _edited(group: Job, detail: str) -> None:
    """Commit a saved wizard step with its audit entry."""
    audit.record("group.edited", group, kind="group", detail=detail, commit=False)
    db.session.commit()


def _go(group: Job, step: int, message: str):
    """After a step was saved: stay, or go Back or Next."""
    nav = request.form.get("nav", "save")
    target = min(max({"next": step + 1, "back": step - 1}.get(nav, step), 1), len(STEPS))
    if is_htmx():
        return _show(group, target, message=message)
    flash(message, "success")
    return redirect(url_for("groups.wizard", group_id=group.id, step=target))


# ------------------------------------------------------------------------------ step 1: jobs


def _jobs_context(group: Job, refused: bool = False, saved: bool = False) -> dict[str, Any]:
    """Step 1 as saved (every change is saved at once), with one status under the lists: what
    is missing (an error once Next was `refused`), else "Saved." after a change."""
    chosen = GroupDefinition.of(group).steps
    available = candidate_jobs(group.owner_id)
    jobs = {job.id: job for job in available}
    jobs.update(jobs_by_id([i for i in chosen if i not in jobs]))
    return {
        "chosen": [(job_id, jobs.get(job_id)) for job_id in chosen],
        "seen": ",".join(map(str, chosen)),  # the list this page shows (see _post_jobs)
        "available": [job for job in available if job.id not in chosen],
        "too_few": ADD_MORE if len(chosen) < MIN_STEPS else None,
        "refused": refused,
        "saved": saved,
    }


def _apply(op: str, chosen: list[int], allowed: set[int]) -> list[int]:
    """Add, remove, or move one job up or down (op is 'add:12', 'up:12', ...)."""
    verb, _, raw = op.partition(":")
    job_id, chosen = as_int(raw), list(chosen)
    if job_id is None:  # not an id
        return chosen
    if verb == "add" and job_id in allowed and job_id not in chosen:
        chosen.append(job_id)
    elif verb == "remove" and job_id in chosen:
        chosen.remove(job_id)
    elif verb in ("up", "down") and job_id in chosen:
        here = chosen.index(job_id)
        there = here - 1 if verb == "up" else here + 1
        if 0 <= there < len(chosen):
            chosen[here], chosen[there] = chosen[there], chosen[here]
    return chosen


def _post_jobs(group: Job):
    """Step 1: every change to the list (Add, Remove, Up, Down, drag and drop) is saved at once,
    as Save and Next do; Next goes on only with enough jobs."""
    definition = GroupDefinition.of(group)
    allowed = {job.id for job in candidate_jobs(group.owner_id)} | set(definition.steps)
    op = request.form.get("op", "")
    if op.partition(":")[2]:  # one job added, removed or moved: to the list as saved now
        chosen = _apply(op, definition.steps, allowed)
    else:  # the list as the page holds it (dragged into a new order, or saved): only if the
        # page showed the list as saved (another tab or person changed it meanwhile: shown)
        seen = request.form.get("seen")  # (a script that sends no "seen" is taken at its word)
        if seen is not None and seen != ",".join(map(str, definition.steps)):
            return _show(
                group,
                1,
                status=409,
                problems=[
                    "The jobs of this group were changed meanwhile (in another tab or by "
                    "someone else): here they are as saved now. Make your change again."
                ],
            )
        posted = usable_ids(
            Job, (as_int(value) for value in request.form.getlist("steps")), group.owner_id
        )  # the group owner's jobs only; the rest are dropped
        chosen = [job_id for job_id in posted if job_id in allowed]
    if chosen != definition.steps:
        definition.steps = chosen
        definition.save_to(group)
        _edited(group, f"Jobs: {len(chosen)} step{'s' if len(chosen) != 1 else ''}")
    if not op:  # Save or Next
        if len(chosen) < MIN_STEPS:  # saved too; the one thing said is what is missing
            return _show(group, 1, status=400, refused=True)
        return _go(group, 1, f"Jobs saved: {len(chosen)} steps.")
    return _show(group, 1, saved=True)  # the list as saved, and "Saved." (or what is missing)


# --------------------------------------------------------------------- step 2: after success


def _campaigns_form(group: Job, form: CampaignsForm | None = None) -> CampaignsForm:
    if form is None:
        definition = GroupDefinition.of(group)
        form = CampaignsForm(
            formdata=None,
            data={"launch_campaigns": definition.launch_campaigns, "campaign_ids": definition.campaign_ids},
        )
    form.campaign_ids.choices = [(c.id, c.name) for c in owner_campaigns(group.owner_id)]
    return form


def _campaigns_context(group: Job, form: CampaignsForm | None = None) -> dict[str, Any]:
    form = _campaigns_form(group, form)
    chosen = set(form.campaign_ids.data or [])
    campaigns = owner_campaigns(group.owner_id)
    warnings = [
        f"“{c.name}” also has its own launch time ({localtime(c.launch_at)}): it will "
        "launch on its own schedule whether or not the group run has finished, and "
        "each successful group run sends it once more."
        for c in campaigns
        if c.id in chosen and c.launch_at is not None and c.status is CampaignStatus.SCHEDULED
    ]
    return {"form": form, "campaigns": {c.id: c for c in campaigns}, "warnings": warnings}


def _post_campaigns(group: Job):
    """Step 2: which campaigns launch after a successful run (op=preview only re-renders)."""
    form = _campaigns_form(group, CampaignsForm())
    # the group owner's campaigns only; any other id is dropped, never stored nor named
    form.campaign_ids.data = usable_ids(Campaign, form.campaign_ids.data or [], group.owner_id)
    if request.form.get("op") == "preview":
        form.validate()
        form.campaign_ids.errors = []
        return _show(group, 2, form=form)
    if not form.validate():
        return _show(group, 2, status=400, form=form)
    definition = GroupDefinition.of(group)
    definition.launch_campaigns = bool(form.launch_campaigns.data)
    definition.campaign_ids = list(form.campaign_ids.data or [])
    definition.save_to(group)
    _edited(
        group,
        "After success: "
        + (f"launch campaigns {definition.campaign_ids}" if definition.launch_campaigns else "no campaigns"),
    )
    return _go(group, 2, "Campaigns saved.")


# ---------------------------------------------------------------------- step 3: notifications


def _notify_context(group: Job, form: NotifyForm | None = None) -> dict[str, Any]:
    if form is None:
        definition = GroupDefinition.of(group)
        form = NotifyForm(
            formdata=None,
            data={
                "notify_success": ", ".join(definition.notify_success),
                "notify_failure": ", ".join(definition.notify_failure),
            },
        )
    return {"form": form}


def _post_notify(group: Job):
    """Step 3: who is emailed once the whole group run has ended."""
    form = NotifyForm()
    if not form.validate():
        return _show(group, 3, status=400, form=form)
    definition = GroupDefinition.of(group)
    definition.notify_success = split_addresses(form.notify_success.data)
    definition.notify_failure = split_addresses(form.notify_failure.data)
    definition.save_to(group)
    _edited(
        group,
        f"Notifications: success to {', '.join(definition.notify_success) or 'nobody'}"
        f"; failure to {', '.join(definition.notify_failure) or 'nobody'}",
    )
    return _go(group, 3, "Notifications saved.")


# ------------------------------------------------------------- step 4: schedule and expiration


def _schedule_context(group: Job, form: ExpirationForm | None = None) -> dict[str, Any]:
    definition = GroupDefinition.of(group)
    if form is None:
        form = ExpirationForm(
            formdata=None,
            data={"expires_on": definition.expiry_date, "never_expires": definition.never_expires},
        )
    return {
        "form": form,
        "definition": definition,
        "schedule": group.schedule,
        "schedule_text": schedule_summary(group.schedule),
    }


def _post_schedule(group: Job):
    """Step 4: Save (inactive) or Activate; both need an expiration and enough jobs."""
    form = ExpirationForm()
    activate = request.form.get("nav") == "activate"
    definition = GroupDefinition.of(group)
    problems = []
    if form.validate():
        if not form.never_expires.data and form.expires_on.data is None:
            problems.append(NO_EXPIRATION)
        elif not form.never_expires.data and form.expires_on.data <= local_today():
            form.expires_on.errors.append("The expiration date is in the past: choose a date after today.")
    if len(definition.steps) < MIN_STEPS:
        problems.append(TOO_FEW)
    if problems or form.errors:
        return _show(group, 4, status=400, form=form, problems=problems)
    expires_on = None if form.never_expires.data else form.expires_on.data.isoformat()
    if expires_on != definition.expires_on:
        definition.expiry_warned = False
    definition.never_expires, definition.expires_on = bool(form.never_expires.data), expires_on
    definition.save_to(group)
    db.session.commit()
    message = activate_group(group) if activate else _save_inactive(group)
    audit.record(
        "group.activated" if activate else "group.edited",
        group,
        kind="group",
        detail=f"Expires {format_day(date.fromisoformat(expires_on)) if expires_on else 'never'}; {message}",
    )
    flash(message, "success")
    target = url_for("groups.detail", group_id=group.id)
    if is_htmx():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def _save_inactive(group: Job) -> str:
    deactivate_group(group)
    return f"“{group.name}” was saved. It is not active: nothing runs by itself until you activate it."


_CONTEXTS: dict[int, Callable[..., dict[str, Any]]] = {
    1: _jobs_context,
    2: _campaigns_context,
    3: _notify_context,
    4: _schedule_context,
}
_POSTS = {1: _post_jobs, 2: _post_campaigns, 3: _post_notify, 4: _post_schedule}
