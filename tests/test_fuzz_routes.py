"""Every route of the app, walked with malformed and out-of-range ids, page numbers and filters,
as a super admin and as a plain user: the answer is a 4xx with a sentence for a person, never a
500 (nor a traceback)."""

import re

import pytest

from tests.conftest import export_job
from tests.test_api_tokens import make_token
from tests.test_permissions import others_objects  # noqa: F401  (the fixture: one of everything)
from webapp.extensions import db
from webapp.jobtypes.job_group import GroupDefinition
from webapp.models import Job
from webapp.rules.recurrence import ScheduleKind

HUGE = "99999999999999999999"  # past SQLite's 64-bit integers
PATH_VALUES = [HUGE, "9223372036854775808", "0", "-1", "²", "٣"]  # ² and ٣ are not ASCII digits
QUERY_VALUES = [HUGE, "9223372036854775808", "²", "٣", "-1", "0", "abc", "1e3", ""]
# the query (and form) values each route reads by hand: each is also tried on its own
FILTERS = {
    "monitor.index": ["page"],
    "monitor.updates": ["ids", "after"],
    "monitor.history": ["type", "state", "user", "before", "after"],
    "groups.index": ["page"],
    "groups.detail": ["before", "after"],
    "groups.wizard": ["steps", "op", "nav"],
    "supporters.index": ["before", "after", "q"],
    "admin.audit": ["before", "after"],
    "admin.outbox": ["page"],
    "campaigns.preview": ["email"],
    "runs.stop": ["from", "next"],
    "receipts.index": ["before", "after", "number", "status", "kind", "year", "donor"],
}
EVERY_FILTER = sorted({name for names in FILTERS.values() for name in names} - {"next"})
ALLOWED = {200, 302, 400, 401, 403, 404, 405, 409, 413}  # 409: an action refused as things stand
ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


@pytest.fixture
def samples(users, others_objects):  # noqa: F811
    """A real value for every URL parameter of the app (objects owned by "other")."""
    return {
        **others_objects,
        "user_id": users["other"].id,
        "token": "not-a-token",
        "name": "nothing.eml",
        "filename": "nothing.css",
        "action": "stop",
        "supporter_id": 1,  # the API's supporters (the account's, not a user's)
        "receipt_id": 1,  # receipts are the account's (admins see every one)
    }


def url_with(rule, values: dict) -> str:
    """The rule's path with `values` put in as they are (past the converters, which would refuse
    the malformed ones)."""
    return ARGUMENT.sub(lambda m: str(values[m.group(2)]), rule.rule)


def every_route(app):
    """Every rule with each of its methods; deletions last, so that the objects stay until then."""
    rules = sorted(
        app.url_map.iter_rules(), key=lambda r: (r.endpoint.endswith(("delete", "deactivate")), r.rule)
    )
    for rule in rules:
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


def malformed_requests(rule, samples: dict):
    """(url, query, form) for each malformed or out-of-range value the route can be sent."""
    for argument in rule.arguments:
        for value in PATH_VALUES:
            yield url_with(rule, {**samples, argument: value}), {}, {}
    url = url_with(rule, samples)
    for value in QUERY_VALUES:
        yield url, {"page": value}, {"page": value}
        junk = {name: value for name in EVERY_FILTER}
        yield url, junk, {**junk, "op": f"add:{value}"}
        for name in FILTERS.get(rule.endpoint, []):
            yield url, {name: value}, {name: value, "op": f"up:{value}"}


