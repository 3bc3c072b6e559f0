"""One identity for the deployment: on a shared database every process refuses to start without
CONVEYOR_SECRET_KEY and CONVEYOR_BOUNCE_TOKEN; on the embedded default they are generated once,
atomically, and every process reads the same values."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from webapp import create_app
from webapp.config import MissingIdentity, kept_secret, load_config

ROOT = Path(__file__).resolve().parents[1]
SHARED = "postgresql://conveyor:secret@127.0.0.1:1/conveyor"  # never connected to


@pytest.fixture
def no_identity(monkeypatch):
    """An environment that sets neither variable (nor a database)."""
    for variable in ("CONVEYOR_SECRET_KEY", "CONVEYOR_BOUNCE_TOKEN", "CONVEYOR_DATABASE_URL"):
        monkeypatch.delenv(variable, raising=False)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a Conveyor process on a shared database, without the two variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CONVEYOR_SECRET_KEY", "CONVEYOR_BOUNCE_TOKEN") and not key.startswith("PYTEST")
    }
    env.update(
        CONVEYOR_VAR_DIR=str(tmp_path / "var"),
        CONVEYOR_DATABASE_URL=SHARED,
        CONVEYOR_REDIS_URL="redis://127.0.0.1:1/0",
        **extra,
    )
    return env


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, ["CONVEYOR_SECRET_KEY", "CONVEYOR_BOUNCE_TOKEN"]),
        ({"SECRET_KEY": "shared"}, ["CONVEYOR_BOUNCE_TOKEN"]),
        ({"BOUNCE_TOKEN": "shared"}, ["CONVEYOR_SECRET_KEY"]),
    ],
)
def test_a_shared_database_without_the_secret_key_and_bounce_token_refuses_to_start(
    tmp_path, no_identity, given, missing
):
    with pytest.raises(MissingIdentity) as refused:
        load_config({"VAR_DIR": str(tmp_path), "SQLALCHEMY_DATABASE_URI": SHARED, **given})
    message = refused.value.message
    assert f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set" in message
    assert "each would otherwise generate its own secret key and bounce token" in message
    assert "conveyor:secret@" not in message
    assert not (tmp_path / "secret_key").exists() and not (tmp_path / "bounce_token").exists()


def test_a_shared_database_without_a_shared_redis_refuses_to_start(tmp_path, no_identity, monkeypatch):
    monkeypatch.delenv("CONVEYOR_REDIS_URL", raising=False)
    shared = {"SECRET_KEY": "k", "BOUNCE_TOKEN": "t", "SQLALCHEMY_DATABASE_URI": SHARED}
    with pytest.raises(MissingIdentity) as refused:
        load_config({"VAR_DIR": str(tmp_path), **shared})
    assert "CONVEYOR_REDIS_URL is not set" in refused.value.message
    assert "would never reach a worker elsewhere" in refused.value.message
    assert load_config({"VAR_DIR": str(tmp_path)})["REDIS_URL"] is None  # the embedded default


def test_create_app_refuses_too(tmp_path, no_identity):
    with pytest.raises(MissingIdentity):
        create_app({"VAR_DIR": str(tmp_path), "SQLALCHEMY_DATABASE_URI": SHARED})


def test_a_mapping_or_the_environment_that_sets_both_counts_as_set(tmp_path, no_identity, monkeypatch):
    config = load_config(
        {"VAR_DIR": str(tmp_path), "SQLALCHEMY_DATABASE_URI": SHARED, "SECRET_KEY": "k", "BOUNCE_TOKEN": "t"}
        | {"REDIS_URL": "redis://127.0.0.1:1/0"}
    )
    assert (config["SECRET_KEY"], config["BOUNCE_TOKEN"]) == ("k", "t")
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", "env-key")
    monkeypatch.setenv("CONVEYOR_BOUNCE_TOKEN", "env-token")
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", SHARED)
    monkeypatch.setenv("CONVEYOR_REDIS_URL", "redis://127.0.0.1:1/0")
    config = load_config({"VAR_DIR": str(tmp_path), "BOUNCE_TOKEN": None})  # (as tests/conftest.py passes)
    assert (config["SECRET_KEY"], config["BOUNCE_TOKEN"]) == ("env-key", "env-token")
    assert not (tmp_path / "secret_key").exists() and not (tmp_path / "bounce_token").exists()


def test_a_worker_on_a_shared_database_without_them_prints_why_and_exits(tmp_path):
    done = subprocess.run(
        [sys.executable, "worker.py", "--burst"],
        cwd=ROOT,
        env=clean_env(tmp_path, CONVEYOR_SECRET_KEY="only-the-key"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "worker: Conveyor refuses to start: CONVEYOR_BOUNCE_TOKEN is not set" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["scheduler", "--once"], ["users", "create", "a@example.org"]])
def test_the_scheduler_and_every_flask_command_print_why_and_exit(tmp_path, command):
    done = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "flask"), "--app", "app", *command],
        cwd=ROOT,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Error: Conveyor refuses to start: CONVEYOR_SECRET_KEY and CONVEYOR_BOUNCE_TOKEN are not set" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr


def test_the_embedded_default_generates_both_once_and_keeps_them(tmp_path, no_identity):
    first = load_config({"VAR_DIR": str(tmp_path)})
    second = load_config({"VAR_DIR": str(tmp_path)})
    assert first["BOUNCE_TOKEN"] and first["SECRET_KEY"] and first["BOUNCE_TOKEN"] != first["SECRET_KEY"]
    assert (second["SECRET_KEY"], second["BOUNCE_TOKEN"]) == (first["SECRET_KEY"], first["BOUNCE_TOKEN"])
    assert (tmp_path / "bounce_token").read_text().strip() == first["BOUNCE_TOKEN"]
    for name in ("secret_key", "bounce_token"):
        assert oct(os.stat(tmp_path / name).st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".owner-only"]


def test_the_bounce_webhook_takes_the_token_of_the_config(client, app):
    token = app.config["BOUNCE_TOKEN"]
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):  # generated, and kept under var/
        assert (Path(app.config["VAR_DIR"]) / "bounce_token").read_text().strip() == token
    wrong = client.post("/api/bounces", json={"email": "a@b.org"}, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401
    right = client.post(
        "/api/bounces", json={"email": "nobody@b.org"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert right.status_code == 404  # past the token: no such recipient


def test_an_empty_secret_file_left_by_an_older_version_is_replaced(tmp_path):
    (tmp_path / "secret_key").write_text("")
    value = kept_secret(tmp_path, "secret_key")
    assert len(value) >= 40 and (tmp_path / "secret_key").read_text().strip() == value


def _read_when_all_ready(folder: Path, start: threading.Barrier, seen: list[str]) -> None:
    start.wait()
    seen.append(kept_secret(folder, "secret_key"))


def test_threads_racing_on_a_fresh_var_dir_all_read_the_same_secret(tmp_path):
    for attempt in range(20):
        folder = tmp_path / f"var{attempt}"
        folder.mkdir()
        start = threading.Barrier(12)
        seen: list[str] = []
        racing = (folder, start, seen)
        threads = [threading.Thread(target=_read_when_all_ready, args=racing) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(seen) == 12 and set(seen) == {(folder / "secret_key").read_text().strip()}
        assert [p.name for p in folder.iterdir()] == ["secret_key"]  # no temporary file left


RACER = """
import sys, time
from pathlib import Path
from webapp.config import kept_secret
start = float(sys.argv[2])
while time.time() < start:
    pass
print(kept_secret(Path(sys.argv[1]), "bounce_token", 32))
"""


def test_processes_starting_together_on_a_fresh_var_dir_all_read_the_same_token(tmp_path):
    """As gunicorn's workers do when each builds the app on a var dir nobody used before."""
    for attempt in range(2):
        folder = tmp_path / f"var{attempt}"
        folder.mkdir()
        start = time.time() + 2.0  # every process imported and waiting by then
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", RACER, str(folder), str(start)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        values = {racer.communicate(timeout=60)[0].strip() for racer in racers}
        assert all(racer.returncode == 0 for racer in racers)
        assert values == {(folder / "bounce_token").read_text().strip()}
