"""Storage (webapp/storage): one contract, run against the local folders and against S3 (moto's
S3 server on 127.0.0.1); then Conveyor on S3 end to end: an upload mapped on another web server,
the import run by a worker, an export streamed from the bucket, retention deleting the objects,
a failed export retried from the partial file it left in the bucket, and the outbox."""

from __future__ import annotations

import io
import os
import time
import uuid
from datetime import timedelta

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import AuthActions, export_job, fresh, upload_csv, work
from webapp import create_app
from webapp.engine.retention import sweep_outbox, sweep_results, sweep_uploads
from webapp.engine.runs import retry_run, start_run
from webapp.extensions import db
from webapp.jobtypes import user_data_export
from webapp.mailing.transport import Outcome, Outgoing, connection_for
from webapp.models import Run, RunLogLine, Supporter
from webapp.models.base import utcnow
from webapp.models.settings import AccountSettings
from webapp.rules.states import RunState
from webapp.storage import Storage, current_storage, located
from webapp.storage.local import LocalStorage
from webapp.storage.s3 import S3Storage

CSV = "email,first_name\nann@example.org,Ann\nbob@example.org,Bob\nzoe@example.org,Zoë\n"


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server on 127.0.0.1, for the whole session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch) -> str:
    """A new, empty bucket; boto3 reaches it through the usual AWS variables, as in production."""
    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):  # (a developer's own, which would win)
        monkeypatch.delenv(name, raising=False)
    name = f"conveyor-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


def objects(bucket: str) -> dict[str, bytes]:
    """Every object of the bucket, by key."""
    client = boto3.client("s3")
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path) -> Storage:
    """Each backend in turn."""
    if request.param == "s3":
        return S3Storage(f"s3://{request.getfixturevalue('bucket')}/some/prefix")
    for area in ("uploads", "results", "outbox"):
        (tmp_path / area).mkdir()
    return LocalStorage({area: str(tmp_path / area) for area in ("uploads", "results", "outbox")})


def local_file(tmp_path, content: bytes, name: str = "scratch.part") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def test_a_saved_file_reads_back_and_a_second_save_replaces_it(storage):
    storage.save("uploads/a.json", io.BytesIO(b'{"one": 1}'))
    with storage.open("uploads/a.json") as stored:
        assert stored.read() == b'{"one": 1}'
    storage.save("uploads/a.json", io.BytesIO(b"{}"))
    with storage.open("uploads/a.json") as stored:
        assert stored.read() == b"{}"
    assert storage.size("uploads/a.json") == 2


def test_a_stored_local_file_leaves_its_path_and_fetch_brings_it_back(storage, tmp_path):
    big = os.urandom(3 * 1024 * 1024)  # several blocks (and S3 parts)
    path = local_file(tmp_path, big)
    storage.store("results/run-1-export.csv", path)
    assert not os.path.exists(path) and storage.size("results/run-1-export.csv") == len(big)
    storage.fetch("results/run-1-export.csv", path)
    assert open(path, "rb").read() == big
    with pytest.raises(FileNotFoundError):
        storage.size("results/run-1-export.csv")


@pytest.mark.parametrize("action", ["open", "size", "local_copy", "fetch"])
def test_a_missing_file_is_a_file_not_found_error(storage, tmp_path, action):
    with pytest.raises(FileNotFoundError):
        if action == "local_copy":
            with storage.local_copy("uploads/gone.csv"):
                pass
        elif action == "fetch":
            storage.fetch("uploads/gone.csv", str(tmp_path / "here.csv"))
        else:
            getattr(storage, action)("uploads/gone.csv")


def test_delete_deletes_and_a_file_already_gone_is_no_error(storage):
    storage.save("outbox/m.eml", io.BytesIO(b"Subject: hi\r\n\r\n"))
    storage.delete("outbox/m.eml")
    storage.delete("outbox/m.eml")
    assert [entry.key for entry in storage.entries("outbox")] == []


