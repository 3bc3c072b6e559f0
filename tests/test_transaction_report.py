"""Netdonor Transaction Report: its date ranges (fixed, and relative to the run in the account
time zone), filters, owner rules, the formula-safe CSV with its totals by currency, Retry, and
its form (Save and run, Edit, a schedule of its own)."""

from __future__ import annotations

import csv
from datetime import date, datetime
from decimal import Decimal

import pytest

from tests.conftest import fresh, work
from webapp.engine.runs import retry_run, start_run
from webapp.extensions import db
from webapp.jobtypes.transaction_report import COLUMNS, TOTALS_TITLE, date_range
from webapp.models import Job, Run, RunLogLine
from webapp.models.money import Transaction
from webapp.models.people import Supporter
from webapp.rules.states import RunState
from webapp.storage import current_storage


def gift(owner, day, amount, *, currency="USD", who=None, **fields) -> Transaction:
    row = Transaction(
        supporter_id=who.id if who else None,
        amount=Decimal(amount),
        currency=currency,
        received_on=day,
        source="bank",
        owner_id=owner.id,
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def report_job(owner, **params) -> Job:
    job = Job(
        owner_id=owner.id,
        job_type="transaction_report",
        name="Monthly gifts",
        params={"range": "fixed", "start": "2026-03-01", "end": "2026-03-31", "bom": False, **params},
    )
    db.session.add(job)
    db.session.commit()
    return job


def run_report(app, job: Job, *, at: datetime | None = None) -> Run:
    run = start_run(job, job.owner)
    if at is not None:
        run.created_at = at
        db.session.commit()
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED, run.error
    return run


def table(run: Run) -> list[list[str]]:
    with open(current_storage().path(run.result_path), newline="", encoding="utf-8-sig") as result:
        return list(csv.reader(result))


def listed(run: Run) -> list[list[str]]:
    """The transaction rows (before the empty row that ends them)."""
    rows = table(run)
    return rows[1 : rows.index([])]


def totals(run: Run) -> list[list[str]]:
    rows = table(run)
    block = rows[rows.index([]) + 1 :]
    assert block[0] == [TOTALS_TITLE] and block[1] == ["Currency", "Transactions", "Amount", "Tax-deductible"]
    return block[2:]


@pytest.mark.parametrize(
    ("params", "at", "days"),
    [
        (
            {"range": "fixed", "start": "2026-02-03", "end": "2026-02-09"},
            datetime(2026, 7, 1),
            ("02-03", "02-09"),
        ),
        # 03:00 UTC on March 1 is still February 28 in New York: the previous month is January
        ({"range": "previous_month"}, datetime(2026, 3, 1, 3, 0), ("01-01", "01-31")),
        ({"range": "previous_month"}, datetime(2026, 3, 1, 12, 0), ("02-01", "02-28")),
        ({"range": "previous_month"}, datetime(2026, 1, 15, 12, 0), ("2025-12-01", "2025-12-31")),
        ({"range": "last_7_days"}, datetime(2026, 3, 10, 12, 0), ("03-03", "03-09")),
        ({"range": "year_to_date"}, datetime(2026, 3, 10, 12, 0), ("01-01", "03-10")),
    ],
)
def test_the_date_range_is_fixed_or_counted_from_the_runs_day_in_the_account_time_zone(params, at, days):
    first, last = date_range(params, at, "America/New_York")
    expected = [day if day.startswith("20") else f"2026-{day}" for day in days]
    assert [first.isoformat(), last.isoformat()] == expected


def test_a_monthly_report_lists_last_months_transactions_with_supporter_fields_and_totals(app, users):
    owner = users["user"]
    ann = Supporter(
        email="ann@example.org",
        first_name="Ann",
        last_name="Lee",
        address1="1 Main St",
        city="Boston",
        state="MA",
        zip="02110",
        country="US",
        external_id="CRM-7",
    )
    db.session.add(ann)
    db.session.flush()
    gift(owner, date(2026, 1, 31), "99.00", who=ann)  # the month before
    gift(owner, date(2026, 2, 14), "50.00", who=ann, tax_deductible=Decimal("50.00"), external_id="T-2")
    gift(owner, date(2026, 2, 1), "10.50", who=ann, payment_method="Card", appeal="SPRING")
    gift(owner, date(2026, 2, 28), "-5.00", who=ann, kind="refund")
    gift(owner, date(2026, 2, 20), "20.00", currency="EUR", tax_deductible=Decimal("15.00"))
    gift(owner, date(2026, 3, 1), "70.00", who=ann)  # the month of the run
    job = report_job(owner, range="previous_month")
    run = run_report(app, job, at=datetime(2026, 3, 5, 15, 0))
    assert table(run)[0] == list(COLUMNS)
    rows = listed(run)
    assert [(row[1], row[2], row[3]) for row in rows] == [
        ("2026-02-01", "10.50", "USD"),
        ("2026-02-14", "50.00", "USD"),
        ("2026-02-20", "20.00", "EUR"),
        ("2026-02-28", "-5.00", "USD"),  # a number, not a neutralised text
    ]
    assert rows[0][5:8] == ["Card", "One-off", "SPRING"]
    assert rows[0][11:] == [
        "ann@example.org",
        "Ann",
        "Lee",
        "1 Main St",
        "Boston",
        "MA",
        "02110",
        "US",
        "CRM-7",
    ]
    assert rows[3][6] == "Refund" and rows[2][10:12] == ["", ""]  # a gift without a supporter
    assert totals(run) == [["EUR", "1", "20.00", "15.00"], ["USD", "3", "55.50", "50.00"]]
    assert run.created == 4
    lines = db.session.execute(db.select(RunLogLine.message).filter_by(run_id=run.id)).scalars().all()
    assert "Total USD: 55.50 in 3 transactions (50.00 tax-deductible, where the file gave it)." in lines
    assert any("2026-02-01 to 2026-02-28" in line for line in lines)


def test_the_filters_narrow_the_transactions(app, users):
    owner = users["user"]
    day = date(2026, 3, 2)
    gift(owner, day, "10.00", appeal="Spring", payment_method="Card")
    gift(owner, day, "100.00", appeal="SPRING", payment_method="card", kind="recurring")
    gift(owner, day, "200.00", appeal="AUTUMN", payment_method="Card", kind="recurring")
    gift(owner, day, "300.00", appeal="spring", payment_method="PayPal", kind="recurring")
    job = report_job(owner, appeal="spring", payment_method="CARD", kind="recurring", min_amount="50.00")
    run = run_report(app, job)
    assert [row[2] for row in listed(run)] == ["100.00"]


@pytest.mark.parametrize(("role", "seen"), [("user", ["1.00"]), ("super_admin", ["1.00", "2.00"])])
def test_a_users_report_covers_their_own_imports_and_a_super_admins_every_one(app, users, role, seen):
    gift(users["user"], date(2026, 3, 3), "1.00")
    gift(users["other"], date(2026, 3, 4), "2.00")
    run = run_report(app, report_job(users[role]))
    assert [row[2] for row in listed(run)] == seen


def test_cells_that_would_be_formulas_are_neutralised(app, users):
    owner = users["user"]
    evil = Supporter(
        email="eve@example.org", first_name='=HYPERLINK("http://x")', city="+1", last_name="@SUM(A1)"
    )
    db.session.add(evil)
    db.session.flush()
    gift(owner, date(2026, 3, 5), "-3.00", who=evil, appeal="-2+3", kind="refund")
    (row,) = listed(run_report(app, report_job(owner)))
    assert row[2] == "-3.00"
    assert row[7] == "'-2+3" and row[12] == '\'=HYPERLINK("http://x")' and row[13] == "'@SUM(A1)"
    assert row[15] == "'+1"


def test_a_failed_report_continues_on_retry_and_counts_each_transaction_once(app, users, monkeypatch):
    from webapp.jobtypes import transaction_report

    owner = users["user"]
    for day in range(1, 8):  # batches of 3 (EXPORT_BATCH_SIZE in the tests)
        gift(owner, date(2026, 3, day), "10.00")
    real, calls = transaction_report.add_to_totals, []

    def failing_once(totals, rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise OSError("the disk went away")
        real(totals, rows)

    monkeypatch.setattr(transaction_report, "add_to_totals", failing_once)
    run = start_run(report_job(owner), owner)
    work(app)
    run = fresh(run)
    assert run.state is RunState.FAILED and run.created == 3
    retry_run(run, owner)
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED and run.created == 7
    assert [row[1][-2:] for row in listed(run)] == [f"0{day}" for day in range(1, 8)]
    assert totals(run) == [["USD", "7", "70.00", "0.00"]]


def test_the_form_saves_and_runs_edits_and_schedules_a_report(app, client, auth, users):
    auth.login(users["user"].email)
    assert "Fixed dates" in client.get("/reports/new").get_data(as_text=True)
    bad = client.post(
        "/reports/new", data={"name": "Q1", "range": "fixed", "start": "2026-03-31", "end": "2026-01-01"}
    )
    assert bad.status_code == 400 and "The last day is before the first day." in bad.get_data(as_text=True)
    nan = client.post("/reports/new", data={"name": "Q1", "range": "previous_month", "min_amount": "NaN"})
    assert nan.status_code == 400 and "Enter an amount" in nan.get_data(as_text=True)
    response = client.post(
        "/reports/new",
        data={
            "name": "Monthly",
            "range": "previous_month",
            "appeal": " SPRING ",
            "min_amount": "5",
            "action": "save_run",
        },
    )
    job = db.session.execute(db.select(Job).filter_by(name="Monthly")).scalar_one()
    assert job.params["range"] == "previous_month" and job.params["appeal"] == "SPRING"
    assert job.params["min_amount"] == "5.00" and job.params["start"] is None
    run = db.session.execute(db.select(Run).filter_by(job_id=job.id)).scalar_one()
    assert response.location.endswith(f"/runs/{run.id}")
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "The previous calendar month" in page and "Campaign or appeal: SPRING" in page
    edit = client.get(f"/reports/{job.id}/edit").get_data(as_text=True)
    assert 'value="SPRING"' in edit
    client.post(f"/reports/{job.id}/edit", data={"name": "Monthly", "range": "year_to_date"})
    assert fresh(run).job.params["range"] == "year_to_date"
    assert client.get(f"/jobs/{job.id}/schedule").status_code == 200
    assert "New transaction report" in client.get("/jobs/new").get_data(as_text=True)
    auth.logout()
    auth.login(users["other"].email)
    assert client.get(f"/reports/{job.id}/edit").status_code == 404


def test_an_amount_that_is_no_number_gets_one_message_not_two(client, auth, users):
    auth.login(users["user"].email)
    for given in ("abc", "NaN"):
        form = {"name": "Q1", "range": "previous_month", "min_amount": given}
        page = client.post("/reports/new", data=form)
        assert page.status_code == 400 and page.text.count('class="field-error"') == 1, given
