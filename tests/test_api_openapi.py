"""The API against its own OpenAPI document: every route of /api/v1 is in the document and every
documented operation is served; the document is valid OpenAPI 3.1; every answer matches the
schema documented for its status (a status not documented is a failure); and the rules every
endpoint shares, as a matrix over the document (so a new endpoint is covered by existing):
another user's object is a 404 without data, a read-only token is refused every change, no token
and a browser session are a 401, an unknown path is a JSON 404."""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from itertools import product
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import export_job, import_job, work
from tests.test_api_tokens import make_token
from tests.test_chains import group_of
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.models import ApiToken, Job, Run, Supporter
from webapp.models.base import utcnow
from webapp.models.campaigns import Campaign
from webapp.models.money import Receipt

DOC_URI = "urn:conveyor:openapi"
WRITES = ("post", "put", "patch", "delete")
# path parameters naming an object that belongs to nobody in particular: no "another user's"
SHARED = frozenset({"supporter_id"})
MISSING = 987654  # an id naming nothing: what a parameter World has no object for is given
# a realistic body for an operation that takes one (by operationId); others are sent {}
BODIES = {
    "create_job": {"type": "user_data_export", "name": "Made by a script", "fields": ["email"]},
    "update_job": {"name": "Renamed by a script"},
    "save_schedule": {"kind": "days_of_week", "weekdays": [0, 2], "time": "09:30"},
    "preview_schedule": {"kind": "times_per_day", "times_per_day": 2, "time": "06:00"},
    "pause_schedule": {"reason": "The office moves"},
    "void": {"reason": "Issued to the wrong donor"},
    "add_blackout": {
        "start_date": (date.today() + timedelta(days=30)).isoformat(),
        "end_date": (date.today() + timedelta(days=31)).isoformat(),
        "reason": "Giving Tuesday",
    },
}


def openapi_path(rule: str) -> str:
    """A Flask rule as the document writes its path: <int:run_id> -> {run_id}."""
    return re.sub(r"<(?:[^<>]*:)?(\w+)>", r"{\1}", rule)


