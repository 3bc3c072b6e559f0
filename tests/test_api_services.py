"""Import Service and Export Service: imports and exports started through POST /api/v1/imports
and /api/v1/exports, run as their own types with the counts, rejected lines, Stop, Retry and
result of any run."""

from __future__ import annotations

import csv
import io
import json
import os
import threading

import pytest

from tests.conftest import export_job, fresh, in_thread, upload_csv, work
from tests.test_api_tokens import api, make_token
from webapp.api.v1.spec import document
from webapp.engine.retention import sweep_uploads
from webapp.extensions import db
from webapp.models import Job, Run, Supporter
from webapp.rules.states import RunState
from webapp.storage import current_storage

PEOPLE = (
    "E-mail,Given name,ZIP\n"
    "ann@example.org,Ann,02134\n"
    "bob@example.org,Bob,1234\n"  # line 3: a bad ZIP
    "not-an-email,Cy,10001\n"  # line 4: a bad email
    "dee@example.org,Dee,10001\n"
)
MAP = "?map=E-mail:email&map=Given name:first_name&map=ZIP:zip"


@pytest.fixture
def writer(client, auth, users) -> str:
    return make_token(client, auth, "user@example.org", access="write")


def post_import(client, secret, body: str | bytes, query: str = MAP, kind: str = "text/csv", **headers):
    data = body.encode() if isinstance(body, str) else body
    return client.post(
        f"/api/v1/imports{query}",
        data=data,
        content_type=kind,
        headers={"Authorization": f"Bearer {secret}", **headers},
    )


def post_export(client, secret, body: dict, **headers):
    return client.post("/api/v1/exports", json=body, headers={"Authorization": f"Bearer {secret}", **headers})


def rejected(client, secret, run_id: int) -> list[tuple[int, str]]:
    answer = api(client, f"/api/v1/runs/{run_id}/rejections", secret)
    assert answer.status_code == 200
    return [(line["line"], line["reason"]) for line in answer.json["rejected"]]


def test_a_csv_sent_to_the_api_counts_as_the_same_file_uploaded_on_the_page(app, client, auth, writer):
    answer = post_import(client, writer, PEOPLE)
    assert answer.status_code == 202, answer.json
    assert answer.json["type"] == "import_service" and answer.json["type_label"] == "Import Service"
    assert answer.json["state"] == "queued" and answer.json["job_name"] == "Import through the API"
    work(app)
    by_api = api(client, f"/api/v1/runs/{answer.json['id']}", writer).json
    assert by_api["state"] == "completed"
    lines_by_api = rejected(client, writer, by_api["id"])
    assert lines_by_api == [
        (3, "line 3: '1234' is not a valid US ZIP code (like 12345 or 12345-6789)"),
        (4, "line 4: 'not-an-email' is not a valid email address"),
    ]
    assert Supporter.query.filter_by(email="ann@example.org").one().first_name == "Ann"

    Supporter.query.delete()  # the same file again, now by the upload page
    db.session.commit()
    auth.login("user@example.org")
    mapped = client.post(
        upload_csv(client, PEOPLE).headers["Location"],
        data={"name": "Page", "col_0": "email", "col_1": "first_name", "col_2": "zip", "action": "save_run"},
    )
    by_page = Run.query.filter_by(job_type="user_data_import").one()
    assert mapped.status_code == 302
    auth.logout()
    work(app)
    assert (
        by_api["counts"]
        == fresh(by_page).counts
        == {
            "checked": 4,
            "created": 2,
            "updated": 0,
            "unchanged": 0,
            "skipped": 0,
            "rejected": 2,
        }
    )
    assert rejected(client, writer, by_page.id) == lines_by_api


def test_an_api_import_is_a_hidden_job_of_its_own_run_by_the_api_and_retired_when_done(app, client, writer):
    run_id = post_import(client, writer, PEOPLE, MAP + "&name=Nightly CRM&readd_deleted=true").json["id"]
    run = db.session.get(Run, run_id)
    assert (run.job_type, run.job_name, run.trigger) == ("import_service", "Nightly CRM", "api")
    assert run.job.params["readd_deleted"] is True and run.job.params["sent_as"] == "csv"
    listed = api(client, "/api/v1/jobs", writer).json["jobs"]
    assert listed == []  # not on the Jobs page
    assert run.job.active  # its file is kept while the run may need it
    work(app)
    assert not fresh(run).job.active  # completed: the upload sweep may take its file


