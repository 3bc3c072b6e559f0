"""App set-up: config, migrations, the first super admin, the users command, login, CSRF and
error pages."""

import json
import os
import re
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from tests.conftest import PASSWORD
from webapp import create_app
from webapp.cli import bootstrap
from webapp.config import load_config, parse_size
from webapp.extensions import db
from webapp.models import User
from webapp.models.users import Role

# what every process needs off the embedded default (make test's PostgreSQL pass)
IDENTITY = {"CONVEYOR_SECRET_KEY": "test-secret", "CONVEYOR_BOUNCE_TOKEN": "test-bounce-token"}


def test_migrations_build_exactly_the_models_schema(tmp_path):
    app = create_app(
        {"VAR_DIR": str(tmp_path / "var"), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    )
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        db.engine.dispose()
    assert diff == []


def test_the_group_steps_migration_moves_each_groups_steps_into_rows_and_back(tmp_path):
    app = create_app(
        {"VAR_DIR": str(tmp_path / "var"), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 's.db'}"}
    )
    with app.app_context():
        upgrade(revision="7e2a4c1d9b55")  # the head before group_step
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO user (id, email, name, password_hash, role, active, created_at) "
                    "VALUES (1, 'u@example.org', 'U', 'x', 'user', 1, '2026-01-01')"
                )
            )
            for job_id, job_type, params in [
                (1, "user_data_export", {}),
                (2, "user_data_export", {}),
                (3, "job_group", {"description": "Night", "steps": [2, 99, 1], "never_expires": True}),
                (4, "job_group", {"description": "Empty"}),
            ]:
                conn.execute(
                    text(
                        "INSERT INTO job (id, owner_id, job_type, name, params, active, "
                        "last_run_number, created_at, updated_at) VALUES (:id, 1, :type, 'J', "
                        ":params, 1, 0, '2026-01-01', '2026-01-01')"
                    ),
                    {"id": job_id, "type": job_type, "params": json.dumps(params)},
                )
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT group_id, position, job_id FROM group_step ORDER BY group_id, position")
            ).all()
            params = json.loads(conn.execute(text("SELECT params FROM job WHERE id = 3")).scalar())
        assert rows == [(3, 1, 2), (3, 2, 1)]  # job 99 no longer existed
        assert params == {"description": "Night", "never_expires": True}
        downgrade(revision="7e2a4c1d9b55")
        with db.engine.connect() as conn:
            params = {
                job_id: json.loads(raw)
                for job_id, raw in conn.execute(text("SELECT id, params FROM job WHERE id IN (3, 4)"))
            }
        assert params == {
            3: {"description": "Night", "never_expires": True, "steps": [2, 1]},
            4: {"description": "Empty", "steps": []},
        }
        db.engine.dispose()


def test_secret_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("CONVEYOR_SECRET_KEY", raising=False)
    monkeypatch.delenv("CONVEYOR_DATABASE_URL", raising=False)  # generated on the embedded default only
    first = load_config({"VAR_DIR": str(tmp_path)})["SECRET_KEY"]
    second = load_config({"VAR_DIR": str(tmp_path)})["SECRET_KEY"]
    assert first == second and len(first) >= 40
    assert oct(os.stat(tmp_path / "secret_key").st_mode & 0o777) == "0o600"


def test_environment_configures_database_redis_zone_and_upload_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", "postgresql://u:p@db.example/conveyor")
    monkeypatch.setenv("CONVEYOR_REDIS_URL", "redis://cache.example:6379/2")
    monkeypatch.setenv("CONVEYOR_TIMEZONE", "Europe/London")
    monkeypatch.setenv("CONVEYOR_UPLOAD_LIMIT", "50MB")
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", "shared-key")  # required with a shared database
    monkeypatch.setenv("CONVEYOR_BOUNCE_TOKEN", "shared-token")
    config = load_config({"VAR_DIR": str(tmp_path)})
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db.example/conveyor"
    assert (config["SECRET_KEY"], config["BOUNCE_TOKEN"]) == ("shared-key", "shared-token")
    assert config["REDIS_URL"] == "redis://cache.example:6379/2"
    assert config["TIMEZONE"] == "Europe/London"
    assert config["MAX_CONTENT_LENGTH"] == 50 * 1024 * 1024
    assert parse_size("512k") == 512 * 1024


def test_first_start_creates_one_super_admin_with_a_random_password(tmp_path):
    app = create_app(
        {"VAR_DIR": str(tmp_path / "var"), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'b.db'}"}
    )
    with app.app_context():
        email, password = bootstrap()
        assert email == "admin@conveyor.local" and len(password) >= 12
        admin = db.session.execute(db.select(User)).scalar_one()
        assert admin.role is Role.SUPER_ADMIN and admin.check_password(password)
        assert password not in admin.password_hash
        assert bootstrap() == (email, None)  # never again, never printed again
        db.engine.dispose()


