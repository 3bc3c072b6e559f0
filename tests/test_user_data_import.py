"""The User Data Import job type, run on a real Redis through RQ's SimpleWorker."""

import csv
import re
from decimal import Decimal

import pytest

from tests.conftest import embedded_only, fresh, import_job, work
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.jobtypes import importer
from webapp.models import SUPPORTER_FIELDS, RunLogLine, RunRejection, Supporter
from webapp.models.settings import AccountSettings
from webapp.rules.states import RunState
from webapp.storage import current_storage


def run_import(
    app, user, tmp_path, text, mapping, *, encoding="utf-8", delimiter=",", raw: bytes | None = None
):
    path = tmp_path / "people.csv"
    path.write_bytes(raw if raw is not None else text.encode("utf-8"))
    job = import_job(user, path, mapping, encoding=encoding, delimiter=delimiter)
    run = start_run(job, user)
    work(app)
    return fresh(run), job


def supporter(email):
    return Supporter.query.filter_by(email=email).one()


def test_valid_rows_are_created_and_bad_rows_rejected_with_line_and_reason(app, users, tmp_path):
    text = (
        "email,first_name,zip,donation_total,opted_in\n"
        "ann@example.org,Ann,02134,12.5,yes\n"
        "bob@example.org,Bob,1234,3,no\n"  # line 3: bad zip
        "cy@example.org,Cy,10001,abc,no\n"  # line 4: not a number
        "not-an-email,Dee,10001,1,no\n"  # line 5: bad email
        ",Eve,10001,1,no\n"  # line 6: missing email
        "fay@example.org,Fay,10001,1,maybe\n"  # line 7: not yes/no
        'gus@example.org,Gus,10001,"1,200.00",y\n'
    )
    run, _ = run_import(
        app, users["user"], tmp_path, text, ["email", "first_name", "zip", "donation_total", "opted_in"]
    )
    assert run.state is RunState.COMPLETED
    assert run.counts == {
        "checked": 7,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
        "rejected": 5,
    }
    reasons = [r.reason for r in RunRejection.query.order_by(RunRejection.line)]
    assert reasons == [
        "line 3: '1234' is not a valid US ZIP code (like 12345 or 12345-6789)",
        "line 4: 'abc' is not a number for donation_total",
        "line 5: 'not-an-email' is not a valid email address",
        "line 6: email is missing",
        "line 7: 'maybe' is not yes/no for opted_in",
    ]
    ann = supporter("ann@example.org")
    assert (ann.zip, ann.donation_total, ann.opted_in) == ("02134", Decimal("12.50"), True)
    assert supporter("gus@example.org").donation_total == Decimal("1200.00")
    assert run.request_id and run.request_id.startswith("REQ-")
    assert run.progress_done == run.progress_total == 7


def test_upsert_by_email_is_case_insensitive_and_counts_updates_and_unchanged(app, users, tmp_path):
    first = "email,first_name,city\nAnn@Example.org,Ann,Boston\nbob@example.org,Bob,Austin\n"
    run_import(app, users["user"], tmp_path, first, ["email", "first_name", "city"])
    second = "email,first_name,city\nann@example.ORG,Ann,Denver\nBOB@example.org,Bob,Austin\n"
    run, _ = run_import(app, users["user"], tmp_path, second, ["email", "first_name", "city"])
    assert (run.created, run.updated, run.unchanged) == (0, 1, 1)
    assert Supporter.query.count() == 2
    assert supporter("ann@example.org").city == "Denver"


def test_blank_cells_leave_stored_values_alone(app, users, tmp_path):
    run_import(app, users["user"], tmp_path, "email,city\nann@example.org,Boston\n", ["email", "city"])
    run, _ = run_import(app, users["user"], tmp_path, "email,city\nann@example.org,\n", ["email", "city"])
    assert run.unchanged == 1
    assert supporter("ann@example.org").city == "Boston"


def test_duplicate_emails_last_one_wins_and_are_counted(app, users, tmp_path):
    # batch size is 3 in tests: one duplicate inside a batch, one across batches
    text = (
        "email,first_name\n"
        "ann@example.org,First\n"  # line 2, superseded by line 3 in the same batch
        "ANN@example.org,Second\n"  # line 3
        "bob@example.org,Bob\n"  # line 4
        "cy@example.org,Cy\n"  # line 5 (second batch)
        "ann@example.org,Last\n"
    )  # line 6: duplicate across batches
    run, _ = run_import(app, users["user"], tmp_path, text, ["email", "first_name"])
    assert supporter("ann@example.org").first_name == "Last"
    assert Supporter.query.count() == 3
    assert run.counts == {
        "checked": 5,
        "created": 3,
        "updated": 1,
        "unchanged": 0,
        "skipped": 1,
        "rejected": 0,
    }
    log = [line.message for line in RunLogLine.query.filter_by(run_id=run.id)]
    assert any("line 2: skipped, ann@example.org appears again on line 3" in m for m in log)
    assert any("line 6: ann@example.org appeared earlier in the file" in m for m in log)


