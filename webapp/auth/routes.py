"""Login and logout."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select

from webapp.auth.forms import LoginForm
from webapp.extensions import db
from webapp.models.users import User
from webapp.web import safe_path

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site relative redirects after login."""
    return safe_path(target, url_for("monitor.index"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form and sign a user in."""
    if current_user.is_authenticated:
        return redirect(url_for("monitor.index"))
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.execute(
            select(User).where(func.lower(User.email) == email)
        ).scalar_one_or_none()
        if user and user.active and user.check_password(form.password.data):
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append("Wrong email or password.")
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Sign out."""
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