def _closed(schema):
    """The schemas with every object's properties closed: an answer may not carry a field the
    document does not describe (an object that allows more says so: additionalProperties)."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _closed(value)
    elif isinstance(schema, list):
        for value in schema:
            _closed(value)
    return schema


class Conformance:
    """A test client whose every answer from /api/v1 is checked against the document."""

    def __init__(self, client, document: dict) -> None:
        self.client, self.document = client, document
        closed = _closed(copy.deepcopy(document))
        resource = Resource.from_contents(closed, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOC_URI, resource)
        self.routes = []
        for path, item in document["paths"].items():
            pattern = re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path))
            for method, operation in item.items():
                self.routes.append((re.compile(pattern + "$"), method, operation))
        self.answered: dict[str, set[int]] = defaultdict(set)

    def __call__(self, method: str, path: str, secret: str | None = None, *, checked: bool = True, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        response = self.client.open(path, method=method.upper(), headers=headers, **kwargs)
        if checked:
            self.check(method, path, response)
        return response

    def operation(self, method: str, path: str) -> dict | None:
        for pattern, documented_method, operation in self.routes:
            if documented_method == method.lower() and pattern.match(path):
                return operation
        return None

    def check(self, method: str, path: str, response) -> None:
        where = f"{method.upper()} {path} -> {response.status_code}"
        assert response.status_code < 500, f"{where}: {response.get_data(as_text=True)[:300]}"
        operation = self.operation(method, urlsplit(path).path)
        if operation is None:  # an unknown path or method: still a JSON error
            assert response.status_code in (404, 405), where
            self.validate(response.json, {"$ref": "#/components/schemas/ErrorAnswer"}, where)
            return
        documented = operation["responses"].get(str(response.status_code))
        assert documented, (
            f"{where}: not documented for {operation['operationId']} ({list(operation['responses'])})"
        )
        if "$ref" in documented:
            documented = self.document["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
        media = response.mimetype
        assert media in documented["content"], f"{where}: {media}, documented {list(documented['content'])}"
        if media == "application/json":
            self.validate(response.json, documented["content"][media]["schema"], where)
        self.answered[operation["operationId"]].add(response.status_code)

    def validate(self, body, schema: dict, where: str) -> None:
        if set(schema) == {"$ref"} and schema["$ref"].startswith("#"):
            schema = {"$ref": DOC_URI + schema["$ref"]}
        problems = [
            f"{'/'.join(map(str, error.absolute_path)) or 'body'}: {error.message}"
            for error in Draft202012Validator(schema, registry=self.registry).iter_errors(body)
        ]
        assert not problems, f"{where}: the answer does not match its schema: {problems[:5]}\n{body}"


@pytest.fixture
def document(client) -> dict:
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200 and served.mimetype == "application/json"
    return served.json


@pytest.fixture
def api(client, document) -> Conformance:
    return Conformance(client, document)


ADMINS_ONLY = {"Receipts"}  # the tags whose operations only admins may call (others: a 403)


class World:
    """The objects of `user` (own) and of `other`, by the path parameter that names them, and
    tokens of every kind; built as a person would have them: runs run by the worker."""

    def __init__(self, app, client, auth, users, tmp_path) -> None:
        user, other = users["user"], users["other"]
        db.session.add(Supporter(email="ann@example.org", first_name="Ann", opted_in=True))
        db.session.commit()
        self.own: dict[str, list[int]] = {}
        self.other: dict[str, list[int]] = {}
        for owner, into in ((user, self.own), (other, self.other)):
            first = export_job(owner, name="Nightly export")
            second = export_job(owner, name="Weekly export")
            group = group_of(owner, [first, second], name="Chain")
            path = tmp_path / f"people-{owner.id}.csv"
            path.write_text("email\nann@example.org\nnot-an-address\n")
            imported = start_run(import_job(owner, path, ["email"]), owner)
            done = start_run(first, owner)
            campaign = Campaign(owner_id=owner.id, name="Spring", from_address="a@example.org", subject="Hi")
            db.session.add(campaign)
            db.session.commit()
            into.update(
                run_id=[done.id, imported.id],
                job_id=[first.id, group.id],
                group_id=[group.id],
                campaign_id=[campaign.id],
            )
        work(app)
        for owner, into in ((user, self.own), (other, self.other)):
            alone = export_job(owner, name="Alone")
            waiting = start_run(alone, owner)  # queued: nobody works the queue from here on
            into["run_id"].insert(0, waiting.id)
            into["job_id"].append(alone.id)
        self.own["supporter_id"] = [Supporter.query.one().id]
        receipt = Receipt(number=1, kind="single", donor_name="Ann", amount=Decimal("25.00"), currency="USD")
        db.session.add(receipt)
        db.session.commit()
        self.own["receipt_id"] = [receipt.id]  # receipts are the organisation's: ADMINS_ONLY
        self.done_run, self.import_run = self.own["run_id"][1], self.own["run_id"][2]
        self.writer = make_token(client, auth, user.email, name="Writer", access="write")
        self.reader = make_token(client, auth, user.email, name="Reader")
        self.admin = make_token(client, auth, users["admin"].email, name="Admin", access="write")
        self.super = make_token(client, auth, users["super_admin"].email, name="Super", access="write")


@pytest.fixture
def world(app, client, auth, users, tmp_path) -> World:
    return World(app, client, auth, users, tmp_path)


def operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    """(method, path, operation) of every documented operation but the document itself."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def addresses(path: str, operation: dict, objects: dict[str, list[int]]) -> Iterator[str]:
    """The path with its parameters filled: each enum value, each object of `objects` named by
    the parameter's name (MISSING for a parameter naming no object there)."""
    choices = []
    for parameter in operation["parameters"]:
        if parameter["in"] != "path":
            continue
        name = parameter["name"]
        if "enum" in parameter["schema"]:
            choices.append([(name, str(value)) for value in parameter["schema"]["enum"]])
        else:
            found = objects[name] if name in objects or isinstance(objects, defaultdict) else [MISSING]
            choices.append([(name, str(value)) for value in found])
    for combination in product(*choices):
        filled = path
        for name, value in combination:
            filled = filled.replace("{" + name + "}", value)
        yield filled


def by_kind(document: dict) -> list[tuple[str, str, dict]]:
    """Every operation, reads first, then changes, deletions last (so that what one call
    deletes does not hide the others)."""
    order = {"get": 0, "delete": 2}
    return sorted(operations(document), key=lambda found: order.get(found[0], 1))


def json_body(operation: dict) -> bool:
    return "application/json" in operation.get("requestBody", {}).get("content", {})


def body_for(operation: dict) -> dict | None:
    """The JSON body to send: BODIES' example, {} for a body this file has none for."""
    return BODIES.get(operation["operationId"], {}) if json_body(operation) else None