def words(html: str) -> str:
    """The text a person reads on a page."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize("role", ["super_admin", "user"])
def test_no_route_answers_500_to_malformed_ids_pages_or_filters(app, client, auth, users, samples, role):
    auth.login(users[role].email)
    failures, checked = [], 0
    for method, rule in every_route(app):
        for url, query, form in malformed_requests(rule, samples):
            for headers in ({}, {"HX-Request": "true"}):
                response = client.open(
                    url,
                    method=method,
                    query_string=query,
                    data=form if method == "POST" else None,
                    headers=headers,
                )
                checked += 1
                where = f"{method} {url}?{query} {headers}: {response.status_code}"
                body = response.get_data(as_text=True)
                if rule.endpoint == "ops.healthz" and response.status_code == 503:
                    continue  # its own answer when no scheduler runs (tests/test_ops.py)
                if response.status_code not in ALLOWED:
                    failures.append(where)
                elif response.status_code >= 400 and (
                    "Traceback" in body or not re.search(r"\w+ \w+ \w+", words(body))
                ):
                    failures.append(f"{where} without a message: {body[:200]}")
                if rule.endpoint == "auth.logout":
                    auth.login(users[role].email)
    assert not failures, f"{len(failures)} of {checked}:\n" + "\n".join(failures[:40])
    assert checked > 2000


@pytest.mark.parametrize(
    "url,expected",
    [
        ("/runs/99999999999999999999", 404),
        ("/runs/9223372036854775808", 404),
        ("/runs/²", 404),
        ("/runs/٣", 404),
        ("/?page=99999999999999999999", 400),
        ("/?page=²", 400),
        ("/?page=0", 400),
        ("/history?before=99999999999999999999", 400),
        ("/history?state=lost", 400),
        ("/history?type=nothing", 400),
        ("/history?user=²", 400),
        ("/monitor/updates?ids=1,²&after=0", 400),
        ("/supporters/?before=²", 400),
        ("/admin/audit?before=99999999999999999999", 400),
        ("/admin/outbox?page=-1", 400),
        ("/groups/?page=abc", 400),
    ],
)
def test_a_malformed_number_is_answered_with_a_plain_sentence(client, auth, users, url, expected):
    auth.login(users["super_admin"].email)
    response = client.get(url)
    assert response.status_code == expected
    text = words(response.get_data(as_text=True))
    if expected == 404:
        assert "There is nothing here, or you do not have access to it." in text
    else:
        assert re.search(r"must be|is not one of|unknown", text), text


def test_an_empty_filter_is_the_same_as_no_filter(client, auth, users):
    auth.login(users["super_admin"].email)
    assert client.get("/history?type=&state=&user=&after=&before=").status_code == 200
    assert client.get("/?page=").status_code == 200
    assert client.get("/monitor/updates?ids=&after=").status_code == 200


def test_the_largest_id_is_still_a_plain_404(client, auth, users):
    auth.login(users["super_admin"].email)
    for huge in (2**31 - 1, 2**31, 2**63 - 1, 2**64):  # PostgreSQL's integer ends at 2**31 - 1
        assert client.get(f"/runs/{huge}").status_code == 404
    assert client.get(f"/history?before={2**31 - 1}").status_code == 200
    assert client.get(f"/history?before={2**63 - 1}").status_code == 400  # said, not a 500


def test_a_malformed_number_in_an_htmx_request_answers_the_fragment_with_a_4xx(client, auth, users):
    auth.login(users["user"].email)
    response = client.get("/monitor/updates?ids=²&after=0", headers={"HX-Request": "true"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "<html" not in html and 'role="alert"' in html


def test_a_malformed_job_id_in_the_group_wizard_is_left_out_like_another_users_job(
    client,
    auth,
    users,
    others_objects,  # noqa: F811
):
    auth.login(users["super_admin"].email)
    group_id, job_id = others_objects["group_id"], others_objects["job_id"]
    url = f"/groups/{group_id}/edit/1"
    assert client.post(url, data={"steps": [job_id], "op": "add:²"}).status_code == 200
    client.post(url, data={"steps": ["²", HUGE, str(job_id), "٣"], "nav": "save"})
    db.session.expire_all()
    assert GroupDefinition.of(db.session.get(Job, group_id)).steps == [job_id]


SCHEDULE_NUMBERS = [
    "kind",
    "times_per_day",
    "weekdays",
    "day_of_month",
    "week_of_month",
    "weekday",
    "hour",
    "slot",
    "misfire_grace_minutes",
]


def schedule_form(kind: str) -> dict:
    """A schedule form as the page sends it, valid for every kind."""
    return {
        "kind": kind,
        "start_date": "2030-01-01",
        "time": "09:00",
        "times_per_day": "2",
        "weekdays": "1",
        "day_of_month": "5",
        "week_of_month": "1",
        "weekday": "0",
        "hour": "9",
        "slot": "0",
        "once_at": "2030-01-01T09:00",
        "misfire_grace_minutes": "60",
        "overlap_policy": "skip",
        "misfire_policy": "run_once",
        "enabled": "y",
    }


def test_the_schedule_form_and_its_live_preview_never_answer_500_to_junk_numbers(client, auth, users):
    auth.login(users["user"].email)
    job = export_job(users["user"])
    saved = client.post(f"/jobs/{job.id}/schedule", data=schedule_form("hourly_slot"))
    assert saved.status_code == 302  # the fields then show the slot's saved minute
    failures = []
    for method, url in [
        ("GET", f"/jobs/{job.id}/schedule/preview"),
        ("GET", f"/jobs/{job.id}/schedule/fields"),
        ("POST", f"/jobs/{job.id}/schedule"),
    ]:
        for kind in ScheduleKind:
            for name in SCHEDULE_NUMBERS:
                for value in [HUGE, "²", "-1", "abc", ""]:
                    form = {**schedule_form(kind), name: value}
                    response = client.open(
                        url,
                        method=method,
                        query_string=form if method == "GET" else None,
                        data=form if method == "POST" else None,
                    )
                    if response.status_code not in ALLOWED:
                        failures.append(f"{method} {url} {kind} {name}={value!r}: {response.status_code}")
    assert not failures, "\n".join(failures[:40])


def test_an_unexpected_error_shows_something_went_wrong_without_a_traceback(app, client):
    def broken():
        raise RuntimeError("secret internals")

    app.add_url_rule("/broken", "broken", broken)
    response = client.get("/broken")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "Something went wrong" in html
    assert "secret internals" not in html and "Traceback" not in html


def test_no_route_answers_500_while_the_job_queue_is_unreachable(app, client, auth, users, samples):
    """Redis gone: every page and every action (with well-formed values) still answers, with
    a message where the action needs the queue; nothing answers 500."""
    from tests.conftest import free_port
    from webapp.engine import queueing

    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    app.extensions.pop("conveyor_redis", None)
    queueing._health["at"] = 0.0
    auth.login(users["super_admin"].email)
    failures, checked = [], 0
    for method, rule in every_route(app):
        if rule.endpoint in ("auth.logout", "static"):
            continue
        response = client.open(
            url_with(rule, samples), method=method, data={"confirm": "y"} if method == "POST" else None
        )
        checked += 1
        if response.status_code not in ALLOWED | {503}:
            failures.append(f"{method} {rule.rule}: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert checked > 50
    page = client.get("/").get_data(as_text=True)
    assert "The job queue has been unreachable since" in page


def test_a_nul_character_anywhere_is_a_400_with_a_sentence_on_every_screen_and_the_api(
    app, client, auth, users
):
    """PostgreSQL refuses a NUL in any text it is sent: a query value, form field or JSON string
    holding one is refused before any view (it was a 500 on PostgreSQL)."""
    auth.login(users["user"].email)
    for url in ("/supporters/", "/monitor/history", "/jobs/"):
        answer = client.get(url, query_string={"q": "ann\x00"})
        assert answer.status_code == 400 and "NUL character" in answer.text, url
    answer = client.post("/account/api-tokens/", data={"name": "CRM\x00", "access": "read"})
    assert answer.status_code == 400 and "NUL character" in answer.text
    assert client.get("/supporters/", query_string={"q": "ann"}).status_code == 200
    secret = make_token(client, auth, users["user"].email, access="write")
    headers = {"Authorization": f"Bearer {secret}"}
    answer = client.get("/api/v1/supporters", query_string={"q": "\x00"}, headers=headers)
    assert answer.status_code == 400 and answer.json["error"]["code"] == "bad_request"
    answer = client.post(
        "/api/v1/jobs", json={"type": "user_data_export", "name": "Nightly\x00"}, headers=headers
    )
    assert answer.status_code == 400 and "“name” holds a NUL" in answer.json["error"]["message"]
    fine = client.post("/api/v1/jobs", json={"type": "user_data_export", "name": "Nightly"}, headers=headers)
    assert fine.status_code == 201
