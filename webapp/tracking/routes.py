"""Tracking endpoints for campaign emails. Every link is signed; a tampered one is refused and
never redirects anywhere."""

from __future__ import annotations

import base64

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request

from webapp.extensions import csrf, db
from webapp.mailing import tracking
from webapp.mailing.events import record_click, record_open, record_unsubscribe
from webapp.models.campaigns import Recipient

bp = Blueprint("tracking", __name__, url_prefix="/t")
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _recipient(token: str) -> Recipient:
    ids = tracking.read_token(current_app.config["SECRET_KEY"], token)
    if ids is None:
        abort(404)
    run_id, recipient_id = ids
    recipient = db.session.get(Recipient, recipient_id)
    if recipient is None or recipient.run_id != run_id:
        abort(404)
    return recipient


@bp.route("/o/<token>.gif")
def opened(token: str):
    """The open pixel."""
    record_open(_recipient(token))
    return Response(PIXEL, mimetype="image/gif", headers={"Cache-Control": "no-store, max-age=0"})


@bp.route("/c/<token>")
def clicked(token: str):
    """A click: checked against its signature, recorded, then redirected."""
    url, signature = request.args.get("u", ""), request.args.get("s", "")
    secret = current_app.config["SECRET_KEY"]
    if not url.startswith(("http://", "https://")) or not tracking.check_link(secret, token, url, signature):
        return render_template("tracking/invalid.html"), 400
    record_click(_recipient(token))
    return redirect(url, code=302)


@bp.route("/u/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str):
    """Unsubscribe: GET asks to confirm, POST (also RFC 8058 one-click) unsubscribes."""
    recipient = _recipient(token)
    if request.method == "POST":
        record_unsubscribe(recipient)
        return render_template("tracking/unsubscribed.html", email=recipient.email)
    return render_template("tracking/unsubscribe.html", email=recipient.email, token=token)
