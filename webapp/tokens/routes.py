"""/account/api-tokens: make a token (its secret is shown once), see when each was last used,
revoke one. A user sees and revokes only their own tokens."""

from __future__ import annotations

from datetime import datetime, time

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from webapp.api import tokens
from webapp.extensions import db
from webapp.jobs.forms import ConfirmForm
from webapp.models.base import utcnow
from webapp.models.tokens import ApiToken
from webapp.paging import Keyset
from webapp.rules.clock import local_to_utc
from webapp.tokens.forms import NewTokenForm

bp = Blueprint("tokens", __name__, url_prefix="/account/api-tokens")


def _page(form: NewTokenForm, *, secret: str | None = None, made: ApiToken | None = None, status: int = 200):
    """The page: a page of the user's own tokens, newest first, and the form."""
    keyset = Keyset.from_request(current_app.config["PAGE_SIZE"])
    query = keyset.narrow(select(ApiToken).where(ApiToken.user_id == current_user.id), ApiToken.id)
    page = keyset.page(db.session.execute(query).scalars().all())
    return (
        render_template(
            "tokens/index.html",
            form=form,
            confirm=ConfirmForm(),
            tokens=page.items,
            page=page,
            now=utcnow(),
            secret=secret,
            made=made,
        ),
        status,
    )


@bp.route("/", methods=["GET", "POST"])
@login_required
def index():
    """The user's tokens, and the form for a new one."""
    form = NewTokenForm()
    if not form.validate_on_submit():
        return _page(form, status=400 if form.errors else 200)
    name = form.name.data.strip()
    active_named = select(ApiToken.id).where(
        ApiToken.user_id == current_user.id, ApiToken.name == name, ApiToken.revoked_at.is_(None)
    )
    if db.session.execute(active_named.limit(1)).first() is not None:
        form.name.errors = [f"You already have a token named “{name}”: revoke it, or pick another name."]
        return _page(form, status=400)
    expires_at, day = None, form.expires_on.data
    if day is not None:  # the end of that day in the account's time zone
        expires_at = local_to_utc(datetime.combine(day, time(23, 59, 59)), current_app.config["TIMEZONE"])
    read_only = form.access.data == "read"
    token, secret = tokens.issue(current_user, name, read_only=read_only, expires_at=expires_at)
    db.session.commit()
    return _page(NewTokenForm(formdata=None), secret=secret, made=token, status=201)


@bp.route("/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke(token_id: int):
    """Revoke one of the user's own tokens (another user's id is a 404)."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id or not ConfirmForm().validate_on_submit():
        abort(404)
    if token.revoked_at is None:
        tokens.revoke(token, current_user)
        db.session.commit()
    flash(f"The token “{token.name}” was revoked: it no longer works.", "success")
    return redirect(url_for("tokens.index"))