def test_without_a_mapping_the_columns_are_guessed_as_on_the_mapping_page(app, client, writer):
    answer = post_import(client, writer, "Email,First name,Shoe size\nann@example.org,Ann,9\n", query="")
    assert answer.status_code == 202, answer.json
    assert db.session.get(Run, answer.json["id"]).job.params["mapping"] == ["email", "first_name", ""]


def test_a_saved_import_jobs_mapping_is_used_and_another_users_job_is_a_404(app, client, auth, users, writer):
    auth.login("user@example.org")
    client.post(
        upload_csv(client, PEOPLE).headers["Location"],
        data={"name": "Saved", "col_0": "email", "col_1": "last_name", "col_2": "", "action": "save"},
    )
    auth.logout()
    saved = Job.query.filter_by(job_type="user_data_import").one()
    answer = post_import(client, writer, PEOPLE, f"?job_id={saved.id}")
    assert answer.status_code == 202, answer.json
    assert db.session.get(Run, answer.json["id"]).job.params["mapping"] == ["email", "last_name", ""]
    work(app)
    assert Supporter.query.filter_by(email="ann@example.org").one().last_name == "Ann"

    theirs = export_job(users["other"])
    assert post_import(client, writer, PEOPLE, f"?job_id={theirs.id}").status_code == 404
    own_export = export_job(users["user"])
    assert post_import(client, writer, PEOPLE, f"?job_id={own_export.id}").status_code == 422


def test_json_lines_are_imported_with_their_keys_as_the_fields(app, client, writer):
    lines = [
        {"email": "ann@example.org", "first_name": "Ann", "opted_in": True, "donation_total": 12.5},
        {"email": "bob@example.org", "zip": "1234"},
    ]
    body = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    answer = post_import(client, writer, body, query="", kind="application/x-ndjson")
    assert answer.status_code == 202, answer.json
    work(app)
    run = api(client, f"/api/v1/runs/{answer.json['id']}", writer).json
    assert (run["counts"]["created"], run["counts"]["rejected"]) == (1, 1)
    ann = Supporter.query.filter_by(email="ann@example.org").one()
    assert (ann.first_name, ann.opted_in, float(ann.donation_total)) == ("Ann", True, 12.5)
    assert rejected(client, writer, run["id"])[0][0] == 3  # body line 2 is line 3 (after the header)


@pytest.mark.parametrize(
    "body,query,kind,status,said",
    [
        (PEOPLE, MAP, "application/json", 415, "send the body as CSV"),
        (PEOPLE, MAP, "text/plain", 415, "send the body as CSV"),
        (b"", MAP, "text/csv", 400, "The file is empty."),
        (b"email\n", "", "text/csv", 400, "header row but no data rows"),
        (b"email\nb\xe9a@example.org\n", "", "text/csv", 400, "not valid UTF-8 (line 2"),
        (b"PK\x03\x04\x14\x00binary", "", "text/csv", 400, "not a CSV file"),
        (PEOPLE, "?map=E-mail:e_mail", "text/csv", 422, "'e_mail' is no supporter field"),
        (PEOPLE, "?map=email", "text/csv", 422, "is not Column:field"),
        (PEOPLE, "?map=Email address:email", "text/csv", 422, "does not have: 'Email address'"),
        (PEOPLE, "?map=Given name:first_name", "text/csv", 422, "Map one column to Email"),
        (PEOPLE, "?encoding=utf-16", "text/csv", 422, "encoding"),
        (PEOPLE, "?mapping=x", "text/csv", 422, "mapping"),
        (PEOPLE, "?name=%20%20", "text/csv", 422, "give the import a name"),
        ('{"email": "a@example.org", "shoe": 9}', "", "application/x-ndjson", 422, "'shoe' is no supporter"),
        ('{"email": ["a@example.org"]}', "", "application/x-ndjson", 422, "line 1: the value of email"),
        ('{"email": "a@example.org"}\n{oops', "", "application/x-ndjson", 400, "Line 2 is not valid JSON"),
        ('["a@example.org"]', "", "application/x-ndjson", 400, "Line 1 is not a JSON object"),
        ("\n\n", "", "application/x-ndjson", 400, "holds no JSON object"),
        ('{"first_name": "X"}', "", "application/x-ndjson", 422, "no line has an email"),
        (
            '{"email": ' + "[" * 50_000 + "]" * 50_000 + "}",
            "",
            "application/x-ndjson",
            400,
            "nests too deeply",
        ),
        ('{"email": "a@example.org"}', MAP, "application/x-ndjson", 422, "map and job_id are for a CSV"),
    ],
)
def test_a_bad_import_request_is_refused_with_its_reason_and_nothing_kept(
    app, client, writer, body, query, kind, status, said
):
    answer = post_import(client, writer, body, query, kind)
    assert answer.status_code == status, answer.json
    assert said in answer.json["error"]["message"]
    assert Run.query.count() == 0 and Job.query.count() == 0
    assert os.listdir(app.config["UPLOADS_DIR"]) == []


