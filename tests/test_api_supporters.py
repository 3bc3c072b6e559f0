"""Supporters through the API: searched as the Supporters page searches them, paged, read one by
one; every signed-in user's token sees them all, as the page shows them to every user."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.test_api_tokens import api, make_token
from webapp.api.v1.supporters import SupporterOut, SupporterPage
from webapp.extensions import db
from webapp.models import Supporter


@pytest.fixture
def people(app):
    """Twelve supporters: ada0…ada9@park.example and two by name."""
    rows = [Supporter(email=f"ada{i}@park.example", first_name=f"Ada{i}") for i in range(10)]
    rows += [
        Supporter(email="grace@navy.example", first_name="Grace", last_name="Hopper", opted_in=True),
        Supporter(
            email="alan@bletchley.example",
            first_name="Alan",
            last_name="Turing",
            donation_total=Decimal("125.5"),
            city="Wilmslow",
        ),
    ]
    db.session.add_all(rows)
    db.session.commit()
    return {row.email: row.id for row in rows}


def emails(answer) -> list[str]:
    return [found["email"] for found in answer.json["supporters"]]


def test_search_finds_by_email_prefix_and_by_name_in_any_case(client, auth, users, people):
    secret = make_token(client, auth, "user@example.org")
    by_prefix = api(client, "/api/v1/supporters?q=GRACE@", secret)
    assert by_prefix.status_code == 200 and emails(by_prefix) == ["grace@navy.example"]
    SupporterPage.model_validate(by_prefix.json)
    assert emails(api(client, "/api/v1/supporters?q=turing", secret)) == ["alan@bletchley.example"]
    assert emails(api(client, "/api/v1/supporters?q=hopper", secret)) == ["grace@navy.example"]
    assert emails(api(client, "/api/v1/supporters?q=nobody", secret)) == []
    everyone = api(client, "/api/v1/supporters", secret)
    assert len(emails(everyone)) == 12 and emails(everyone)[0] == "alan@bletchley.example"  # newest first
    # % and _ are searched for as themselves, not as LIKE's wildcards
    assert emails(api(client, "/api/v1/supporters?q=_", secret)) == []
    assert emails(api(client, "/api/v1/supporters?q=%25", secret)) == []


def test_pages_follow_next_and_previous_without_gaps_or_repeats(client, auth, users, people):
    secret = make_token(client, auth, "user@example.org")
    first = api(client, "/api/v1/supporters?q=ada&limit=4", secret)
    assert emails(first) == [f"ada{i}@park.example" for i in (9, 8, 7, 6)]
    assert first.json["previous"] is None and "q=ada" in first.json["next"]
    seen, answer = [], first
    while True:
        seen += emails(answer)
        if answer.json["next"] is None:
            break
        answer = api(client, answer.json["next"], secret)
    assert seen == [f"ada{i}@park.example" for i in range(9, -1, -1)]
    back = api(client, answer.json["previous"], secret)
    assert emails(back) == [f"ada{i}@park.example" for i in (5, 4, 3, 2)]


@pytest.mark.parametrize("role", ["user", "other", "admin", "super_admin"])
def test_every_users_token_reads_a_supporter_as_the_page_shows_them_to_every_user(
    client, auth, users, people, role
):
    secret = make_token(client, auth, users[role].email)
    answer = api(client, f"/api/v1/supporters/{people['alan@bletchley.example']}", secret)
    assert answer.status_code == 200
    assert SupporterOut.model_validate(answer.json).donation_total == "125.50"
    assert answer.json["city"] == "Wilmslow" and answer.json["last_name"] == "Turing"


def test_an_unknown_supporter_is_a_404_and_bad_paging_a_422(client, auth, users, people):
    secret = make_token(client, auth, "user@example.org")
    missing = api(client, f"/api/v1/supporters/{max(people.values()) + 100}", secret)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    for query in (
        "limit=0",
        "limit=201",
        "limit=abc",
        "before=²",
        "before=99999999999999999999",
        "q=" + "x" * 201,
    ):
        refused = api(client, f"/api/v1/supporters?{query}", secret)
        assert refused.status_code == 422, query
        assert refused.json["error"]["code"] == "invalid" and refused.json["error"]["problems"], query
    assert api(client, "/api/v1/supporters?before=&after=", secret).status_code == 200
    assert api(client, "/api/v1/supporters", None).status_code == 401
