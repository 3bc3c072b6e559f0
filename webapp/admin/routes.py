"""Account settings, the outbox and the audit log (the Users page is in admin/users.py)."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from email.parser import BytesParser

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from webapp import audit
from webapp.admin.forms import OutboxSearchForm, SettingsForm
from webapp.admin.outbox import outbox_page
from webapp.extensions import db
from webapp.formutil import form_problems
from webapp.jobs.forms import ConfirmForm
from webapp.jobs.schedule_forms import BlackoutForm, blackout_text
from webapp.jobs.scheduling import same_blackout
from webapp.models.schedules import Blackout
from webapp.models.settings import AccountSettings
from webapp.permissions import admin_required, super_admin_required
from webapp.request_args import page_arg
from webapp.security import email_html
from webapp.storage import current_storage

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/settings", methods=["GET", "POST"])
@admin_required
def settings():
    """Account settings: result and audit retention, the default country for postal codes (the
    time zone is set at installation)."""
    account = AccountSettings.get()
    form = SettingsForm(obj=account)
    if form.validate_on_submit():
        if changes := form.changes(account):
            form.populate_obj(account)
            audit.record("settings.changed", account, kind="settings", detail=changes, commit=False)
        db.session.commit()
        flash("Settings saved.", "success")
        return redirect(url_for("admin.settings"))
    blackouts = (
        db.session.execute(select(Blackout).where(Blackout.job_id.is_(None)).order_by(Blackout.start_date))
        .scalars()
        .all()
    )
    return render_template(
        "admin/settings.html",
        form=form,
        blackouts=blackouts,
        blackout_form=BlackoutForm(),
        confirm=ConfirmForm(),
        timezone=current_app.config["TIMEZONE"],
    )


@bp.route("/blackouts", methods=["POST"])
@admin_required
def add_blackout():
    """Account-wide blackout dates: no scheduled run of any job happens on them."""
    form = BlackoutForm()
    if not form.validate_on_submit():
        flash(form_problems(form) or "Check the dates.", "error")
    elif same_blackout(None, form) is not None:
        flash("These account-wide blackout dates are saved already.", "info")
    else:
        blackout = Blackout(
            job_id=None,
            start_date=form.start_date.data,
            end_date=form.end_date.data,
            reason=form.reason.data.strip(),
        )
        db.session.add(blackout)
        db.session.flush()
        audit.record(
            "blackout.added", blackout, commit=False, detail=f"Account-wide: {blackout_text(blackout)}"
        )
        db.session.commit()
        flash("Account-wide blackout dates added.", "success")
    return redirect(url_for("admin.settings"))


@bp.route("/blackouts/<int:blackout_id>/delete", methods=["POST"])
@admin_required
def delete_blackout(blackout_id: int):
    """Remove account-wide blackout dates."""
    blackout = db.session.get(Blackout, blackout_id)
    if blackout is None or blackout.job_id is not None or not ConfirmForm().validate_on_submit():
        abort(404)
    db.session.delete(blackout)
    audit.record(
        "blackout.removed", blackout, commit=False, detail=f"Account-wide: {blackout_text(blackout)}"
    )
    db.session.commit()
    flash("Blackout dates removed.", "success")
    return redirect(url_for("admin.settings"))


@bp.route("/outbox")
@super_admin_required
def outbox():
    """Messages written to the local outbox (campaigns, notifications, set-password links),
    newest first, searched by recipient, subject and dates: super admins only, since it holds
    every user's mail."""
    form = OutboxSearchForm(formdata=request.args)
    args = form.args()  # the search, for the pager's links
    page = None  # a search with a field message lists nothing
    if not args or form.validate():
        page = outbox_page(
            current_storage(),
            form.search(),
            page_arg(),
            current_app.config["PAGE_SIZE"],
            current_app.config["TIMEZONE"],
        )
    return render_template(
        "admin/outbox.html", form=form, page=page, args=args, smtp=bool(current_app.config["SMTP_URL"])
    )


@bp.route("/outbox/<name>")
@super_admin_required
def outbox_message(name: str):
    """One outbox message: headers and its plain-text and HTML parts."""
    message, parts = _outbox_message(name)
    return render_template("admin/outbox_message.html", message=message, parts=parts, name=name)


@bp.route("/outbox/<name>/html")
@super_admin_required
def outbox_html(name: str):
    """The HTML part of an outbox message on its own, for the message page's sandboxed frame."""
    html = _outbox_message(name)[1].get("text/html")
    if not html:
        abort(404)
    return email_html(html)


def _outbox_message(name: str) -> tuple[EmailMessage, dict[str, str]]:
    """An outbox message (404 unless it is one) and its text/plain and text/html parts."""
    if not name.endswith(".eml") or not name.isprintable():  # (no file has a NUL in its name)
        abort(404)
    try:
        with current_storage().open(f"outbox/{name}") as raw:
            message = BytesParser(policy=email.policy.default).parsebytes(raw.read())
    except FileNotFoundError:
        abort(404)
    parts = {
        part.get_content_type(): part.get_content()
        for part in message.walk()
        if part.get_content_type() in ("text/plain", "text/html")
    }
    return message, parts
