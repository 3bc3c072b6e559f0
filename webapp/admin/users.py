"""The Users page: admins create, edit, deactivate and reactivate users and send set-password
links; they never learn or set another user's password. Only a super admin sets one directly (and
that is audited). Every change is written to the audit log."""

from __future__ import annotations

import secrets

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from webapp import audit
from webapp.admin.forms import UserForm, role_choices
from webapp.admin.routes import bp
from webapp.auth.links import send_link
from webapp.auth.routes import user_by_email
from webapp.extensions import db
from webapp.jobs.forms import ConfirmForm
from webapp.models.users import Role, User
from webapp.paging import Keyset
from webapp.permissions import admin_required


@bp.route("/users")
@admin_required
def users():
    """Every user with role and status, newest first, a page at a time."""
    keyset = Keyset.from_request(current_app.config["PAGE_SIZE"])
    page = keyset.page(db.session.execute(keyset.narrow(select(User), User.id)).scalars().all())
    return render_template("admin/users.html", users=page.items, page=page)


def _editable(user: User) -> bool:
    """Admins manage users and admins; only a super admin manages super admins."""
    return current_user.is_super_admin or user.role is not Role.SUPER_ADMIN


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or not _editable(user):
        abort(404)
    return user


def _user_form(user: User | None) -> UserForm:
    """The form as this viewer may use it: a password field only for a super admin setting
    another user's; another user's address fixed for anyone but a super admin."""
    form = UserForm(obj=user)
    form.role.choices = role_choices(current_user.is_super_admin)
    if not current_user.is_super_admin or (user is not None and user.id == current_user.id):
        del form.password
    if user is not None and user.id != current_user.id and not current_user.is_super_admin:
        form.email.data = user.email  # an address is where set-password links go
        form.email.render_kw = {"readonly": True}
        form.email.description = "Only a super admin changes another user's address."
    return form


def _link_sent(user: User, sent: bool, *, new_account: bool = False) -> None:
    """Audit and tell how sending a set-password link went."""
    if sent:
        audit.record(
            "user.password_link_sent", user, owner_id=user.id, detail="New account" if new_account else ""
        )
        flash(
            f"A set-password link was sent to {user.email}. It works once and expires in {_link_hours()}.",
            "success",
        )
    else:
        flash(
            f"The set-password link to {user.email} could not be sent (see the mail "
            "settings). Send it again from the user's page.",
            "error",
        )


def _link_hours() -> str:
    return f"{current_app.config['SET_PASSWORD_LINK_HOURS']:g} hours"


def _create(form: UserForm, email: str) -> User:
    """A new user: a set-password link goes to them unless a super admin set a password."""
    user = User(
        email=email, name=(form.name.data or "").strip(), role=Role(form.role.data), active=form.active.data
    )
    chosen = form.password.data if form.password else None
    user.set_password(chosen or secrets.token_urlsafe(32))  # nobody knows it until they choose
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.created",
        user,
        owner_id=user.id,
        commit=False,
        detail=f"Role {user.role.label}" + ("" if user.active else ", deactivated"),
    )
    if chosen:
        audit.record(
            "user.password_set",
            user,
            owner_id=user.id,
            commit=False,
            detail="Set by a super admin at creation",
        )
    db.session.commit()
    if chosen:
        flash(f"User {email} created with the password you chose.", "success")
    elif user.active:
        _link_sent(user, send_link(user, new_account=True), new_account=True)
    else:
        flash(f"User {email} created (deactivated: no set-password link was sent).", "success")
    return user


def _update(form: UserForm, user: User, email: str) -> None:
    """Save the changes and write one audit entry per kind of change."""
    edits = [
        f"{label}: {old or '—'} → {new or '—'}"
        for label, old, new in (
            ("Email", user.email, email),
            ("Name", user.name, (form.name.data or "").strip()),
        )
        if old != new
    ]
    if edits:
        user.email, user.name = email, (form.name.data or "").strip()
        audit.record("user.edited", user, owner_id=user.id, detail="; ".join(edits), commit=False)
    role = Role(form.role.data)
    if role is not user.role:
        audit.record(
            "user.role_changed",
            user,
            owner_id=user.id,
            commit=False,
            detail=f"{user.role.label} → {role.label}",
        )
        user.role = role
    if form.active.data != user.active:
        user.active = form.active.data
        if not user.active:
            user.end_sessions()  # a deactivated user is signed out at once
        audit.record(
            "user.deactivated" if not user.active else "user.reactivated",
            user,
            owner_id=user.id,
            commit=False,
        )
    if form.password and form.password.data:
        user.set_password(form.password.data)  # ends every session of the user
        audit.record(
            "user.password_set",
            user,
            owner_id=user.id,
            commit=False,
            detail="Set directly by a super admin; every session of the user ended",
        )
    db.session.commit()
    flash(f"User {email} saved.", "success")


@bp.route("/users/new", methods=["GET", "POST"])
@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def edit_user(user_id: int | None = None):
    """Create a user (who gets a set-password link), or change one's name, role or status."""
    user = _user_or_404(user_id) if user_id else None
    form = _user_form(user)
    if user is not None and user.id == current_user.id:  # shown as they are, not offered
        for own in (form.role, form.active):
            own.render_kw = {**(own.render_kw or {}), "disabled": True}
        form.role.description = "You cannot change your own role or deactivate yourself."
        if request.method == "POST":  # (a disabled field is not sent: it stays as it is)
            form.role.data, form.active.data = user.role.value, user.active
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        clash = user_by_email(email)
        if clash is not None and clash is not user:
            form.email.errors.append("Another user has this email.")
        elif (
            user is not None
            and user.id == current_user.id
            and (not form.active.data or form.role.data != user.role.value)
        ):
            form.role.errors.append("You cannot change your own role or deactivate yourself.")
        else:
            if user is None:
                _create(form, email)
            else:
                _update(form, user, email)
            return redirect(url_for("admin.users"))
    return render_template(
        "admin/user_form.html", form=form, user=user, confirm=ConfirmForm(), link_hours=_link_hours()
    )


@bp.route("/users/<int:user_id>/password-link", methods=["POST"])
@admin_required
def send_password_link(user_id: int):
    """Email the user a one-time link to choose a new password (the admin never sees it)."""
    user = _user_or_404(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not user.active:
        flash(f"{user.email} is deactivated: reactivate the account before sending a link.", "error")
    else:
        _link_sent(user, send_link(user))
    return redirect(url_for("admin.edit_user", user_id=user.id))
