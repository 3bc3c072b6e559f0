"""The API's own description: the OpenAPI 3.1 document, open to anyone (it holds no data)."""

from __future__ import annotations

from flask import jsonify, request

from webapp.api.v1.core import bp
from webapp.api.v1.spec import document


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of every endpoint of /api/v1."""
    return jsonify(document(request.host_url))
