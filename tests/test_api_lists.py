"""The API's lists answer a page in a fixed number of queries, whatever the page holds: each run's
error and owner come with the page, not one query per run."""

from __future__ import annotations

from sqlalchemy import event

from tests.conftest import export_job, make_user
from tests.test_api_tokens import api, make_token
from webapp.extensions import db
from webapp.models.runs import Run
from webapp.rules.states import RunState


def statements_of(client, path: str, secret: str) -> tuple[dict, int]:
    counted = [0]

    def count(*_args) -> None:
        counted[0] += 1

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        answer = api(client, path, secret)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert answer.status_code == 200, answer.json
    return answer.json, counted[0]


def test_a_page_of_the_monitor_and_history_costs_the_same_queries_for_many_owners(app, client, auth, users):
    owners = [make_user(f"owner{i}@example.org") for i in range(12)]
    job = export_job(users["user"])
    for number in range(60):
        db.session.add(
            Run(
                job_id=job.id,
                owner_id=owners[number % 12].id,
                job_name=job.name,
                job_type=job.job_type,
                number=number + 1,
                state=RunState.FAILED,
                error=f"problem {number}",
            )
        )
    db.session.commit()
    secret = make_token(client, auth, "super@example.org")
    del owners
    db.session.expunge_all()  # nothing loaded here may help the requests
    for path in ("/api/v1/monitor", "/api/v1/history"):
        found, statements = statements_of(client, path, secret)
        assert len(found["runs"]) == 50
        newest = found["runs"][0]
        assert newest["error"] == "problem 59" and newest["owner"] == "owner11@example.org"
        assert statements <= 10, (path, statements)  # not one per run (50) or per owner (12)