def test_entries_list_one_area_with_sizes_and_times_written(storage):
    before = time.time()
    storage.save("outbox/b.eml", io.BytesIO(b"12345"))
    storage.save("outbox/a.eml", io.BytesIO(b"1"))
    storage.save("results/run-1-export.csv", io.BytesIO(b"x"))
    listed = sorted(storage.entries("outbox"), key=lambda entry: entry.key)
    assert [(entry.key, entry.name, entry.size) for entry in listed] == [
        ("outbox/a.eml", "a.eml", 1),
        ("outbox/b.eml", "b.eml", 5),
    ]
    assert all(before - 2 <= entry.modified <= time.time() + 2 for entry in listed)  # (S3: whole seconds)


def test_a_local_copy_is_a_path_of_this_machine_for_the_block_only(storage):
    storage.save("uploads/t.csv", io.BytesIO(CSV.encode()))
    with storage.local_copy("uploads/t.csv") as path:
        assert open(path, encoding="utf-8").read() == CSV
    assert os.path.exists(path) is (storage.path("uploads/t.csv") is not None)  # a copy is gone


def test_only_the_local_backend_has_paths_and_each_file_says_where_it_is(storage, tmp_path):
    if isinstance(storage, LocalStorage):
        assert storage.path("results/r.csv") == str(tmp_path / "results" / "r.csv")
        assert storage.where("outbox") == str(tmp_path / "outbox")
    else:
        assert storage.path("results/r.csv") is None
        assert storage.where("results/r.csv").endswith("/some/prefix/results/r.csv")
    assert storage.where("results/r.csv").startswith(storage.where("results") + "/")


@pytest.mark.parametrize(
    "key", ["elsewhere/x", "uploads/", "uploads/../secret_key", "uploads/a/b", "uploads/.."]
)
def test_the_local_backend_refuses_a_key_outside_its_areas(tmp_path, key):
    with pytest.raises(ValueError):
        LocalStorage({"uploads": str(tmp_path / "uploads")}).open(key)


def test_an_absolute_path_recorded_before_storage_is_read_as_a_local_file(tmp_path):
    path = local_file(tmp_path, b"old result", "old.csv")
    s3 = S3Storage("s3://bucket")
    storage, key = located(s3, path)
    with storage.open(key) as old:
        assert old.read() == b"old result"
    assert located(s3, "results/run-1-export.csv") == (s3, "results/run-1-export.csv")


# Conveyor on S3, end to end


@pytest.fixture
def on_s3(app, bucket) -> str:
    """The test app configured with S3 storage (before anything used its storage)."""
    app.config["STORAGE_URL"] = f"s3://{bucket}/conveyor"
    return bucket


def local_files(app) -> list[str]:
    """What is on this machine's disk in the upload, result and outbox folders."""
    return [
        name for key in ("UPLOADS_DIR", "RESULTS_DIR", "OUTBOX_DIR") for name in os.listdir(app.config[key])
    ]


@pytest.fixture
def web2(app, tmp_path, on_s3):
    """A second web server: the same database, queue and bucket, an empty var dir of its own."""
    shared = ("SQLALCHEMY_DATABASE_URI", "REDIS_URL", "QUEUE_NAME", "SECRET_KEY", "BOUNCE_TOKEN")
    other = create_app(
        {
            **{key: app.config[key] for key in shared},
            "STORAGE_URL": f"s3://{on_s3}/conveyor",
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "VAR_DIR": str(tmp_path / "web2"),
        }
    )
    yield other
    with other.app_context():
        db.engine.dispose()


