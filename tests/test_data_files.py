"""Data files under var/ are their owner's only; abandoned uploads, deleted jobs' files, old run
logs, outbox messages and half-written results do not stay on disk for ever."""

from __future__ import annotations

import os
import stat
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import embedded_only, export_job, fresh, import_job, upload_csv, work
from webapp.api.routes import bounce_token
from webapp.config import load_config
from webapp.engine import retention, scheduler_loop
from webapp.engine.retention import LOG_DELETED, sweep_uploads
from webapp.engine.runs import new_run, start_run
from webapp.engine.transitions import log
from webapp.extensions import db
from webapp.jobs.uploads import load_upload
from webapp.mailing.transport import OutboxConnection, Outgoing
from webapp.models import Job
from webapp.models.base import utcnow
from webapp.models.runs import Run, RunLogLine
from webapp.rules.states import RunState
from webapp.storage import current_storage

CSV = "email,zip\nann@example.org,02134\n"


@pytest.fixture(autouse=True)
def usual_umask():
    """Every process starts with the usual umask 022 (files 0644), not one a test left behind."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def age(path: str | Path, **ago: float) -> None:
    """Make a file look last written `ago` (timedelta arguments) before now."""
    then = time.time() - timedelta(**ago).total_seconds()
    os.utime(path, (then, then))


def new_upload(client, name: str = "Spring import") -> str:
    """Upload the CSV through the wizard; its token."""
    response = upload_csv(client, CSV, name=name)
    assert response.status_code == 302
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[1]


def map_upload(client, token: str) -> Job:
    """Save the upload's mapping: the job that now owns its file."""
    response = client.post(
        f"/jobs/new/import/{token}",
        data={"name": "Mapped", "col_0": "email", "col_1": "zip", "action": "save"},
    )
    assert response.status_code == 302
    return Job.query.order_by(Job.id.desc()).first()


def stored(key: str) -> str:
    """The local file of a storage key (the tests' storage is the local folders)."""
    path = current_storage().path(key)
    assert path is not None
    return path


def upload_files(app, token: str) -> list[str]:
    return sorted(n for n in os.listdir(app.config["UPLOADS_DIR"]) if n.startswith(token))


@embedded_only  # about the SQLite file and its settings
def test_every_file_written_under_var_is_the_owners_only(app, client, auth, users, tmp_path):
    auth.login("user@example.org")
    token = new_upload(client)
    run = start_run(export_job(users["user"]), users["user"])
    work(app)
    OutboxConnection(app.config["OUTBOX_DIR"]).send(
        Outgoing("conveyor@example.org", "ann@example.org", b"Subject: hi\r\n\r\nhello\r\n")
    )
    bounce_token()
    own = load_config({"VAR_DIR": str(tmp_path / "own")})  # its secret key is generated

    files = [os.path.join(app.config["UPLOADS_DIR"], name) for name in upload_files(app, token)]
    files += [
        stored(fresh(run).result_path),
        tmp_path / "test.db",
        tmp_path / "own" / "secret_key",
        os.path.join(app.config["VAR_DIR"], "bounce_token"),
    ]
    files += [os.path.join(app.config["OUTBOX_DIR"], n) for n in os.listdir(app.config["OUTBOX_DIR"])]
    assert len(files) == 7  # the upload and its record, result, database, key, token, message
    assert {str(f): oct(mode(f)) for f in files} == {str(f): "0o600" for f in files}
    folders = [app.config[key] for key in ("VAR_DIR", "UPLOADS_DIR", "RESULTS_DIR", "OUTBOX_DIR")]
    assert {f: oct(mode(f)) for f in [*folders, own["VAR_DIR"]]} == {
        f: "0o700" for f in [*folders, own["VAR_DIR"]]
    }


def test_an_older_install_readable_by_others_is_made_owner_only_at_start(tmp_path):
    var = tmp_path / "var"
    (var / "uploads").mkdir(parents=True)
    for path in (var / "conveyor.db", var / "uploads" / "abc.csv"):
        path.write_text("data")
        path.chmod(0o644)
    var.chmod(0o755)
    (var / "uploads").chmod(0o755)
    load_config({"VAR_DIR": str(var), "SECRET_KEY": "x", "BOUNCE_TOKEN": "x"})
    assert [
        oct(mode(p)) for p in (var, var / "uploads", var / "conveyor.db", var / "uploads" / "abc.csv")
    ] == ["0o700", "0o700", "0o600", "0o600"]