def test_quoted_fields_with_commas_and_newlines_keep_line_numbers(app, users, tmp_path):
    text = (
        "email,address1,zip\n"
        'ann@example.org,"12 Main St, Apt 4",02134\n'
        'bob@example.org,"line one\nline two",02134\n'
        "cy@example.org,x,999\n"
    )  # physical line 5
    run, _ = run_import(app, users["user"], tmp_path, text, ["email", "address1", "zip"])
    assert supporter("ann@example.org").address1 == "12 Main St, Apt 4"
    assert supporter("bob@example.org").address1 == "line one\nline two"
    assert [r.reason for r in RunRejection.query] == [
        "line 5: '999' is not a valid US ZIP code (like 12345 or 12345-6789)"
    ]


@pytest.mark.parametrize(
    "raw,encoding,delimiter",
    [
        ("\ufeffemail;first_name\nzoe@example.org;Zoë\n".encode(), "utf-8", ";"),
        ("email\tfirst_name\nzoe@example.org\tZoë\n".encode(), "utf-8", "\t"),
        ("email,first_name\nzoe@example.org,Zoë\n".encode("latin-1"), "latin-1", ","),
    ],
)
def test_encodings_and_delimiters(app, users, tmp_path, raw, encoding, delimiter):
    run, _ = run_import(
        app,
        users["user"],
        tmp_path,
        "",
        ["email", "first_name"],
        raw=raw,
        encoding=encoding,
        delimiter=delimiter,
    )
    assert run.created == 1
    assert supporter("zoe@example.org").first_name == "Zoë"


def test_row_with_too_many_fields_is_rejected_not_fatal(app, users, tmp_path):
    text = "email,first_name\nann@example.org,Ann,extra\nbob@example.org,Bob\n"
    run, _ = run_import(app, users["user"], tmp_path, text, ["email", "first_name"])
    assert run.state is RunState.COMPLETED
    assert run.created == 1
    assert [r.reason for r in RunRejection.query] == ["line 2: has 3 fields but the header has 2"]


def test_import_result_is_a_report_of_rejected_lines(app, users, tmp_path):
    text = "email,zip\nann@example.org,1\nbob@example.org,02134\n"
    run, _ = run_import(app, users["user"], tmp_path, text, ["email", "zip"])
    with current_storage().open(run.result_path) as report:
        assert report.read().decode().splitlines() == [
            "line,reason",
            "2,line 2: '1' is not a valid US ZIP code (like 12345 or 12345-6789)",
        ]
    assert run.in_monitor  # stays until the report is downloaded


