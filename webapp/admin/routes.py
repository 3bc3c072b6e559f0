"""Users page, account settings and the audit log."""

from __future__ import annotations

import email.policy
import os
import secrets
from email.parser import BytesParser

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select

from webapp import audit
from webapp.admin.forms import SettingsForm, UserForm, role_choices
from webapp.extensions import db
from webapp.jobs.forms import ConfirmForm
from webapp.jobs.schedule_forms import BlackoutForm, blackout_text
from webapp.models.schedules import Blackout
from webapp.models.settings import AccountSettings
from webapp.models.users import Role, User
from webapp.permissions import admin_required, super_admin_required
from webapp.request_args import page_arg

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/users")
@admin_required
def users():
    """Every user with role and status."""
    rows = db.session.execute(select(User).order_by(User.email)).scalars().all()
    return render_template("admin/users.html", users=rows)


def _editable(user: User) -> bool:
    """Admins manage users and admins; only a super admin manages super admins."""
    return current_user.is_super_admin or user.role is not Role.SUPER_ADMIN


@bp.route("/users/new", methods=["GET", "POST"])
@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def edit_user(user_id: int | None = None):
    """Create a user, or change one's name, role, password or active flag."""
    user = db.session.get(User, user_id) if user_id else None
    if user_id and (user is None or not _editable(user)):
        abort(404)
    form = UserForm(obj=user)
    form.role.choices = role_choices(current_user.is_super_admin)
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        clash = db.session.execute(
            select(User).where(func.lower(User.email) == email)
        ).scalar_one_or_none()
        if clash is not None and clash is not user:
            form.email.errors.append("Another user has this email.")
        elif user is not None and user.id == current_user.id and (
                not form.active.data or form.role.data != user.role.value):
            form.role.errors.append("You cannot change your own role or deactivate yourself.")
        else:
            generated = None
            if user is None:
                user = User(email=email)
                db.session.add(user)
                generated = form.password.data or secrets.token_urlsafe(12)
                user.set_password(generated)
            elif form.password.data:
                user.set_password(form.password.data)
            user.email, user.name = email, (form.name.data or "").strip()
            user.role, user.active = Role(form.role.data), form.active.data
            db.session.commit()
            if generated and not form.password.data:
                flash(f"User {email} created. Their password (shown once): {generated}", "success")
            else:
                flash(f"User {email} saved.", "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/user_form.html", form=form, user=user)


@bp.route("/settings", methods=["GET", "POST"])
@admin_required
def settings():
    """Account settings: result and audit retention (the time zone is set at installation)."""
    account = AccountSettings.get()
    form = SettingsForm(obj=account)
    if form.validate_on_submit():
        if changes := form.changes(account):
            form.populate_obj(account)
            audit.record("settings.changed", account, kind="settings", detail=changes,
                         commit=False)
        db.session.commit()
        flash("Settings saved.", "success")
        return redirect(url_for("admin.settings"))
    blackouts = db.session.execute(
        select(Blackout).where(Blackout.job_id.is_(None)).order_by(Blackout.start_date)
    ).scalars().all()
    return render_template("admin/settings.html", form=form, blackouts=blackouts,
                           blackout_form=BlackoutForm(), confirm=ConfirmForm(),
                           timezone=current_app.config["TIMEZONE"])


@bp.route("/blackouts", methods=["POST"])
@admin_required
def add_blackout():
    """Account-wide blackout dates: no scheduled run of any job happens on them."""
    form = BlackoutForm()
    if form.validate_on_submit():
        blackout = Blackout(job_id=None, start_date=form.start_date.data,
                            end_date=form.end_date.data, reason=form.reason.data.strip())
        db.session.add(blackout)
        db.session.flush()
        audit.record("blackout.added", blackout, commit=False,
                     detail=f"Account-wide: {blackout_text(blackout)}")
        db.session.commit()
        flash("Account-wide blackout dates added.", "success")
    else:
        flash(" ".join(e for f in form for e in f.errors) or "Check the dates.", "error")
    return redirect(url_for("admin.settings"))


@bp.route("/blackouts/<int:blackout_id>/delete", methods=["POST"])
@admin_required
def delete_blackout(blackout_id: int):
    """Remove account-wide blackout dates."""
    blackout = db.session.get(Blackout, blackout_id)
    if blackout is None or blackout.job_id is not None or not ConfirmForm().validate_on_submit():
        abort(404)
    db.session.delete(blackout)
    audit.record("blackout.removed", blackout, commit=False,
                 detail=f"Account-wide: {blackout_text(blackout)}")
    db.session.commit()
    flash("Blackout dates removed.", "success")
    return redirect(url_for("admin.settings"))


def _outbox_files() -> list[str]:
    folder = current_app.config["OUTBOX_DIR"]
    return sorted((name for name in os.listdir(folder) if name.endswith(".eml")), reverse=True)


@bp.route("/outbox")
@super_admin_required
def outbox():
    """Messages written to the local outbox (campaigns, notifications, set-password links),
    newest first: super admins only, since it holds every user's mail."""
    names = _outbox_files()
    page = page_arg()
    per_page = current_app.config["PAGE_SIZE"]
    shown = names[(page - 1) * per_page: page * per_page]
    folder = current_app.config["OUTBOX_DIR"]
    rows = []
    for name in shown:
        with open(os.path.join(folder, name), "rb") as raw:
            headers = BytesParser(policy=email.policy.default).parse(raw, headersonly=True)
        rows.append({"name": name, "to": headers["To"], "subject": headers["Subject"],
                     "date": headers["Date"]})
    return render_template("admin/outbox.html", rows=rows, page=page, total=len(names),
                           per_page=per_page, smtp=bool(current_app.config["SMTP_URL"]))


@bp.route("/outbox/<name>")
@super_admin_required
def outbox_message(name: str):
    """One outbox message: headers and its plain-text and HTML parts."""
    if name not in _outbox_files():
        abort(404)
    with open(os.path.join(current_app.config["OUTBOX_DIR"], name), "rb") as raw:
        message = BytesParser(policy=email.policy.default).parse(raw)
    parts = {part.get_content_type(): part.get_content() for part in message.walk()
             if part.get_content_type() in ("text/plain", "text/html")}
    return render_template("admin/outbox_message.html", message=message, parts=parts, name=name)
