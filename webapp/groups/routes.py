"""Groups: the list, Create Group, a group's page with its runs, Run now, Deactivate, Delete.
The four-step wizard lives in wizard.py."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from webapp import audit, once
from webapp.charts import group_runs_chart
from webapp.engine import chains
from webapp.engine import runs as engine
from webapp.extensions import db
from webapp.formutil import local_today
from webapp.groups.activation import deactivate_group
from webapp.groups.forms import CreateGroupForm
from webapp.groups.queries import (
    GROUP,
    group_or_404,
    group_state,
    jobs_by_id,
    last_runs,
    owner_campaigns,
    step_names,
    steps_by_run,
    timeline,
)
from webapp.jobs.forms import ConfirmForm
from webapp.jobs.saving import just_saved
from webapp.jobs.schedule_forms import schedule_summary
from webapp.jobtypes.job_group import MIN_STEPS, GroupDefinition
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.paging import Keyset, NumberedPage, offset
from webapp.request_args import page_arg
from webapp.web import queue_place

bp = Blueprint("groups", __name__, url_prefix="/groups")
RUNS_PER_PAGE = 20


@bp.route("/")
@login_required
def index():
    """The user's groups (every user's for a super admin), a page at a time."""
    query = select(Job).where(Job.job_type == GROUP)
    if not current_user.is_super_admin:
        query = query.where(Job.owner_id == current_user.id)
    total = db.session.execute(query.with_only_columns(func.count())).scalar_one()
    page, per_page = page_arg(), current_app.config["PAGE_SIZE"]
    groups = (
        db.session.execute(
            query.options(
                selectinload(Job.owner), selectinload(Job.schedule), selectinload(Job.group_steps)
            )  # GroupDefinition.of reads them
            .order_by(Job.name, Job.id)
            .offset(offset(page, per_page))
            .limit(per_page)
        )
        .scalars()
        .all()
    )
    today = local_today()
    states = {g.id: group_state(GroupDefinition.of(g), today) for g in groups}
    return render_template(
        "groups/index.html",
        groups=groups,
        states=states,
        last=last_runs([g.id for g in groups]),
        form=ConfirmForm(),
        page=NumberedPage(list(groups), page, per_page, total),
    )


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    """Create Group: a name and a description make a draft; the wizard opens on step 1."""
    form = CreateGroupForm()
    if form.validate_on_submit():
        group = Job(owner_id=current_user.id, job_type=GROUP, name=form.name.data.strip(), params={})
        GroupDefinition(description=(form.description.data or "").strip()).save_to(group)
        if (twin := just_saved(group)) is not None:  # the form sent again: the group it made
            return redirect(url_for("groups.wizard", group_id=twin.id, step=1))
        db.session.add(group)
        db.session.commit()
        audit.record("group.created", group, kind="group")
        flash(f"Group “{group.name}” created as a draft. Choose its jobs.", "success")
        return redirect(url_for("groups.wizard", group_id=group.id, step=1))
    return render_template("groups/new.html", form=form), 400 if form.errors else 200


@bp.route("/<int:group_id>")
@login_required
def detail(group_id: int):
    """A group: its definition, schedule, expiration and its runs with their steps."""
    group = group_or_404(group_id)
    definition = GroupDefinition.of(group)
    query = select(Run).where(Run.job_id == group.id, Run.state != "scheduled")
    keyset = Keyset.from_request(RUNS_PER_PAGE)
    page = keyset.page(db.session.execute(keyset.narrow(query, Run.id)).scalars().all())
    runs = page.items
    steps = steps_by_run([run.id for run in runs])
    names = step_names(group)
    jobs = jobs_by_id(definition.steps)
    campaigns = [c for c in owner_campaigns(group.owner_id) if c.id in definition.campaign_ids]
    return render_template(
        "groups/detail.html",
        group=group,
        definition=definition,
        runs=runs,
        timelines={run.id: timeline(run, steps[run.id], names) for run in runs},
        page=page,
        runs_chart=group_runs_chart(group),
        steps=[(job_id, jobs.get(job_id)) for job_id in definition.steps],
        campaigns=campaigns,
        state=group_state(definition, local_today()),
        schedule_text=schedule_summary(group.schedule),
        form=ConfirmForm(),
    )


@bp.route("/<int:group_id>/run", methods=["POST"])
@login_required
def run_now(group_id: int):
    """Start a run of the group now (it waits while another run of it is busy)."""
    group = group_or_404(group_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if len(GroupDefinition.of(group).steps) < MIN_STEPS:
        flash(f"“{group.name}” cannot run: a group needs at least {MIN_STEPS} jobs.", "error")
        return redirect(url_for("groups.wizard", group_id=group.id, step=1))
    said = "That Run now was sent twice: it started one group run."
    if (again := once.sent_again(said, url_for("groups.detail", group_id=group.id))) is not None:
        return again
    run = engine.start_run(group, current_user)
    once.remember(url_for("runs.detail", run_id=run.id))
    audit.record("run.started", run, detail=f"Group run #{run.number}, Run now")
    if run.state.value == "queued":
        flash(f"Group run #{run.number} is queued, {queue_place(run)}.", "info")
    else:
        flash(f"Group run #{run.number} started.", "success")
    return redirect(url_for("runs.detail", run_id=run.id))


@bp.route("/<int:group_id>/deactivate", methods=["POST"])
@login_required
def deactivate(group_id: int):
    """Deactivate a group: nothing runs by itself until it is activated again."""
    group = group_or_404(group_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    deactivate_group(group)
    audit.record("group.deactivated", group, kind="group")
    flash(f"“{group.name}” was deactivated: its schedule is off until you activate it again.", "success")
    if request.form.get("back") == "list":
        return redirect(url_for("groups.index"))
    return redirect(url_for("groups.detail", group_id=group.id))


@bp.route("/<int:group_id>/delete", methods=["POST"])
@login_required
def delete(group_id: int):
    """Delete a group's definition for good; its runs stay in History."""
    group = group_or_404(group_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name = group.name
    audit.record("group.deleted", group, kind="group", commit=False)
    chains.delete_group(group)
    current_app.logger.info("group %s deleted by %s", group_id, current_user.email)
    flash(f"Group “{name}” was deleted. Its runs stay in History.", "success")
    return redirect(url_for("groups.index"))
