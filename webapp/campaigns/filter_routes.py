"""Saved filters: the list, a new one, editing one and deleting one no campaign still needs."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from webapp import audit, once
from webapp.campaigns.forms import FilterForm
from webapp.campaigns.routes import bp
from webapp.extensions import db
from webapp.jobs.forms import ConfirmForm
from webapp.mailing.audience import AudienceError, describe_rule, rule_conditions
from webapp.models.campaigns import Campaign, CampaignStatus, SavedFilter
from webapp.paging import Keyset
from webapp.permissions import seen_or_404


def _valid_rule(form: FilterForm) -> dict | None:
    """The rule of a validated form, or None with the reason on the name field."""
    rule = form.rule()
    try:
        rule_conditions(rule)
    except AudienceError as exc:
        form.name.errors = [*form.name.errors, f"This filter is invalid: {exc}."]
        return None
    return rule


@bp.route("/filters", methods=["GET", "POST"])
@login_required
def filters():
    """Saved filters: the list (newest first, a page at a time) and a form for a new one."""
    form = FilterForm()
    if form.validate_on_submit() and (rule := _valid_rule(form)) is not None:
        said = "The form was sent twice: it saved one filter."
        if (again := once.sent_again(said, url_for("campaigns.filters"))) is not None:
            return again
        saved = SavedFilter(owner_id=current_user.id, name=form.name.data.strip(), rule=rule)
        db.session.add(saved)
        db.session.flush()
        audit.record("filter.created", saved, kind="filter", detail=describe_rule(rule), commit=False)
        db.session.commit()
        once.remember(url_for("campaigns.filters"))
        flash(f"Filter “{saved.name}” saved.", "success")
        return redirect(url_for("campaigns.filters"))
    keyset = Keyset.from_request(current_app.config["PAGE_SIZE"])
    query = keyset.narrow(select(SavedFilter).where(SavedFilter.owner_id == current_user.id), SavedFilter.id)
    page = keyset.page(db.session.execute(query).scalars().all())
    return render_template(
        "campaigns/filters.html",
        form=form,
        filters=page.items,
        page=page,
        describe=describe_rule,
        delete_form=ConfirmForm(),
    )


def _filter_or_404(filter_id: int) -> SavedFilter:
    """A saved filter the user may change: their own (a super admin, anyone's); else a 404."""
    return seen_or_404(SavedFilter, filter_id)


@bp.route("/filters/<int:filter_id>/edit", methods=["GET", "POST"])
@login_required
def edit_filter(filter_id: int):
    """Change a saved filter's name or conditions: campaigns not yet sent use it as it is at
    their launch (a Supporter Delete keeps the conditions it was confirmed with)."""
    saved = _filter_or_404(filter_id)
    form = FilterForm(data=_form_data(saved) if request.method == "GET" else None)
    if form.validate_on_submit() and (rule := _valid_rule(form)) is not None:
        saved.name, saved.rule = form.name.data.strip(), rule
        audit.record("filter.edited", saved, kind="filter", detail=describe_rule(rule), commit=False)
        db.session.commit()
        flash(f"Filter “{saved.name}” saved.", "success")
        return redirect(url_for("campaigns.filters"))
    return render_template("campaigns/filter_edit.html", form=form, saved=saved, needed_by=_needed_by(saved))


def _form_data(saved: SavedFilter) -> dict:
    """The form's fields as the filter holds them."""
    conditions = list((saved.rule or {}).get("conditions") or [])
    return {"name": saved.name, "conditions": conditions}


def _needed_by(saved: SavedFilter) -> list[Campaign]:
    """The campaigns that still need the filter: not sent yet, being sent, or stopped part-way
    (Send to the remaining reads it again). A campaign whose launch is over does not."""
    campaigns = db.session.execute(
        select(Campaign)
        .where(Campaign.filter_id == saved.id, Campaign.audience == "filter")
        .order_by(Campaign.id)
    ).scalars()
    return [
        campaign
        for campaign in campaigns
        if campaign.status is not CampaignStatus.LAUNCHED
        or campaign.launch_run is None
        or not campaign.launch_run.state.is_finished
    ]


@bp.route("/filters/<int:filter_id>/delete", methods=["POST"])
@login_required
def delete_filter(filter_id: int):
    """Delete a saved filter, unless a campaign still needs it (it says which)."""
    saved = _filter_or_404(filter_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if needed_by := _needed_by(saved):
        names = ", ".join(f"“{campaign.name}”" for campaign in needed_by[:3])
        more = f" and {len(needed_by) - 3} more" if len(needed_by) > 3 else ""
        flash(
            f"“{saved.name}” was not deleted: it is the audience of {names}{more}. "
            "Choose another audience for them first.",
            "error",
        )
        return redirect(url_for("campaigns.filters"))
    audit.record("filter.deleted", saved, kind="filter", detail=describe_rule(saved.rule), commit=False)
    db.session.delete(saved)
    db.session.commit()
    flash(f"Filter “{saved.name}” deleted.", "success")
    return redirect(url_for("campaigns.filters"))