def sent(operation: dict) -> dict:
    """What to send as the body: JSON (body_for), else a CSV for an operation that takes one."""
    if json_body(operation):
        return {"json": body_for(operation)}
    if "text/csv" in operation.get("requestBody", {}).get("content", {}):
        return {"data": "email,first_name\nann@example.org,Ann\n", "content_type": "text/csv"}
    return {}


def unchecked_body(operation: dict) -> bool:
    """The body sent is {} (no example): it may be refused (422) before the path's ids are read."""
    return json_body(operation) and operation["operationId"] not in BODIES


def ids(path: str) -> set[str]:
    """The path parameters naming objects (not an action)."""
    return set(re.findall(r"\{(\w+_id)\}", path))


# --------------------------------------------------------------------------- the document


def test_every_api_route_is_documented_and_every_documented_operation_is_served(app, document):
    served = {
        (openapi_path("/api/v1" + rule.rule.removeprefix("/api/v1")), method.lower(), rule.endpoint)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api_v1.") and rule.endpoint != "api_v1.openapi"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method, f"api_v1.{operation['operationId']}")
        for method, path, operation in operations(document)
    }
    assert served == documented
    assert len(served) >= 19  # the endpoints of the first slices at least
    urls = app.url_map.bind("conveyor.test")
    for method, path, operation in operations(document):
        concrete = next(addresses(path, operation, defaultdict(lambda: [1])))
        assert urls.match(concrete, method.upper())[0] == f"api_v1.{operation['operationId']}"


def test_the_document_is_valid_openapi_3_1_with_every_path_parameter_declared(document):
    validate_openapi(document)
    assert document["openapi"].startswith("3.1")
    for method, path, operation in operations(document):
        named = set(re.findall(r"\{(\w+)\}", path))
        declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        assert named == declared, (method, path)
        assert {"401", "429"} <= set(operation["responses"]), (method, path)  # every call needs a token
        assert any(status.startswith("2") for status in operation["responses"]), (method, path)
        if "requestBody" in operation:
            assert "422" in operation["responses"], (method, path)
        if json_body(operation):  # what _json_body answers for a body that is not JSON
            assert {"400", "415"} <= set(operation["responses"]), (method, path)


def test_every_change_documents_the_403_a_read_only_token_is_answered(document):
    undocumented = [
        f"{method.upper()} {path}"
        for method, path, operation in operations(document)
        if method in WRITES and "403" not in operation["responses"]
    ]
    assert not undocumented


def test_the_document_is_open_to_anyone_and_names_the_server_it_came_from(client):
    answer = client.get("/api/v1/openapi.json", base_url="https://conveyor.example.org")
    assert answer.status_code == 200 and answer.json["servers"] == [{"url": "https://conveyor.example.org/"}]


# --------------------------------------------------------------------------- every answer


def test_every_operation_on_own_objects_answers_as_documented_and_every_read_succeeds(api, document, world):
    """Each operation with each own object (and each action): whatever the state allows, the
    answer is documented and matches its schema; each read answers some own object."""
    everything = by_kind(document)
    reads = [found for found in everything if found[0] == "get"]
    changes = [found for found in everything if found[0] not in ("get", "delete")]
    deletions = [found for found in everything if found[0] == "delete"]
    for method, path, operation in reads + changes + reads + deletions:  # read what was made too
        token = world.admin if set(operation.get("tags", [])) & ADMINS_ONLY else world.writer
        for address in addresses(path, operation, world.own):
            api(method, address, token, **sent(operation))
    missing = {op["operationId"] for _m, _p, op in operations(document)} - set(api.answered)
    assert not missing
    unread = {
        operation["operationId"]
        for method, path, operation in operations(document)
        if method == "get"
        and ids(path) <= world.own.keys()
        and 200 not in api.answered[operation["operationId"]]
    }
    assert not unread, f"reads that no own object answers with a 200: {sorted(unread)}"


