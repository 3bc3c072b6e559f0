"""Conveyor: sequencing, scheduling and monitoring of data jobs."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from webapp.config import load_config
from webapp.extensions import csrf, db, login_manager
from webapp.request_args import BoundedIntegerConverter

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Conveyor app: config, extensions, blueprints and CLI."""
    app = Flask(__name__)
    app.url_map.converters["int"] = BoundedIntegerConverter  # a huge id is a 404, not a 500
    app.config.from_mapping(load_config(test_config))

    db.init_app(app)
    from webapp import readonly

    readonly.install(app)  # a request that only read ends with COMMIT (psycopg keeps its plans)
    if app.config["MIGRATIONS"]:
        from flask_migrate import Migrate  # Alembic: ~11 MB a worker forks for every run

        Migrate(app, db, directory=MIGRATIONS, render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    from webapp.api.tokens import load_user_from_request

    login_manager.request_loader(load_user_from_request)  # /api/v1 with a personal API token

    from webapp import models  # noqa: F401  (register the tables)
    from webapp.engine import chains, followups
    from webapp.models.users import User

    chains.install()  # group runs follow the run engine through engine/handoff.py
    followups.count_ended_runs()  # every run's end, counted deployment-wide for /metrics

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        """The signed-in user, unless this session was ended or went idle (auth.sessions). A
        request to the API that carries a token is the token's, whatever cookie came with it
        (a script that signed in once to make its token keeps its session)."""
        from webapp.api.tokens import API_PATH, bearer_secret
        from webapp.auth import sessions

        if request.path.startswith(API_PATH) and bearer_secret() is not None:
            return None  # the request loader reads the token

        user = db.session.get(User, int(user_id))
        return user if user is not None and sessions.is_current(user) else None

    from webapp import (
        admin,
        api,
        auth,
        bounces,
        campaigns,
        erasure,
        groups,
        jobs,
        monitor,
        ops,
        receipts,
        reports,
        rollbacks,
        runs,
        supporters,
        tokens,
        tracking,
        transactions,
    )

    for area in (
        auth,
        monitor,
        runs,
        jobs,
        groups,
        campaigns,
        supporters,
        admin,
        tracking,
        api,
        ops,
        tokens,
        erasure,
        bounces,
        transactions,
        rollbacks,
        reports,
        receipts,
    ):
        app.register_blueprint(area.bp)
    from webapp.api import v1

    app.register_blueprint(v1.bp)

    from webapp.security import register_security
    from webapp.web import register_web_helpers

    register_security(app)
    register_web_helpers(app)

    from webapp.cli import register_cli

    register_cli(app)
    return app


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite: WAL so readers never wait on the writer, and a wait instead of 'database is locked'."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