def test_missing_file_fails_the_run_with_the_reason(app, users, tmp_path):
    job = import_job(users["user"], tmp_path / "gone.csv", ["email"])
    run = start_run(job, users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.FAILED
    assert "the file gone.csv is no longer there" in run.error
    assert run.in_monitor


def test_a_row_count_saved_at_upload_is_the_runs_total(app, users, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("email\nann@example.org\nbob@example.org\n", encoding="utf-8")
    job = import_job(users["user"], path, ["email"])
    job.params = {**job.params, "total_rows": 2}
    db.session.commit()
    run = start_run(job, users["user"])
    work(app)
    run = fresh(run)
    assert (run.progress_total, run.progress_done, run.created) == (2, 2, 2)


def test_without_a_saved_row_count_the_run_counts_records_skipping_blank_lines(app, users, tmp_path):
    run, job = run_import(
        app, users["user"], tmp_path, "email\nann@example.org\n\nbob@example.org\n", ["email"]
    )
    assert "total_rows" not in job.params
    assert (run.progress_total, run.created) == (2, 2)


@pytest.mark.parametrize(
    "phone,valid",
    [
        ("(555) 555-1234", True),
        ("+1 555.555.1234", True),
        ("1234567", True),
        ("123456", False),
        ("12 34 56", False),
        ("555-CALL-NOW", False),
        ("1" * 25, True),
        ("1" * 26, False),
        ("-- () --", False),
    ],
)
def test_phone_needs_seven_digits_and_only_phone_characters(app, users, tmp_path, phone, valid):
    run, _ = run_import(
        app, users["user"], tmp_path, f"email,phone\nann@example.org,{phone}\n", ["email", "phone"]
    )
    assert run.created == int(valid)
    reasons = [r.reason for r in RunRejection.query]
    assert reasons == ([] if valid else [f"line 2: '{phone}' is not a phone number"])


@pytest.mark.parametrize(
    "raw,stored",
    [
        ("12.50", Decimal("12.50")),
        ("0012.30", Decimal("12.30")),
        ("$7", Decimal("7.00")),
        ("-3.25", Decimal("-3.25")),
        ("9999999999.99", Decimal("9999999999.99")),
    ],
)
def test_amounts_are_stored_to_the_cent(app, users, tmp_path, raw, stored):
    run_import(
        app,
        users["user"],
        tmp_path,
        f"email,donation_total\nann@example.org,{raw}\n",
        ["email", "donation_total"],
    )
    assert supporter("ann@example.org").donation_total == stored


def test_reimport_in_several_lookup_slices_counts_every_row_unchanged(app, users, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "LOOKUP_SLICE", 2)
    app.config["IMPORT_BATCH_SIZE"] = 5
    text = "email,city,opted_in,donation_total\n" + "".join(
        f"p{i}@example.org,Boston,{'yes' if i % 2 else 'no'},{i}.5\n" for i in range(7)
    )
    mapping = ["email", "city", "opted_in", "donation_total"]
    first, _ = run_import(app, users["user"], tmp_path, text, mapping)
    again, _ = run_import(app, users["user"], tmp_path, text, mapping)
    assert first.created == 7
    assert (again.created, again.updated, again.unchanged) == (0, 0, 7)
    assert {s.last_run_id for s in Supporter.query} == {again.id}


@embedded_only  # about the SQLite file and its settings
def test_the_sqlite_bulk_write_settings_are_put_back_after_the_run(app, users, tmp_path):
    def pragmas():
        connection = db.session.connection()
        return [
            connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("cache_size", "wal_autocheckpoint")
        ]

    before = pragmas()
    db.session.commit()
    run, _ = run_import(app, users["user"], tmp_path, "email\nann@example.org\n", ["email"])
    assert run.created == 1
    assert pragmas() == before


def test_a_bad_value_in_a_batch_rejects_only_its_row(app, users, tmp_path):
    app.config["IMPORT_BATCH_SIZE"] = 4
    text = (
        "email,state,zip,phone,opted_in\n"
        "a@example.org,ma,02134,(617) 555-0101,yes\n"
        "b@example.org,MA,2134,(617) 555-0102,no\n"  # bad zip
        "c@example.org,M,02134,(617) 555-0103,\n"  # bad state
        "d@example.org,ny,,555-01,y\n"  # bad phone
        "e@example.org,NY,10001-1234,617.555.0105,sure\n"  # bad yes/no
        "f@example.org,,10001,,N\n"
    )
    run, _ = run_import(app, users["user"], tmp_path, text, ["email", "state", "zip", "phone", "opted_in"])
    assert (run.created, run.rejected) == (2, 4)
    assert [r.line for r in RunRejection.query.order_by(RunRejection.line)] == [3, 4, 5, 6]
    a, f = supporter("a@example.org"), supporter("f@example.org")
    assert (a.state, a.zip, a.phone, a.opted_in) == ("MA", "02134", "(617) 555-0101", True)
    assert (f.state, f.zip, f.phone, f.opted_in) == (None, "10001", None, False)


def test_a_rejected_line_lists_every_problem_it_has(app, users, tmp_path):
    text = (
        "email,state,zip,phone,opted_in\n"
        "ann@example.org,MA,02134,555-0101,yes\n"
        "bob@example.org,Mass,1234,555-01,yes\n"  # three bad fields
        "not-an-email,M,02134,555-0101,maybe\n"  # a bad email and two bad fields
        ",MA,02134,555-0101,sure\n"  # no email and a bad field
    )
    run, _ = run_import(app, users["user"], tmp_path, text, ["email", "state", "zip", "phone", "opted_in"])
    assert (run.created, run.rejected) == (1, 3)
    reasons = [r.reason for r in RunRejection.query.order_by(RunRejection.line)]
    assert reasons == [
        "line 3: state must be a 2-letter code; "
        "'1234' is not a valid US ZIP code (like 12345 or 12345-6789); '555-01' is not a phone number",
        "line 4: 'not-an-email' is not a valid email address; state must be a 2-letter code; "
        "'maybe' is not yes/no for opted_in",
        "line 5: email is missing; 'sure' is not yes/no for opted_in",
    ]
    with current_storage().open(fresh(run).result_path) as report:
        assert list(csv.reader(report.read().decode().splitlines()))[1] == ["3", reasons[0]]


def test_a_line_with_more_problems_than_a_reason_holds_lists_those_that_fit(app, users, tmp_path):
    names = [f.name for f in SUPPORTER_FIELDS]  # every one bad, with a long value
    text = ",".join(names) + "\n" + ",".join(["é" * 300] * len(names)) + "\n"
    run, _ = run_import(app, users["user"], tmp_path, text, names)
    (reason,) = [r.reason for r in RunRejection.query]
    assert len(reason) <= 500
    assert reason.startswith(f"line 2: '{'é' * 40}… (300 characters)' is not a valid email address; ")
    assert re.search(r"; [^;]+ \(\+[0-9]+ more\)$", reason)
    shown = reason.count("; ") + 1
    assert reason.endswith(f" (+{len(names) - shown} more)")


@pytest.mark.parametrize("batch_size", [3, 100])  # batches with rejected rows, or one valid batch
def test_a_postal_code_is_checked_for_its_rows_country_else_the_accounts_default(
    app, users, tmp_path, batch_size
):
    app.config["IMPORT_BATCH_SIZE"] = batch_size
    AccountSettings.get().default_country = "CA"
    db.session.commit()
    text = (
        "email,zip,country\n"
        "us@example.org,02134,US\n"
        "uk@example.org,sw1a1aa,UK\n"  # stored as GB, the postcode in its own form
        "ca@example.org,k1a0b1,\n"  # no country: the account's default, Canada
        "se@example.org,SE-123 45,Sweden\n"  # no rule for Sweden: free text
        "nl@example.org,1234ab,nl\n"
    )
    run, _ = run_import(app, users["user"], tmp_path, text, ["email", "zip", "country"])
    assert (run.created, run.rejected) == (5, 0)
    stored = {s.email: (s.zip, s.country) for s in Supporter.query}
    assert stored == {
        "us@example.org": ("02134", "US"),
        "uk@example.org": ("SW1A 1AA", "GB"),
        "ca@example.org": ("K1A 0B1", None),
        "se@example.org": ("SE-123 45", "SE"),
        "nl@example.org": ("1234 AB", "NL"),
    }
    log = [line.message for line in RunLogLine.query.filter_by(run_id=run.id)]
    assert "else for Canada (the account's default country)." in " ".join(log)


def test_a_postal_code_refused_for_its_country_names_it_and_a_bad_country_falls_back(app, users, tmp_path):
    text = (
        "email,zip,country\n"
        "ca@example.org,K1A0B1X,CA\n"
        "us@example.org,K1A 0B1,\n"  # the default is the United States
        "nn@example.org,02134,Narnia\n"  # the country is refused; the ZIP checked as a US one
        "nx@example.org,K1A 0B1,Narnia\n"
    )
    run, _ = run_import(app, users["user"], tmp_path, text, ["email", "zip", "country"])
    assert run.rejected == 4
    narnia = "'Narnia' is not a country: use its 2-letter code (like US, GB or CA)"
    assert [r.reason for r in RunRejection.query.order_by(RunRejection.line)] == [
        "line 2: 'K1A0B1X' is not a valid Canadian postal code (like K1A 0B1)",
        "line 3: 'K1A 0B1' is not a valid US ZIP code (like 12345 or 12345-6789)",
        f"line 4: {narnia}",
        f"line 5: 'K1A 0B1' is not a valid US ZIP code (like 12345 or 12345-6789); {narnia}",
    ]


def test_without_a_country_column_every_postal_code_is_the_accounts_defaults(app, users, tmp_path):
    AccountSettings.get().default_country = "GB"
    db.session.commit()
    text = "email,postcode\nann@example.org,ec1a1bb\nbob@example.org,02134\n"
    run, _ = run_import(app, users["user"], tmp_path, text, ["email", "zip"])
    assert supporter("ann@example.org").zip == "EC1A 1BB"
    assert [r.reason for r in RunRejection.query] == [
        "line 3: '02134' is not a valid UK postcode (like SW1A 1AA)"
    ]