def test_bad_bodies_and_bad_query_values_are_documented_4xx(api, document, world):
    for method, path, operation in operations(document):
        address = next(addresses(path, operation, world.own))
        token = world.admin if set(operation.get("tags", [])) & ADMINS_ONLY else world.writer
        if json_body(operation):
            for kwargs, status in (
                ({"data": "name=x", "content_type": "application/x-www-form-urlencoded"}, 415),
                ({"data": "{not json", "content_type": "application/json"}, 400),
                ({"json": ["a list"]}, 422),
                ({"json": {"name": 7, "unknown_field": True}}, 422),
            ):
                answer = api(method, address, token, **kwargs)
                assert answer.status_code == status, (method, address, kwargs, answer.json)
        if any(parameter["in"] == "query" for parameter in operation["parameters"]):
            typo = api(method, f"{address}?limt=500", world.writer, **sent(operation))  # not ignored
            assert typo.status_code == 422 and "limt" in typo.json["error"]["problems"], (method, address)
        nul = api(method, f"{address}?note=%00", world.writer)  # the app-wide NUL guard, documented
        assert nul.status_code == 400 and "400" in operation["responses"], (method, address)
        for parameter in operation["parameters"]:
            if parameter["in"] == "query" and "integer" in str(parameter["schema"]):
                answer = api(method, f"{address}?{parameter['name']}=abc", world.writer)
                assert answer.status_code in (400, 422), (method, address, parameter["name"])
                assert answer.json["error"]["code"]


def ids_naming_nothing(api, document, world, missing: int) -> None:
    wrong: list[str] = []
    for method, path, operation in operations(document):
        if not ids(path):
            continue
        address = next(addresses(path, operation, defaultdict(lambda: [missing])))
        token = world.admin if set(operation.get("tags", [])) & ADMINS_ONLY else world.writer
        answer = api(method, address, token, checked=False, **sent(operation))
        try:
            api.check(method, address, answer)
            assert answer.status_code in (404, 422 if unchecked_body(operation) else 404)
        except AssertionError:
            wrong.append(f"{method.upper()} {address}: {answer.status_code}")
    assert not wrong


def test_an_id_that_names_nothing_is_a_404_on_every_endpoint(api, document, world):
    ids_naming_nothing(api, document, world, 987654)


@pytest.mark.parametrize("huge", [2**31, 10**30])
def test_an_id_too_large_for_the_database_is_a_404_on_every_endpoint(api, document, world, huge):
    ids_naming_nothing(api, document, world, huge)


def test_a_run_page_by_page_its_files_and_its_actions_answer_as_documented(app, api, world):
    """The success of each run and job operation, with realistic data, and their refusals."""
    writer = world.writer
    app.config["PAGE_SIZE"] = 1
    history = api("get", "/api/v1/history?state=completed", writer).json
    assert history["runs"] and all(found["state"] == "completed" for found in history["runs"])
    assert api("get", "/api/v1/history?state=exploded", writer).status_code == 400
    page = api("get", "/api/v1/monitor", writer).json
    assert (
        page["total"] >= 1 and len(page["runs"]) == 1 and (page["next"] is None or "cursor=" in page["next"])
    )
    while page["next"]:
        page = api("get", page["next"], writer).json
    assert api("get", "/api/v1/monitor?cursor=%%%", writer).status_code == 400
    newest = api("get", "/api/v1/history", writer).json
    older = api("get", newest["next"], writer).json
    assert older["previous"] and api("get", older["previous"], writer).json["runs"] == newest["runs"]
    done = api("get", f"/api/v1/runs/{world.done_run}", writer).json
    assert done["state"] == "completed" and done["result_available"] and done["type"] == "user_data_export"
    result = api("get", f"/api/v1/runs/{world.done_run}/result", writer)
    assert result.status_code == 200 and "ann@example.org" in result.get_data(as_text=True)
    waiting = world.own["run_id"][0]
    assert api("get", f"/api/v1/runs/{waiting}/result", writer).status_code == 404  # none yet
    rejected = api("get", f"/api/v1/runs/{world.import_run}/rejections", writer).json["rejected"]
    assert [line["line"] for line in rejected] == [3]
    assert api("get", f"/api/v1/runs/{world.import_run}/log", writer).json["lines"]
    assert api("post", f"/api/v1/runs/{world.import_run}/dismiss", writer).status_code == 200

    paused = api("post", f"/api/v1/runs/{waiting}/pause", writer)  # an export is stopped, not paused
    assert paused.status_code == 409 and "cannot be paused" in paused.json["error"]["message"]
    assert api("post", f"/api/v1/runs/{waiting}/kill", writer).status_code == 403  # not an admin
    stopped = api("post", f"/api/v1/runs/{waiting}/stop", writer)
    assert stopped.status_code == 200 and stopped.json["run"]["state"] == "cancelled"
    assert api("post", f"/api/v1/runs/{waiting}/stop", writer).status_code == 409
    assert api("post", f"/api/v1/runs/{waiting}/dismiss", writer).status_code == 200
    retried = api("post", f"/api/v1/runs/{waiting}/retry", writer)
    assert retried.status_code == 409 and "failed" in retried.json["error"]["message"]

    run = db.session.get(Run, world.done_run)
    run.result_deleted_at = utcnow()
    db.session.commit()
    assert api("get", f"/api/v1/runs/{world.done_run}/result", writer).status_code == 410


