"""Browser-side protections: the security headers on every response, a session cookie that is
Secure whenever the request came over HTTPS, and trust in a reverse proxy's X-Forwarded-*
headers only when CONVEYOR_TRUST_PROXY says how many proxies stand in front."""

from __future__ import annotations

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

# No inline script, style or event handler anywhere: behaviour lives in static/app.js, looks in
# static/app.css (pico's icons are data: URIs). Nothing may frame a page.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "object-src 'none'"
)
# An email's own HTML (campaign preview, outbox), shown in an <iframe> of our page: its inline
# styles render, but it runs no script, submits no form, loads nothing but images and is an
# opaque origin (sandbox), framable by this site only.
EMAIL_HTML_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; "
    "form-action 'none'; frame-ancestors 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def security_headers(response: Response) -> Response:
    """after_request: the security headers on every response (pages, fragments, files, errors,
    JSON); a response that set its own policy (email_html) keeps it."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.update(SECURITY_HEADERS)
    return response


def email_html(html: str) -> Response:
    """An email's HTML part as its own response, for an <iframe> on one of our pages."""
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_HTML_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "no-store"
    return response


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """The signed-cookie session, whose cookie is Secure when this request came over HTTPS
    (SESSION_COOKIE_SECURE is one value for every request; behind a trusted proxy
    request.is_secure follows X-Forwarded-Proto)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure when configured so, or when the request is HTTPS."""
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def trust_proxy(app: Flask) -> None:
    """Believe X-Forwarded-For, -Proto and -Host from the TRUST_PROXY nearest proxies (0: none,
    the client talks to gunicorn directly and could forge them)."""
    hops = app.config["TRUST_PROXY"]
    if hops:
        # Flask documents wrapping wsgi_app in middleware this way; its stubs declare a method
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def register_security(app: Flask) -> None:
    """The session cookie, the proxy and the headers of every response."""
    app.session_interface = HttpsAwareSessionInterface()
    trust_proxy(app)
    app.after_request(security_headers)