def test_an_upload_never_mapped_is_deleted_after_24_hours_and_a_mapped_one_kept(app, client, auth, users):
    auth.login("user@example.org")
    abandoned, young, mapped = new_upload(client), new_upload(client), new_upload(client)
    job = map_upload(client, mapped)
    for token in (abandoned, mapped):
        for name in upload_files(app, token):
            age(os.path.join(app.config["UPLOADS_DIR"], name), hours=25)

    assert sweep_uploads() == 1
    assert upload_files(app, abandoned) == []
    assert load_upload(abandoned, users["user"].id) is None
    assert upload_files(app, young) == [f"{young}.csv", f"{young}.json"]
    assert os.path.exists(stored(job.params["path"]))


def test_deleting_an_import_job_deletes_its_upload_unless_a_run_still_needs_it(
    app, client, auth, users, tmp_path
):
    auth.login("user@example.org")
    plain = map_upload(client, new_upload(client))
    paused = map_upload(client, new_upload(client))
    run = new_run(paused, users["user"], RunState.PAUSED, trigger="manual")
    outside = tmp_path / "elsewhere.csv"
    outside.write_text(CSV)
    foreign = import_job(users["user"], outside, ["email", "zip"])  # not one of our uploads
    db.session.commit()
    for job in (plain, paused, foreign):
        assert client.post(f"/jobs/{job.id}/delete").status_code == 302

    assert not os.path.exists(stored(plain.params["path"]))
    assert os.path.exists(stored(paused.params["path"]))  # the paused run resumes from it
    assert outside.exists()
    fresh(run).state = RunState.CANCELLED
    db.session.commit()
    age(stored(paused.params["path"]), hours=25)
    assert sweep_uploads() == 1 and not os.path.exists(stored(paused.params["path"]))


def test_the_hourly_sweep_deletes_old_logs_outbox_messages_and_partial_results(app, users):
    owner, days = users["user"], timedelta(days=31)
    old = new_run(
        export_job(owner, name="Old"),
        owner,
        RunState.COMPLETED,
        trigger="manual",
        finished_at=utcnow() - days,
        checked=7,
    )
    recent = new_run(
        export_job(owner, name="Recent"), owner, RunState.COMPLETED, trigger="manual", finished_at=utcnow()
    )
    for run in (old, recent):
        log(run, "Exported 7 rows.")
        log(run, "Completed.")
    cancelled = new_run(
        export_job(owner, name="Stopped"),
        owner,
        RunState.CANCELLED,
        trigger="manual",
        finished_at=utcnow() - days,
    )
    failed = new_run(
        export_job(owner, name="Failed"),
        owner,
        RunState.FAILED,
        trigger="manual",
        finished_at=utcnow() - days,
    )
    db.session.commit()
    ids = {"old": old.id, "recent": recent.id}
    results, outbox = Path(app.config["RESULTS_DIR"]), Path(app.config["OUTBOX_DIR"])
    files = {
        "stale part": results / f"run-{cancelled.id}-export.csv.part",
        "resumable part": results / f"run-{failed.id}-export.csv.part",
        "old message": outbox / "20200101-000000-aaaa.eml",
        "new message": outbox / "20990101-000000-bbbb.eml",
    }
    for name, path in files.items():
        path.write_text("x")
        if name != "new message":
            age(path, days=31)

    scheduler_loop.loop(once=True)

    lines = {
        name: [line.message for line in RunLogLine.query.filter_by(run_id=run_id)]
        for name, run_id in ids.items()
    }
    assert lines == {"old": [LOG_DELETED], "recent": ["Exported 7 rows.", "Completed."]}
    assert db.session.get(Run, ids["old"]).checked == 7  # the run and its counts stay
    assert {name for name, path in files.items() if path.exists()} == {"resumable part", "new message"}


def test_a_retention_sweep_that_fails_does_not_stop_the_others(app, monkeypatch):
    def broken() -> int:
        raise RuntimeError("the upload sweep is broken")

    monkeypatch.setattr(retention, "sweep_uploads", broken)
    message = Path(app.config["OUTBOX_DIR"]) / "20200101-000000-aaaa.eml"
    message.write_text("x")
    age(message, days=31)
    scheduler_loop.loop(once=True)
    assert not message.exists()