def test_jobs_and_groups_made_changed_run_and_deleted_answer_as_documented(app, api, world):
    writer = world.writer
    first, group, alone = world.own["job_id"]
    made = api("post", "/api/v1/jobs", writer, json=BODIES["create_job"])
    assert made.status_code == 201 and made.json["name"] == "Made by a script"
    assert (
        api("post", "/api/v1/jobs", writer, json={"type": "user_data_export", "name": ""}).status_code == 422
    )
    renamed = api("patch", f"/api/v1/jobs/{first}", writer, json={"name": "Renamed", "bom": False})
    assert renamed.status_code == 200 and renamed.json["name"] == "Renamed"
    assert api("patch", f"/api/v1/jobs/{first}", writer, json={"notify_on": "sometimes"}).status_code == 422
    assert api("patch", f"/api/v1/jobs/{group}", writer, json={"fields": ["email"]}).status_code == 409
    assert api("post", f"/api/v1/jobs/{first}/activate", writer).status_code == 409  # a job, not a group
    assert api("post", f"/api/v1/jobs/{group}/deactivate", writer).status_code == 200
    assert api("post", f"/api/v1/jobs/{group}/activate", writer).status_code == 200
    assert api("delete", f"/api/v1/jobs/{first}", writer).status_code == 409  # a step of the group
    assert api("delete", f"/api/v1/jobs/{made.json['id']}", writer).json == {"deleted": made.json["id"]}
    assert api("post", f"/api/v1/jobs/{made.json['id']}/runs", writer).status_code == 409  # deleted

    listed = api("get", "/api/v1/groups", writer).json["groups"]
    assert [(found["id"], found["activated"]) for found in listed] == [(group, True)]
    assert api("post", f"/api/v1/groups/{group}/resume", writer).status_code == 409  # none paused
    started = api("post", f"/api/v1/groups/{group}/runs", writer)
    assert started.status_code == 201 and started.json["type"] == "job_group"
    paused = api("post", f"/api/v1/groups/{group}/pause", writer)
    assert paused.status_code == 200 and paused.json["run"]["id"] == started.json["id"]
    job_run = api("post", f"/api/v1/jobs/{alone}/runs", writer)
    assert job_run.status_code == 201 and job_run.json["state"] in ("queued", "initializing")
    work(app)
    assert api("get", f"/api/v1/runs/{job_run.json['id']}", writer).json["state"] == "completed"
    assert api("post", f"/api/v1/groups/{group}/retry", writer).status_code == 409  # none failed
    held = api("get", f"/api/v1/runs/{started.json['id']}", writer).json
    assert held["state"] == "paused" and held["progress"]["done"] == 1  # after its first step
    assert api("post", f"/api/v1/groups/{group}/resume", writer).status_code == 200
    work(app)
    assert api("get", f"/api/v1/runs/{started.json['id']}", writer).json["state"] == "completed"


# --------------------------------------------------------------------------- every endpoint's rules


def test_another_users_object_is_a_404_without_data_on_every_endpoint(api, document, world):
    before = {(job.id, job.active, job.name) for job in Job.query.all()}
    runs = {(run.id, run.state, run.in_monitor) for run in Run.query.all()}
    checked = 0
    for method, path, operation in by_kind(document):
        if not ids(path) or ids(path) & SHARED or not ids(path) <= world.other.keys():
            continue
        for address in addresses(path, operation, world.other):
            answer = api(method, address, world.writer, **sent(operation))
            assert set(answer.json) == {"error"}, (method, address, answer.json)  # nothing of theirs
            if not unchecked_body(operation):
                assert answer.json["error"]["code"] == "not_found", (method, address, answer.json)
            checked += 1
    assert checked >= 20
    db.session.expire_all()
    assert {(job.id, job.active, job.name) for job in Job.query.all()} == before  # nothing changed
    assert {(run.id, run.state, run.in_monitor) for run in Run.query.all()} == runs


