"""The API reference page shows every endpoint of the OpenAPI document, for a signed-in user."""

from __future__ import annotations

from html import unescape

from webapp.api.v1.spec import OPERATIONS, document


def test_the_reference_page_lists_every_endpoint_and_every_shape(client, auth, users):
    assert client.get("/account/api-tokens/reference").status_code == 302  # signed out: to sign-in
    auth.login("user@example.org")
    page = client.get("/account/api-tokens/reference")
    assert page.status_code == 200
    text = unescape(page.get_data(as_text=True))
    spec = document()
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            assert f'id="op-{op["operationId"]}"' in text, (method, path)
            assert f"<code>{path}</code>" in text
            assert op["summary"] in text
    for name in spec["components"]["schemas"]:
        assert f'id="shape-{name}"' in text
    assert len(OPERATIONS) == sum(len(methods) for methods in spec["paths"].values())
    assert 'href="/api/v1/openapi.json"' in text


def test_the_account_and_tokens_pages_link_to_the_reference(client, auth, users):
    auth.login("user@example.org")
    for page in ("/account", "/account/api-tokens/"):
        assert "/account/api-tokens/reference" in client.get(page).get_data(as_text=True)