@pytest.mark.parametrize("chunked", [False, True], ids=["with its length", "chunked"])
@pytest.mark.parametrize(
    "kind,head,line",
    [
        ("text/csv", "email\n", "person{}@example.org\n"),
        ("application/x-ndjson", "", '{{"email": "p{}@example.org"}}\n'),
    ],
)
def test_a_body_over_the_upload_limit_is_a_413_and_nothing_kept(
    app, client, writer, kind, head, line, chunked
):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    big = (head + "".join(line.format(i) for i in range(500))).encode()
    headers = {"Authorization": f"Bearer {writer}"}
    if chunked:  # streamed without a Content-Length: counted as it is read
        headers["Transfer-Encoding"] = "chunked"
    answer = client.post(
        "/api/v1/imports",
        input_stream=io.BytesIO(big),
        content_type=kind,
        headers=headers,
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert answer.status_code == 413 and answer.json["error"]["code"] == "too_large"
    assert Run.query.count() == 0 and os.listdir(app.config["UPLOADS_DIR"]) == []


def test_a_read_only_token_may_neither_import_nor_export(client, auth, users):
    reader = make_token(client, auth, "user@example.org")
    assert post_import(client, reader, PEOPLE).status_code == 403
    assert post_export(client, reader, {}).status_code == 403
    assert Run.query.count() == 0


def test_an_import_service_run_is_stopped_and_a_failed_one_retried_by_the_api(app, client, auth, writer):
    queued = post_import(client, writer, PEOPLE).json["id"]
    stopped = client.post(f"/api/v1/runs/{queued}/stop", headers={"Authorization": f"Bearer {writer}"})
    assert stopped.status_code == 200 and stopped.json["run"]["state"] == "cancelled"
    assert not db.session.get(Run, queued).job.active

    run = db.session.get(Run, post_import(client, writer, PEOPLE).json["id"])
    good = dict(run.job.params)
    run.job.params = {**good, "encoding": "utf-32"}  # the run fails on it
    db.session.commit()
    work(app)
    assert fresh(run).state is RunState.FAILED and fresh(run).job.active  # kept for Retry
    auth.login("user@example.org")
    assert ">Retry</button>" in client.get(f"/runs/{run.id}").get_data(as_text=True)  # as on its page
    auth.logout()
    run.job.params = good
    db.session.commit()
    retried = client.post(f"/api/v1/runs/{run.id}/retry", headers={"Authorization": f"Bearer {writer}"})
    assert retried.status_code == 200, retried.json
    work(app)
    assert fresh(run).state is RunState.COMPLETED
    assert (fresh(run).created, fresh(run).rejected) == (2, 2)


def test_an_export_service_run_leaves_a_result_downloaded_by_the_api(app, client, users, writer):
    post_import(client, writer, PEOPLE)
    work(app)
    answer = post_export(client, writer, {"fields": ["email", "first_name"], "bom": False})
    assert answer.status_code == 202, answer.json
    assert answer.json["type_label"] == "Export Service"
    assert answer.json["job_name"] == "Export through the API"
    work(app)
    run = api(client, f"/api/v1/runs/{answer.json['id']}", writer).json
    assert run["state"] == "completed" and run["result_available"] and run["counts"]["created"] == 2
    result = api(client, f"/api/v1/runs/{run['id']}/result", writer)
    assert result.status_code == 200
    assert list(csv.reader(io.StringIO(result.get_data(as_text=True)))) == [
        ["Email", "First name"],
        ["ann@example.org", "Ann"],
        ["dee@example.org", "Dee"],
    ]


def test_a_name_with_a_line_break_or_a_direction_override_downloads_under_a_plain_name(
    app, client, users, writer
):
    """A name holds whatever its owner sent; the file's name drops what would break the header
    (a CR LF) or disguise the file (U+202E), and the run leaves the monitor only once sent."""
    made = post_export(client, writer, {"name": "line\r\nX-Injected: 1 \u202egpj.exe", "fields": ["email"]})
    assert made.status_code == 202, made.json
    work(app)
    result = api(client, f"/api/v1/runs/{made.json['id']}/result", writer)
    assert result.status_code == 200 and "X-Injected" not in result.headers
    assert result.headers["Content-Disposition"] == (
        'attachment; filename="line X-Injected: 1 gpj.exe - export #1.csv"'
    )
    run = fresh(db.session.get(Run, made.json["id"]))
    assert run.downloaded_at is not None and run.in_monitor is False


def test_an_export_takes_a_saved_export_jobs_settings_and_refuses_bad_ones(app, client, users, writer):
    saved = export_job(users["user"], fields=["email"], name="Weekly")
    answer = post_export(client, writer, {"job_id": saved.id, "filter": "opted_in"})
    assert answer.status_code == 202, answer.json
    params = db.session.get(Run, answer.json["id"]).job.params
    assert (params["fields"], params["filter"], answer.json["job_name"]) == (["email"], "opted_in", "Weekly")
    theirs = export_job(users["other"])
    assert post_export(client, writer, {"job_id": theirs.id}).status_code == 404
    bad = post_export(client, writer, {"fields": ["shoe_size"]})
    assert bad.status_code == 422 and "fields" in bad.json["error"]["problems"]
    assert post_export(client, writer, {"filter": "created_since"}).status_code == 422
    assert post_export(client, writer, {"colour": "red"}).status_code == 422


def test_the_same_idempotency_key_answers_the_first_run(app, client, auth, writer):
    first = post_import(client, writer, PEOPLE, **{"Idempotency-Key": "nightly-2026-11-30"})
    again = post_import(client, writer, PEOPLE, **{"Idempotency-Key": "nightly-2026-11-30"})
    assert first.status_code == again.status_code == 202
    assert again.json["id"] == first.json["id"] and again.headers["Idempotent-Replayed"] == "true"
    other = post_import(client, writer, PEOPLE, **{"Idempotency-Key": "nightly-2026-12-01"})
    assert other.json["id"] != first.json["id"]
    export = post_export(client, writer, {}, **{"Idempotency-Key": "nightly-2026-11-30"})
    assert export.json["type"] == "export_service"  # keys are kept per endpoint
    theirs = make_token(client, auth, "other@example.org", access="write")
    own = post_import(client, theirs, PEOPLE, **{"Idempotency-Key": "nightly-2026-11-30"})
    assert own.status_code == 202 and "Idempotent-Replayed" not in own.headers  # and per user
    assert Run.query.count() == 4
    # the key with another file or other settings: not the first run's answer (it would drop them)
    other_file = post_import(
        client, writer, PEOPLE + "eve@example.org,Eve,10001\n", **{"Idempotency-Key": "nightly-2026-11-30"}
    )
    assert other_file.status_code == 422 and "another request" in other_file.json["error"]["message"]
    other_fields = post_export(
        client, writer, {"fields": ["email"]}, **{"Idempotency-Key": "nightly-2026-11-30"}
    )
    assert other_fields.status_code == 422
    assert Run.query.count() == 4


def test_a_refused_request_frees_its_idempotency_key(app, client, writer):
    key = {"Idempotency-Key": "retry-me"}
    assert post_import(client, writer, PEOPLE, "?map=x:y", **key).status_code == 422
    assert post_import(client, writer, PEOPLE, **key).status_code == 202


def test_the_openapi_document_describes_the_csv_and_json_lines_bodies(app):
    spec = document()
    imports = spec["paths"]["/api/v1/imports"]["post"]
    assert set(imports["requestBody"]["content"]) == {"text/csv", "application/x-ndjson"}
    assert {"202", "413", "415", "422"} <= set(imports["responses"])
    assert {p["name"] for p in imports["parameters"]} >= {"map", "job_id", "encoding", "name"}
    for path in ("/api/v1/imports", "/api/v1/transaction-imports"):  # repeated: a generated client sends each
        [mapping] = [p for p in spec["paths"][path]["post"]["parameters"] if p["name"] == "map"]
        assert {"type": "array", "items": {"type": "string"}} in mapping["schema"]["anyOf"]
    exports = spec["paths"]["/api/v1/exports"]["post"]
    assert "application/json" in exports["requestBody"]["content"]
    for described in (imports, exports):
        [once] = [p for p in described["parameters"] if p["in"] == "header"]
        assert once["name"] == "Idempotency-Key" and not once["required"]


def test_the_monitor_and_run_page_show_an_import_service_run_with_its_buttons(app, client, auth, writer):
    queued = post_import(client, writer, PEOPLE, MAP + "&name=From the CRM").json["id"]
    auth.login("user@example.org")
    row = client.get("/").get_data(as_text=True)
    assert "Import Service" in row and "From the CRM" in row
    assert ">Stop</button>" in client.get(f"/runs/{queued}").get_data(as_text=True)
    auth.logout()
    work(app)
    auth.login("user@example.org")
    page = client.get(f"/runs/{queued}").get_data(as_text=True)
    assert "Import Service" in page and "Download results (CSV)" in page
    assert "&#39;1234&#39; is not a valid US ZIP code" in page and "Download every rejected line" in page


def test_a_finished_api_imports_file_goes_with_the_upload_sweep_and_a_failed_ones_stays(app, client, writer):
    done = db.session.get(Run, post_import(client, writer, PEOPLE).json["id"])
    work(app)
    failed = db.session.get(Run, post_import(client, writer, PEOPLE).json["id"])
    failed.job.params = {**failed.job.params, "encoding": "utf-32"}
    db.session.commit()
    work(app)
    assert fresh(failed).state is RunState.FAILED
    app.config["UPLOAD_TTL_HOURS"] = -1  # every upload is older than that
    assert sweep_uploads() == 1
    storage = current_storage()
    assert not os.path.exists(storage.path(fresh(done).job.params["path"]))  # retired: swept
    assert os.path.exists(storage.path(fresh(failed).job.params["path"]))  # for its Retry


class _HeldBody(io.RawIOBase):
    """A request body that waits, half sent, until the test lets it finish."""

    def __init__(self, data: bytes) -> None:
        self.data, self.sent_half, self.go_on = data, threading.Event(), threading.Event()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0  # the test client rewinds a body before sending it: it is at its start

    def readinto(self, buffer) -> int:
        if not self.sent_half.is_set():
            self.sent_half.set()
        else:
            self.go_on.wait(10)
        chunk, self.data = self.data[: len(buffer) // 2 or 1], self.data[len(buffer) // 2 or 1 :]
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_key_whose_first_request_is_still_being_answered_is_a_409(app, client, writer):
    body, first = _HeldBody(PEOPLE.encode()), {}
    headers = {"Authorization": f"Bearer {writer}", "Idempotency-Key": "slow-upload"}

    def send_slowly():
        first["answer"] = app.test_client().post(
            f"/api/v1/imports{MAP}",
            input_stream=body,
            content_type="text/csv",
            headers={**headers, "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )

    thread, errors = in_thread(app, send_slowly)
    assert body.sent_half.wait(10)
    meanwhile = post_import(client, writer, PEOPLE, **{"Idempotency-Key": "slow-upload"})
    assert meanwhile.status_code == 409 and "still being answered" in meanwhile.json["error"]["message"]
    body.go_on.set()
    thread.join(20)
    assert not errors and first["answer"].status_code == 202
    again = post_import(client, writer, PEOPLE, **{"Idempotency-Key": "slow-upload"})
    assert again.json["id"] == first["answer"].json["id"] and Run.query.count() == 1
