"""Signing in and out, the own account page, and set-password links."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select

from webapp import audit
from webapp.auth import passwords, sessions, throttle
from webapp.auth.forms import ChangePasswordForm, LoginForm, ProfileForm, SetPasswordForm
from webapp.auth.links import user_for_token
from webapp.extensions import db
from webapp.jobs.forms import ConfirmForm
from webapp.models.users import User
from webapp.web import safe_path

bp = Blueprint("auth", __name__)

WRONG = "Wrong email or password."


def _safe_next(target: str | None) -> str:
    """Only same-site relative redirects after login."""
    return safe_path(target, url_for("monitor.index"))


def user_by_email(email: str) -> User | None:
    """The user with this address (any case), or None."""
    return db.session.execute(
        select(User).where(func.lower(User.email) == email.strip().lower())
    ).scalar_one_or_none()


def too_many(wait: int) -> str:
    """The throttle's refusal."""
    return f"Too many attempts. Try again in {throttle.minutes_text(wait)}."


def check_sign_in(email: str, password: str, ip: str) -> tuple[User | None, str | None]:
    """(the user, None) when the password is right and the account active, else (the user or
    None, why not). An unknown address costs a hash check like a wrong password, and counts
    towards the throttle the same; a deactivated account is named only after the right
    password."""
    user = user_by_email(email)
    # checked first either way: with no user, verify checks a dummy hash and answers False
    verified = passwords.verify(user.password_hash if user else None, password)
    if user is None or not verified:
        throttle.record_failure(email, ip)
        return user, WRONG
    if not user.active:
        return user, "This account is deactivated. Ask an admin to reactivate it."
    throttle.clear_account(email)
    return user, None


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form and sign a user in (throttled per account and per IP address)."""
    if current_user.is_authenticated:
        return redirect(url_for("monitor.index"))
    form = LoginForm()
    if form.validate_on_submit():
        email, ip = form.email.data.strip().lower(), audit.client_ip()
        if wait := throttle.wait_seconds(email, ip):  # refused before any check, not audited
            form.password.errors.append(too_many(wait))
            return render_template("auth/login.html", form=form), 429
        user, problem = check_sign_in(email, form.password.data, ip)
        if problem is None:
            assert user is not None  # check_sign_in lets only a found user in
            login_user(user)
            sessions.start(user)
            audit.record("auth.signed_in", user, actor=user, owner_id=user.id)
            return redirect(_safe_next(request.args.get("next")))
        audit.record(
            "auth.sign_in_failed",
            user,
            kind="user",
            owner_id=user and user.id,
            detail=f"{email[:200]}: {problem}",
        )
        form.password.errors.append(problem)
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Sign out: this session and every other session of the user end."""
    user = current_user._get_current_object()
    user.end_sessions()
    audit.record(
        "auth.signed_out", user, owner_id=user.id, commit=False, detail="This and every other session ended"
    )
    db.session.commit()
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


def _account_page(
    profile: ProfileForm | None = None, password: ChangePasswordForm | None = None, status: int = 200
):
    """The account page, with the forms as sent when one of them was refused."""
    profile = profile or ProfileForm(formdata=None, obj=current_user)
    if not current_user.is_admin:
        profile.email.render_kw = {"readonly": True}
    return render_template(
        "auth/account.html",
        profile=profile,
        password=password or ChangePasswordForm(formdata=None),
        confirm=ConfirmForm(),
        editable=current_user.is_admin,
    ), status


@bp.route("/account")
@login_required
def account():
    """The signed-in user's own account: name, email, password and sessions."""
    return _account_page()


def _current_password_ok(field) -> bool:
    """Check the signed-in user's current password (wrong ones count towards the throttle)."""
    email, ip = current_user.email, audit.client_ip()
    if wait := throttle.wait_seconds(email, ip):
        field.errors.append(too_many(wait))
        return False
    if not current_user.check_password(field.data or ""):
        throttle.record_failure(email, ip)
        field.errors.append("This is not your current password.")
        return False
    return True


@bp.route("/account/profile", methods=["POST"])
@login_required
def profile():
    """Change one's own name, and (admins, with the current password) email address."""
    form = ProfileForm()
    if not current_user.is_admin:
        form.email.data = current_user.email  # plain users' addresses are managed by admins
    if not form.validate():
        return _account_page(profile=form, status=400)
    user = current_user._get_current_object()
    email = form.email.data.strip().lower()
    if email != user.email:
        clash = user_by_email(email)
        if clash is not None and clash is not user:
            form.email.errors.append("Another user has this email.")
            return _account_page(profile=form, status=400)
        if not _current_password_ok(form.current_password):
            return _account_page(profile=form, status=400)
    changes = [
        f"{label}: {old or '—'} → {new or '—'}"
        for label, old, new in (
            ("Email", user.email, email),
            ("Name", user.name, (form.name.data or "").strip()),
        )
        if old != new
    ]
    if changes:
        user.email, user.name = email, (form.name.data or "").strip()
        audit.record(
            "user.edited", user, owner_id=user.id, commit=False, detail="Own account: " + "; ".join(changes)
        )
        db.session.commit()
    flash("Your account is saved.", "success")
    return redirect(url_for("auth.account"))


@bp.route("/account/password", methods=["POST"])
@login_required
def change_password():
    """Change one's own password (the current one is required); every other session ends."""
    form = ChangePasswordForm()
    if not form.validate() or not _current_password_ok(form.current_password):
        return _account_page(password=form, status=400)
    user = current_user._get_current_object()
    user.set_password(form.new_password.data)
    sessions.keep(user)
    audit.record(
        "user.password_changed",
        user,
        owner_id=user.id,
        commit=False,
        detail="Own password; every other session ended",
    )
    db.session.commit()
    flash("Your password is changed. Every other session of yours is signed out.", "success")
    return redirect(url_for("auth.account"))


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@login_required
def sign_out_everywhere():
    """End every other session of the signed-in user (other browsers, copied cookies)."""
    if not ConfirmForm().validate_on_submit():
        return _account_page(status=400)
    user = current_user._get_current_object()
    user.end_sessions()
    sessions.keep(user)
    audit.record(
        "auth.signed_out_everywhere", user, owner_id=user.id, commit=False, detail="Every other session ended"
    )
    db.session.commit()
    flash("Every other session of yours is signed out; this one stays.", "success")
    return redirect(url_for("auth.account"))


@bp.route("/password/<token>", methods=["GET", "POST"])
def set_password(token: str):
    """Choose a password through a one-time link sent by email."""
    user = user_for_token(token)
    if user is None:
        return render_template("auth/link_invalid.html"), 400
    form = SetPasswordForm()
    if form.validate_on_submit():
        user.set_password(form.new_password.data)
        audit.record(
            "user.password_changed",
            user,
            actor=user,
            owner_id=user.id,
            commit=False,
            detail="Through a set-password link; every session ended",
        )
        db.session.commit()
        throttle.clear_account(user.email)
        if current_user.is_authenticated:
            logout_user()
        flash("Your password is set. Log in with it.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/set_password.html", form=form, user=user)