def test_on_s3_an_import_and_an_export_keep_nothing_on_local_disk(app, client, auth, users, on_s3):
    auth.login("user@example.org")
    mapping = upload_csv(client, CSV).headers["Location"]
    token = mapping.rsplit("/", 1)[1]
    assert set(objects(on_s3)) == {f"conveyor/uploads/{token}.csv", f"conveyor/uploads/{token}.json"}
    saved = client.post(
        mapping, data={"name": "Spring", "col_0": "email", "col_1": "first_name", "action": "save_run"}
    )
    assert saved.status_code == 302
    work(app)
    imported = Run.query.one()
    assert imported.state is RunState.COMPLETED and imported.created == 3
    assert imported.result_path == f"results/run-{imported.id}-import-report.csv"
    assert objects(on_s3)[f"conveyor/{imported.result_path}"] == b"line,reason\r\n"

    client.post(
        "/jobs/new/export",
        data={"name": "Zoë's list", "fields": ["email", "first_name"], "filter": "all", "action": "save_run"},
    )
    work(app)
    exported = Run.query.filter(Run.id != imported.id).one()
    assert exported.state is RunState.COMPLETED
    stored = objects(on_s3)[f"conveyor/{exported.result_path}"]
    assert stored.decode("utf-8-sig").splitlines() == [
        "Email,First name",
        "ann@example.org,Ann",
        "bob@example.org,Bob",
        "zoe@example.org,Zoë",
    ]
    response = client.get(f"/runs/{exported.id}/result")
    assert response.is_streamed and response.content_length == len(stored)
    assert response.headers["Content-Disposition"] == (  # as send_file words it from a local file
        f'attachment; filename="Zoe\'s list - export #{exported.number}.csv"; '
        f"filename*=UTF-8''Zo%C3%AB%27s%20list%20-%20export%20#{exported.number}.csv"
    )
    assert response.get_data() == stored
    assert local_files(app) == []  # the .json went with the mapping; the rest is in the bucket
    assert f"conveyor/uploads/{token}.json" not in objects(on_s3)


def add_supporters(count: int) -> None:
    db.session.execute(db.insert(Supporter), [{"email": f"p{i:04}@example.org"} for i in range(count)])
    db.session.commit()


def test_on_s3_retention_marks_a_run_deleted_only_once_its_object_is(app, users, on_s3):
    owner = users["user"]
    add_supporters(1)
    run = start_run(export_job(owner, fields=["email"]), owner)
    work(app)
    run = fresh(run)
    run.finished_at = utcnow() - timedelta(days=31)
    db.session.commit()
    key = f"conveyor/{run.result_path}"

    app.config["STORAGE_URL"] = "s3://conveyor-no-such-bucket/conveyor"  # the storage refuses
    app.extensions.pop("conveyor_storage")
    assert sweep_results() == 0
    assert fresh(run).result_deleted_at is None and key in objects(on_s3)

    app.config["STORAGE_URL"] = f"s3://{on_s3}/conveyor"
    app.extensions.pop("conveyor_storage")
    assert sweep_results() == 1
    assert fresh(run).result_deleted_at is not None and key not in objects(on_s3)


def test_a_web_server_with_an_empty_disk_maps_an_upload_made_on_another(app, client, auth, users, web2):
    auth.login("user@example.org")
    mapping = upload_csv(client, CSV, name="From web 1").headers["Location"]
    other = web2.test_client()
    AuthActions(other).login("user@example.org")
    page = other.get(mapping)
    assert page.status_code == 200
    assert "From web 1" in page.get_data(as_text=True) and "zoe@example.org" in page.get_data(as_text=True)
    saved = other.post(
        mapping, data={"name": "From web 1", "col_0": "email", "col_1": "first_name", "action": "save_run"}
    )
    assert saved.status_code == 302
    assert local_files(web2) == []
    work(app)  # the worker has the upload only through the bucket too
    db.session.expire_all()
    assert Run.query.one().state is RunState.COMPLETED
    assert Supporter.query.filter_by(email="zoe@example.org").one().first_name == "Zoë"


def test_on_s3_an_unmapped_upload_is_swept_from_the_bucket(app, client, auth, users, on_s3, monkeypatch):
    auth.login("user@example.org")
    upload_csv(client, CSV)
    app.config["UPLOAD_TTL_HOURS"] = -1  # every upload is older than that
    assert sweep_uploads() == 1 and objects(on_s3) == {}


