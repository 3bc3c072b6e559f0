"""/healthz and /metrics: without a session only from CONVEYOR_METRICS_ALLOW's addresses, from
anywhere else to a signed-in admin; to anyone else they do not exist (404)."""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv6Address, ip_address

from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask_login import current_user
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from webapp.config import Network, allowed_networks
from webapp.ops.health import health
from webapp.ops.scrape import ConveyorCollector

bp = Blueprint("ops", __name__)


@lru_cache(maxsize=8)
def _networks(text: str) -> tuple[Network, ...]:
    return tuple(allowed_networks(text))


def address_allowed(address: str | None, allow: str) -> bool:
    """Whether `address` (the request's, as TRUST_PROXY resolves it) is in the allowed networks."""
    try:
        parsed = ip_address(address or "")
    except ValueError:
        return False
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return any(parsed in network for network in _networks(allow))


FORWARDING_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


def forwarded_unbelieved() -> bool:
    """Whether the request came through a proxy Conveyor is not told to believe (TRUST_PROXY 0):
    then its address is the proxy's (often 127.0.0.1, an nginx on the same machine), not the
    client's, and says nothing about who asks."""
    return current_app.config["TRUST_PROXY"] == 0 and any(
        name in request.headers for name in FORWARDING_HEADERS
    )


@bp.before_request
def only_operators() -> None:
    """An allowed address, or a signed-in admin or super admin; anyone else sees a 404."""
    allow = current_app.config["METRICS_ALLOW"]
    if not forwarded_unbelieved() and address_allowed(request.remote_addr, allow):
        return
    if not (current_user.is_authenticated and current_user.is_admin):
        abort(404)


@bp.route("/healthz")
def healthz() -> tuple[Response, int]:
    """The database, Redis, live workers per lane and the scheduler's heartbeat: 200 when the
    database and Redis answer and the scheduler passed recently, else 503."""
    report = health()
    return jsonify(report), 200 if report["ok"] else 503


@bp.route("/metrics")
def metrics() -> Response:
    """Prometheus's text format: deployment-wide numbers, whichever web server is scraped."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConveyorCollector())
    response = Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response
