"""A request that only read ends its transaction with COMMIT (psycopg keeps the statements it
prepared; a rollback discards them); one that wrote anything uncommitted is still rolled back."""

from __future__ import annotations

import pytest
from sqlalchemy import event, update

from tests.conftest import _emptied, make_user
from webapp import create_app
from webapp.extensions import db
from webapp.models import User


@pytest.fixture
def bare_app(tmp_path, redis_url, migrated_database):
    """An app without the fixture's long-lived app context: each request has its own, as in
    production, so the request's end (teardown) really runs."""
    database = migrated_database or f"sqlite:///{tmp_path / 'r.db'}"
    app = create_app(
        {
            "TESTING": True,
            "VAR_DIR": str(tmp_path / "var"),
            "SQLALCHEMY_DATABASE_URI": database,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "k",
            "BOUNCE_TOKEN": "t",
        }
    )
    with app.app_context():
        _emptied() if migrated_database else db.create_all()
        make_user("ann@example.org")
        ends: list[str] = []
        event.listen(db.engine, "commit", lambda conn: ends.append("commit"))
        event.listen(db.engine, "rollback", lambda conn: ends.append("rollback"))

    @app.get("/read")
    def read() -> str:
        return db.session.get(User, 1).email

    @app.get("/orm-write")
    def orm_write() -> str:
        db.session.get(User, 1).name = "Changed, never committed"
        db.session.flush()
        return "written"

    @app.get("/core-write")
    def core_write() -> str:
        db.session.execute(update(User).values(name="Changed by a statement, never committed"))
        return "written"

    app.ends = ends  # type: ignore[attr-defined]
    yield app
    with app.app_context():
        db.engine.dispose()


def test_a_request_that_only_read_ends_with_commit(bare_app):
    bare_app.ends.clear()
    assert bare_app.test_client().get("/read").get_data(as_text=True) == "ann@example.org"
    assert bare_app.ends[:1] == ["commit"]


@pytest.mark.parametrize("path", ["/orm-write", "/core-write"])
def test_a_request_that_wrote_without_committing_is_rolled_back(bare_app, path):
    bare_app.ends.clear()
    assert bare_app.test_client().get(path).status_code == 200
    assert "commit" not in bare_app.ends and "rollback" in bare_app.ends
    with bare_app.app_context():
        assert db.session.get(User, 1).name == "Ann"