def test_an_admins_token_sees_nothing_of_another_users_and_a_super_admins_what_its_owner_sees(
    api, document, world, auth, users
):
    theirs = make_token(api.client, auth, users["other"].email, name="Theirs")
    seen = 0
    for method, path, operation in operations(document):
        if method != "get" or not ids(path) or ids(path) & SHARED or not ids(path) <= world.other.keys():
            continue
        for address in addresses(path, operation, world.other):
            admin = api(method, address, world.admin)  # an admin manages users, not their results
            assert admin.status_code == 404 and set(admin.json) == {"error"}, address
            owner, super_admin = api(method, address, theirs), api(method, address, world.super)
            assert super_admin.status_code == owner.status_code, address  # as on the screens
            if owner.status_code == 200 and owner.mimetype == "application/json":
                assert super_admin.json == owner.json, address
            seen += owner.status_code == 200
    assert seen >= 8


def test_a_read_only_token_is_refused_every_change_and_changes_nothing(api, document, world):
    runs = {(run.id, run.state) for run in Run.query.all()}
    for method, path, operation in operations(document):
        if method not in WRITES:
            continue
        for address in addresses(path, operation, world.own):
            answer = api(method, address, world.reader, **sent(operation))
            assert answer.status_code == 403, (method, address)
            assert answer.json["error"] == {"code": "forbidden", "message": "this API token is read-only"}
    db.session.expire_all()
    assert {(run.id, run.state) for run in Run.query.all()} == runs
    assert Job.query.filter_by(active=False).count() == 0


def test_no_token_a_wrong_a_revoked_or_an_expired_token_and_a_browser_session_are_a_401(
    api, document, world, auth
):
    revoked, expired = (make_token(api.client, auth, "user@example.org", name=name) for name in "RE")
    for token in ApiToken.query.filter(ApiToken.name.in_(["R", "E"])):
        if token.name == "R":
            token.revoked_at = utcnow()
        else:
            token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    auth.login("user@example.org")  # a browser session: its cookie is sent with every request below
    for method, path, operation in operations(document):
        address = next(addresses(path, operation, world.own))
        for secret in (None, "cvy_not-a-token", revoked, expired, world.writer.upper()):
            answer = api(method, address, secret, **sent(operation))
            assert answer.status_code == 401, (method, address, secret)
            assert answer.json["error"]["code"] == "unauthorized"
        basic = api(method, address, headers={"Authorization": f"Basic {world.writer}"}, **sent(operation))
        assert basic.status_code == 401


def test_an_unknown_address_or_method_under_the_api_is_a_json_error(api, world):
    for secret in (world.writer, None):
        for path in (
            "/api/v1/nothing-here",
            "/api/v1/runs/1/explode",
            "/api/v1/runs/abc",
            "/api/v1/",
            "/api/v1",
        ):
            answer = api("get", path, secret)
            assert answer.status_code == 404 and answer.json["error"]["code"] == "not_found", path
    listed = api("get", "/api/v1/supporters", world.writer)
    assert listed.status_code == 200 and listed.headers["Cache-Control"] == "no-store"  # personal data
    wrong = api("delete", "/api/v1/monitor", world.writer)
    assert wrong.status_code == 405 and wrong.json["error"]["code"]


def test_a_token_polled_from_one_address_notes_its_use_at_most_once_a_minute(api, world):
    token = ApiToken.query.filter_by(name="Writer").one()
    for _ in range(2):
        api("get", f"/api/v1/runs/{world.done_run}", world.writer)
    db.session.expire_all()
    first_noted = token.last_used_at
    assert first_noted is not None and token.last_used_ip == "127.0.0.1"
    api("get", f"/api/v1/runs/{world.done_run}", world.writer)
    db.session.expire_all()
    assert token.last_used_at == first_noted  # not written again within the minute
    token.last_used_at = utcnow() - timedelta(minutes=2)
    db.session.commit()
    api("get", f"/api/v1/runs/{world.done_run}", world.writer)
    db.session.expire_all()
    assert token.last_used_at > first_noted


def test_a_wrong_id_with_a_bad_body_is_the_ids_404_not_the_bodys_422(api, document, world):
    """What the address names is looked up before the body is read."""
    wrong: list[str] = []
    for method, path, operation in operations(document):
        if not ids(path) or not json_body(operation):
            continue
        address = next(addresses(path, operation, defaultdict(lambda: [987654])))
        token = world.admin if set(operation.get("tags", [])) & ADMINS_ONLY else world.writer
        answer = api(method, address, token, checked=False, json={"no such field": True})
        if answer.status_code != 404:
            wrong.append(f"{method.upper()} {address}: {answer.status_code}")
    assert not wrong
