"""User Data Import runs given hostile files: a pathological cell costs its line, and a file
the upload step would refuse (it reached the worker some other way) fails the run with one
plain sentence naming the line: before anything is written, when a scan of its bytes finds it."""

import time

import pytest

from tests.conftest import fresh, import_job, work
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.models import RunRejection, Supporter
from webapp.rules.states import RunState

N = 100_000


def run_file(app, user, tmp_path, data: bytes, mapping: list[str]):
    path = tmp_path / "people.csv"
    path.write_bytes(data)
    run = start_run(import_job(user, path, mapping), user)
    work(app)
    return fresh(run)


def test_pathological_cells_cost_only_their_lines_and_the_run_finishes_quickly(app, users, tmp_path):
    app.config["IMPORT_BATCH_SIZE"] = 100  # the bad cells sit in batches of valid rows
    good = "ok{}@example.org,(617) 555-0101,02134,12.50"
    rows = [good.format(i) for i in range(40)]
    rows[5] = "a@" + "." * N + "@,(617) 555-0101,02134,1.00"
    rows[12] = "bad12@example.org," + "1 " * (N // 2) + "x,02134,1.00"
    rows[20] = "bad20@example.org,555-0101," + "1" * N + ",1.00"
    rows[33] = "bad33@example.org,555-0101,02134," + "9" * N
    started = time.perf_counter()
    run = run_file(
        app,
        users["user"],
        tmp_path,
        ("email,phone,zip,donation_total\n" + "\n".join(rows) + "\n").encode(),
        ["email", "phone", "zip", "donation_total"],
    )
    assert time.perf_counter() - started < 10  # the old email check alone took minutes
    assert run.state is RunState.COMPLETED
    assert (run.created, run.rejected) == (36, 4)
    reasons = [r.reason for r in RunRejection.query.order_by(RunRejection.line)]
    assert [reason.split(":")[0] for reason in reasons] == ["line 7", "line 14", "line 22", "line 35"]
    assert reasons[0].endswith("… (100,003 characters)' is not a valid email address")
    us_zip = "is not a valid US ZIP code (like 12345 or 12345-6789)"
    assert reasons[2] == f"line 22: '{'1' * 40}… (100,000 characters)' {us_zip}"
    assert all(len(reason) < 200 for reason in reasons)


@pytest.mark.parametrize(
    "data,mapping,reason",
    [
        (
            b"email,first_name\n" + b"ann@example.org,Ann\n" * 5000 + b"bob@example.org,B\x00b\n",
            ["email", "first_name"],
            "Line 5,002 holds a NUL byte (0x00)",
        ),
        (
            b"email,note\nann@example.org,x\nbob@example.org," + b"y" * 1_100_000 + b"\n",
            ["email", ""],
            "Line 3 is longer than 1 MB, the most one line may hold.",
        ),
        (
            b"email,note\nann@example.org,x\n" + b"\xe9\n",
            ["email", ""],
            "The file is not valid UTF-8 (line 3 has the byte 0xE9).",
        ),
        (
            b"email\nann@example.org\n",
            ["email", *[""] * 1000],
            "The file has 1,001 columns; at most 1,000 are supported.",
        ),
    ],
)
def test_a_file_the_upload_would_refuse_fails_the_run_with_a_plain_reason_and_stores_nothing(
    app, users, tmp_path, data, mapping, reason
):
    run = run_file(app, users["user"], tmp_path, data, mapping)
    assert run.state is RunState.FAILED
    assert run.error.startswith(reason)
    assert "\n" not in run.error and "Traceback" not in run.error and "Error" not in run.error
    assert Supporter.query.count() == 0


def test_a_quote_never_closed_fails_the_run_where_the_reading_reaches_it(app, users, tmp_path):
    # found by the csv reader, not the byte scan; a job saved by the upload step has its row
    # count, so the run reads the file once, and the batches before the quote are imported
    rows = "".join(f"p{i}@example.org,x\n" for i in range(7))
    path = tmp_path / "people.csv"
    path.write_text(f'email,note\n{rows}late@example.org,"oops\nmore\n', encoding="utf-8")
    job = import_job(users["user"], path, ["email", ""])
    job.params = {**job.params, "total_rows": 8}
    db.session.commit()
    run = start_run(job, users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.FAILED
    assert run.error.startswith('The quote (") that opens a field on line 9 is never closed')
    assert Supporter.query.count() == 6  # two batches of three
