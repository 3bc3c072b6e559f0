"""Security headers on every response (pages, fragments, files, redirects, errors, JSON), no
inline script, style or event handler in any page, and a session cookie that is HttpOnly, Lax,
and Secure when the request came over HTTPS through a trusted proxy."""

import re
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.test_fuzz_routes import every_route, samples, url_with  # noqa: F401  (fixture)
from tests.test_permissions import others_objects  # noqa: F401  (fixture)
from webapp.config import load_config
from webapp.security import CONTENT_SECURITY_POLICY, EMAIL_HTML_POLICY, trust_proxy

TEMPLATES = Path(__file__).resolve().parents[1] / "webapp" / "templates"
# the only responses that may be framed (by our own pages): an email's HTML, sandboxed
EMAIL_HTML_ENDPOINTS = {"campaigns.preview_html", "admin.outbox_html"}
INLINE = re.compile(
    r"""\son[a-z]+\s*=            # an event handler attribute
      | \sstyle\s*=               # a style attribute
      | \shx-on[:-]               # an htmx inline handler
      | <style                    # a style block
      | <script(?![^>]*\ssrc=)    # a script without src
      | javascript:               # a script URL
      | \shx-va(?:ls|rs)=['"]\s*(?:js|javascript):""",
    re.IGNORECASE | re.VERBOSE,
)


def missing_headers(response, framable: bool = False) -> list[str]:
    """What is wrong with the security headers of one response (nothing: [])."""
    expected = {
        "Content-Security-Policy": EMAIL_HTML_POLICY if framable else CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "SAMEORIGIN" if framable else "DENY",
    }
    return [
        f"{name}: {response.headers.get(name)!r}"
        for name, value in expected.items()
        if response.headers.get(name) != value
    ]


def inline_code(html: str) -> list[str]:
    """Every inline handler, style or script in a page (with a little context)."""
    return [html[max(0, m.start() - 40) : m.end() + 40] for m in INLINE.finditer(html)]


def test_the_policy_allows_no_inline_script_style_or_framing():
    for directive in (
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'self'",
    ):
        assert directive in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert "sandbox;" in EMAIL_HTML_POLICY and "script-src" not in EMAIL_HTML_POLICY
    assert "frame-ancestors 'self'" in EMAIL_HTML_POLICY


def test_every_route_answers_with_the_security_headers_and_no_inline_code(app, client, auth, users, samples):  # noqa: F811
    auth.login(users["super_admin"].email)
    failures, pages, seen = [], 0, set()
    for method, rule in every_route(app):
        if method == "POST" and "GET" in rule.methods:
            continue  # a form's page is fetched; its POST is a view like any other
        url = url_with(rule, samples)
        for headers in ({}, {"HX-Request": "true"}):
            response = client.open(url, method=method, headers=headers)
            body = response.get_data(as_text=True)  # (ends a streamed response's context)
            seen.add(response.status_code)
            where = f"{method} {url} {headers} ({response.status_code})"
            framable = rule.endpoint in EMAIL_HTML_ENDPOINTS and response.status_code == 200
            failures += [f"{where}: {problem}" for problem in missing_headers(response, framable)]
            if response.mimetype == "text/html" and not framable:
                pages += 1
                failures += [f"{where}: inline {found!r}" for found in inline_code(body)]
            if rule.endpoint == "auth.logout":
                auth.login(users["super_admin"].email)
    assert not failures, "\n".join(failures[:40])
    assert pages > 80 and {200, 302, 404} <= seen


@pytest.mark.parametrize(
    "path,status",
    [
        ("/", 302),
        ("/login", 200),
        ("/static/app.js", 200),
        ("/static/nothing.js", 404),
        ("/nowhere", 404),
        ("/api/bounces", 405),
        ("/runs/1/status", 302),
    ],
)
def test_anonymous_answers_redirects_and_errors_carry_the_headers(client, path, status):
    response = client.get(path, headers={"Accept": "application/json"} if path.startswith("/api/") else {})
    assert response.status_code == status
    assert missing_headers(response) == []


def test_a_json_error_carries_the_headers(client):
    response = client.post("/api/bounces", json={})
    assert response.is_json and response.status_code >= 400
    assert missing_headers(response) == []


def test_no_template_holds_an_inline_handler_style_or_script():
    found = {
        str(path.relative_to(TEMPLATES)): inline_code(path.read_text()) for path in TEMPLATES.rglob("*.html")
    }
    assert {name: hits for name, hits in found.items() if hits} == {}


def test_the_campaign_preview_frames_the_email_in_a_sandbox_served_on_its_own(client, auth, users, samples):  # noqa: F811
    auth.login(users["super_admin"].email)
    campaign_id = samples["campaign_id"]
    page = client.get(f"/campaigns/{campaign_id}/preview").get_data(as_text=True)
    frame = re.search(r"<iframe[^>]*>", page).group(0)
    assert 'sandbox=""' in frame and "srcdoc" not in frame
    src = re.search(r'src="([^"]+)"', frame).group(1)
    assert src == f"/campaigns/{campaign_id}/preview.html"
    html = client.get(src)
    assert html.status_code == 200 and "<p>Dear" in html.get_data(as_text=True)
    assert missing_headers(html, framable=True) == []
    auth.logout()
    auth.login(users["user"].email)
    assert client.get(src).status_code == 404  # another user's campaign


def session_cookie(response) -> str:
    """The Set-Cookie header of the session cookie."""
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return cookies[0]


def log_in(client, users, **headers):
    """Log the plain user in (with these request headers); the login's response."""
    return client.post("/login", data={"email": users["user"].email, "password": PASSWORD}, headers=headers)


def test_the_session_cookie_is_httponly_and_lax_and_not_secure_over_plain_http(client, users):
    cookie = session_cookie(log_in(client, users))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_a_forwarded_https_is_ignored_without_a_trusted_proxy(client, users):
    cookie = session_cookie(log_in(client, users, **{"X-Forwarded-Proto": "https"}))
    assert "Secure" not in cookie


def test_the_session_cookie_is_secure_over_https_through_a_trusted_proxy(app, client, users):
    app.config["TRUST_PROXY"] = 1
    trust_proxy(app)
    cookie = session_cookie(log_in(client, users, **{"X-Forwarded-Proto": "https"}))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    client.post("/logout")
    assert "Secure" not in session_cookie(log_in(client, users))  # plain http to the proxy


def test_the_session_cookie_is_secure_when_the_server_itself_speaks_https(app, users):
    response = app.test_client().post(
        "/login", base_url="https://conveyor.test", data={"email": users["user"].email, "password": PASSWORD}
    )
    assert "Secure" in session_cookie(response)


def test_conveyor_trust_proxy_sets_how_many_proxies_are_believed(monkeypatch, tmp_path):
    identity = {"SECRET_KEY": "x", "BOUNCE_TOKEN": "x"}  # (required on a shared database)
    monkeypatch.setenv("CONVEYOR_TRUST_PROXY", "2")
    assert load_config({"VAR_DIR": str(tmp_path), **identity})["TRUST_PROXY"] == 2
    monkeypatch.delenv("CONVEYOR_TRUST_PROXY")
    assert load_config({"VAR_DIR": str(tmp_path), **identity})["TRUST_PROXY"] == 0