def test_users_create_command(app, runner):
    result = runner.invoke(args=["users", "create", "Staff@Example.org", "--role", "admin"])
    assert result.exit_code == 0, result.output
    password = re.search(r"Password \(shown once\): (\S+)", result.output).group(1)
    user = db.session.execute(db.select(User).filter_by(email="staff@example.org")).scalar_one()
    assert user.role is Role.ADMIN and user.check_password(password)
    again = runner.invoke(args=["users", "create", "staff@example.org"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_login_logout_and_wrong_password(client, users):
    response = client.post("/login", data={"email": "user@example.org", "password": "nope"})
    assert "Wrong email or password." in response.get_data(as_text=True)
    response = client.post("/login", data={"email": "USER@example.org", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post("/logout")
    assert client.get("/").status_code == 302


def test_login_refuses_offsite_next(client, users):
    response = client.post(
        "/login?next=//evil.example/x", data={"email": "user@example.org", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/"


def test_deactivated_user_cannot_log_in(client, users):
    users["other"].active = False
    db.session.commit()
    response = client.post("/login", data={"email": "other@example.org", "password": PASSWORD})
    assert response.status_code == 200


def test_forms_are_csrf_protected(app, users):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    response = client.post("/login", data={"email": "user@example.org", "password": PASSWORD})
    assert response.status_code == 400
    assert "The form expired" in response.get_data(as_text=True)
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"email": "user@example.org", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302


def test_unexpected_errors_show_a_plain_page_without_a_stack_trace(app, client, auth, users):
    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    auth.login("user@example.org")
    response = client.get("/boom")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in html
    assert "secret internals" not in html and "Traceback" not in html


def test_json_clients_get_json_errors(client, auth, users):
    auth.login("user@example.org")
    response = client.get("/runs/999", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["error"]


def test_admin_creates_a_user_on_the_users_page(client, auth, users):
    auth.login("admin@example.org")
    response = client.post(
        "/admin/users/new", data={"email": "new@example.org", "name": "New", "role": "user", "active": "y"}
    )
    assert response.status_code == 302
    page = client.get("/admin/users").get_data(as_text=True)
    assert "new@example.org" in page
    created = db.session.execute(db.select(User).filter_by(email="new@example.org")).scalar_one()
    assert created.role is Role.USER and created.active


def test_admin_cannot_demote_or_deactivate_themselves(client, auth, users):
    auth.login("admin@example.org")
    page = client.get(f"/admin/users/{users['admin'].id}").get_data(as_text=True)
    assert "You cannot change your own role or deactivate yourself." in page  # said, not offered
    tags = [
        tag
        for tag in re.findall(r"<(?:select|input)\b[^>]*>", page)
        if re.search(r'name="(role|active)"', tag)
    ]
    assert len(tags) == 2 and all(" disabled" in tag for tag in tags)
    # a forged POST changes neither (the fields are not taken from it); the name is saved
    response = client.post(
        f"/admin/users/{users['admin'].id}",
        data={"email": "admin@example.org", "name": "Ada", "role": "user"},  # and no "active"
    )
    assert response.status_code == 302
    db.session.expire_all()
    admin = db.session.get(User, users["admin"].id)
    assert (admin.role, admin.active, admin.name) == (Role.ADMIN, True, "Ada")


def test_the_worker_app_leaves_the_schema_tools_out(tmp_path):
    # a worker forks itself for every run: the less it holds the faster that is
    code = (
        "import sys; from webapp import create_app; create_app({'MIGRATIONS': False}); "
        "print('alembic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "CONVEYOR_VAR_DIR": str(tmp_path), **IDENTITY},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_notifications_come_from_the_configured_sender(app, monkeypatch, tmp_path):
    from webapp.mailing.notifications import notify

    monkeypatch.setenv("CONVEYOR_NOTIFY_FROM", "Park Friends <alerts@park.example>")
    monkeypatch.delenv("CONVEYOR_DATABASE_URL", raising=False)  # the embedded default
    assert load_config({"VAR_DIR": str(tmp_path)})["NOTIFY_FROM"] == "Park Friends <alerts@park.example>"
    app.config["NOTIFY_FROM"] = "Park Friends <alerts@park.example>"
    assert notify("owner@park.example", "[Conveyor] Done", "It is done.")
    (name,) = os.listdir(app.config["OUTBOX_DIR"])
    with open(os.path.join(app.config["OUTBOX_DIR"], name), "rb") as raw:
        assert b"From: Park Friends <alerts@park.example>" in raw.read()