@pytest.mark.parametrize("partial_kept", [True, False])
def test_on_s3_a_failed_export_is_retried_from_its_partial_file_in_the_bucket(
    app, users, on_s3, monkeypatch, partial_kept
):
    owner = users["user"]
    add_supporters(10)
    original = user_data_export._cell
    monkeypatch.setattr(
        user_data_export, "_cell", lambda value: original(value) if value != "p0007@example.org" else 1 / 0
    )
    run = start_run(export_job(owner, fields=["email"]), owner)
    work(app)
    run = fresh(run)
    assert run.state is RunState.FAILED and run.checkpoint["rows"] == 6  # two batches of 3
    partial = f"conveyor/results/run-{run.id}-export.csv.part"
    assert len(objects(on_s3)[partial]) >= run.checkpoint["bytes"]  # (and the failed batch's start)
    assert local_files(app) == []  # the retry may be on another machine
    if not partial_kept:  # as when the worker was killed outright on another machine
        boto3.client("s3").delete_object(Bucket=on_s3, Key=partial)
    monkeypatch.setattr(user_data_export, "_cell", original)
    retry_run(run, owner)
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED and (run.checked, run.created) == (10, 10)
    log = [line.message for line in RunLogLine.query.filter_by(run_id=run.id)]
    resumed = "Resuming after 6 rows already written." in log
    started_again = "The partial file of 6 rows is not here: the export starts again." in log
    assert (resumed, started_again) == (partial_kept, not partial_kept)
    stored = objects(on_s3)
    assert partial not in stored and local_files(app) == []
    assert stored[f"conveyor/{run.result_path}"].decode().splitlines() == [
        "Email",
        *(f"p{i:04}@example.org" for i in range(10)),
    ]


def test_on_s3_the_outbox_is_written_listed_shown_and_swept_through_the_bucket(
    app, client, auth, users, on_s3
):
    data = b"To: ann@example.org\r\nSubject: Hi\r\n\r\nHello\r\n"
    message = Outgoing("conveyor@example.org", "ann@example.org", data)
    connection = connection_for(None, app.config["OUTBOX_DIR"], current_storage())
    connection.open()
    assert connection.send(message, lambda: None).outcome is Outcome.SENT
    (key,) = objects(on_s3)
    name = key.rsplit("/", 1)[1]
    assert key == f"conveyor/outbox/{name}" and local_files(app) == []
    auth.login(users["super_admin"].email)
    listed = client.get("/admin/outbox?recipient=ann").get_data(as_text=True)
    assert f'href="/admin/outbox/{name}">Hi</a>' in listed
    assert "Hello" in client.get(f"/admin/outbox/{name}").get_data(as_text=True)
    assert client.get("/admin/outbox/gone.eml").status_code == 404
    assert client.get("/admin/outbox/a%00.eml").status_code == 404
    AccountSettings.get().retention_days = 0  # every message is past it
    db.session.commit()
    assert sweep_outbox() == 1 and objects(on_s3) == {}


def test_on_s3_campaign_messages_and_notifications_without_a_relay_land_in_the_bucket(app, users, on_s3):
    from tests.test_email_campaign import campaign_for, launch, supporters
    from webapp.mailing.notifications import notify

    supporters(2)
    launch(campaign_for(users["user"], notify_email=""), users["user"])
    work(app)
    assert notify("owner@park.example", "[Conveyor] Done", "It is done.")
    keys = sorted(objects(on_s3))
    assert len(keys) == 3 and all(key.startswith("conveyor/outbox/") for key in keys)
    assert local_files(app) == []  # nothing stayed on the machine that sent them


@pytest.fixture
def unreachable(app, monkeypatch) -> None:
    """S3 storage whose endpoint answers nothing (a closed port)."""
    from tests.conftest import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    app.config["STORAGE_URL"] = "s3://nowhere/conveyor"


def test_while_the_storage_is_unreachable_pages_say_so_and_nothing_saved_is_lost(
    app, client, auth, users, unreachable
):
    auth.login(users["user"].email)
    refused = upload_csv(client, CSV)
    assert refused.status_code == 503  # the form again, with what happened under the file
    assert "The file storage did not answer, so the file was not saved" in refused.get_data(as_text=True)
    assert 'name="name"' in refused.get_data(as_text=True)
    assert local_files(app) == []  # the checked file was not left behind
    assert client.get("/jobs/new/import/sometoken").status_code == 503  # not "no such upload"
    job = export_job(users["user"])
    run = start_run(job, users["user"])
    run.result_path = f"results/run-{run.id}-export.csv"
    run.state = RunState.COMPLETED
    db.session.commit()
    download = client.get(f"/runs/{run.id}/result")
    assert download.status_code == 503 and "try again in a moment" in download.get_data(as_text=True)
    assert fresh(run).result_deleted_at is None  # not taken for a file past its retention
