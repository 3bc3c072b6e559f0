"""Two imports whose files share emails run at once on two real worker processes
(CONVEYOR_CONCURRENCY=2): both complete, and every shared email is created by one and updated by
the other — no unique-key failure, no count lost."""

from __future__ import annotations

from tests.conftest import fresh, import_job
from tests.test_worker_processes import start_worker, stop_group, wait_for
from webapp.engine.runs import start_run
from webapp.models import Supporter
from webapp.rules.states import RunState

ROWS = 3000
SHARED = 1500


def _csv(path, own: str, name: str):
    """ROWS people: the first SHARED emails are in both files, in the same order (so both runs
    reach them at the same time), the rest are this file's own."""
    emails = [f"p{i}@example.org" if i < SHARED else f"{own}{i}@example.org" for i in range(ROWS)]
    lines = ["email,first_name"] + [f"{email},{name}{i}" for i, email in enumerate(emails)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_two_imports_sharing_emails_run_at_once_and_both_count_right(app, users, tmp_path):
    app.config["CONCURRENCY"] = 2
    first = import_job(users["user"], _csv(tmp_path / "a.csv", "a", "Ann"), ["email", "first_name"], name="A")
    second = import_job(
        users["user"], _csv(tmp_path / "b.csv", "b", "Bea"), ["email", "first_name"], name="B"
    )
    env = {"CONVEYOR_CONCURRENCY": "2", "CONVEYOR_IMPORT_BATCH_SIZE": "50"}
    workers = [
        start_worker(app, tmp_path, "--lane", "data", "--name", f"w{i}-{tmp_path.name}", env=env)
        for i in range(2)
    ]
    try:
        runs = [start_run(first, users["user"]), start_run(second, users["user"])]
        wait_for(lambda: all(fresh(r).state.is_finished for r in runs), timeout=120)
    finally:
        for worker in workers:
            stop_group(worker)
    runs = [fresh(r) for r in runs]
    assert [r.state for r in runs] == [RunState.COMPLETED, RunState.COMPLETED], [r.error for r in runs]
    assert Supporter.query.count() == 2 * ROWS - SHARED
    for run in runs:
        assert run.created + run.updated + run.unchanged == ROWS and run.rejected == 0
    assert sum(r.created for r in runs) == 2 * ROWS - SHARED  # each email created once
    assert sum(r.updated for r in runs) == SHARED  # and each shared one updated by the other
