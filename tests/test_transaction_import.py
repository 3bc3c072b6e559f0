"""Transaction Data Import: every rejection reason, supporters matched by email or external id,
created or refused, what changed kept for the rollback, a retry that continues from the
checkpoint; run on a real Redis through RQ's SimpleWorker (batches of 3 lines in tests)."""

from datetime import date
from decimal import Decimal

import pytest

from tests.conftest import fresh, work
from webapp.engine.runs import retry_run, start_run
from webapp.extensions import db
from webapp.jobtypes import job_type_for, transaction_loader
from webapp.models import Job, RunLogLine, RunRejection, Supporter
from webapp.models.money import SupporterChange, Transaction
from webapp.models.people import ErasedEmail, email_hash, email_key
from webapp.rules.states import RunState


def transaction_job(owner, path, mapping, **options) -> Job:
    """A transaction import job over a file on disk, as the mapping page saves it."""
    job = Job(
        owner_id=owner.id,
        job_type="transaction_import",
        name="Gifts",
        params={
            "path": str(path),
            "filename": path.name,
            "encoding": "utf-8",
            "delimiter": ",",
            "columns": mapping,
            "mapping": mapping,
            "source": "Stripe",
            "match_by": "email",
            "unknown": "create",
            "default_currency": "USD",
            **options,
        },
    )
    db.session.add(job)
    db.session.commit()
    return job


def run_transactions(app, user, tmp_path, text, mapping, **options):
    path = tmp_path / "gifts.csv"
    path.write_text(text)
    run = start_run(transaction_job(user, path, mapping, **options), user)
    work(app)
    return fresh(run)


def add_supporters(*rows: dict) -> None:
    db.session.execute(db.insert(Supporter), list(rows))
    db.session.commit()


def reasons(run) -> list[str]:
    query = RunRejection.query.filter_by(run_id=run.id).order_by(RunRejection.line)
    return [rejection.reason for rejection in query]


def supporter(email) -> Supporter:
    return Supporter.query.filter_by(email=email).one()


def changes(run) -> dict[str, tuple[bool, dict, dict]]:
    rows = SupporterChange.query.filter_by(run_id=run.id)
    emails = {s.id: s.email for s in Supporter.query}
    return {emails[row.supporter_id]: (row.created, row.before, row.after) for row in rows}


ALL_COLUMNS = ["email", "amount", "currency", "date", "type", "transaction_id", "tax_deductible"]


def test_a_time_with_an_offset_is_dated_in_the_account_zone_and_an_impossible_time_refused(
    app, users, tmp_path
):
    add_supporters({"email": "ann@example.org"})  # the account's zone: America/New_York
    text = (
        "email,amount,currency,date,type,transaction_id,tax_deductible\n"
        "ann@example.org,5,USD,2026-01-01T03:00:00Z,one_off,z1,\n"  # 10 PM on Dec 31 in New York
        "ann@example.org,5,USD,2026-01-01T03:00:00+05:00,one_off,z2,\n"  # 5 PM on Dec 31
        "ann@example.org,5,USD,2026-01-01 23:30:00-0500,one_off,z3,\n"  # New York's own: Jan 1
        "ann@example.org,5,USD,2026-01-01 03:00,one_off,z4,\n"  # no offset: as written
        "ann@example.org,5,USD,2026-01-01T25:99:00,one_off,z5,\n"
    )
    run = run_transactions(app, users["user"], tmp_path, text, ALL_COLUMNS)
    assert reasons(run) == [
        "line 6: '2026-01-01T25:99:00' is not a date: write it as yyyy-mm-dd (like 2026-01-31)"
    ]
    stored = {t.external_id: t.received_on.isoformat() for t in Transaction.query.filter_by(run_id=run.id)}
    assert stored == {"z1": "2025-12-31", "z2": "2025-12-31", "z3": "2026-01-01", "z4": "2026-01-01"}


def test_each_bad_line_is_rejected_with_every_reason_and_the_good_ones_stored(app, users, tmp_path):
    add_supporters({"email": "ann@example.org"})
    db.session.add(
        Transaction(
            supporter_id=None,
            amount=Decimal(1),
            currency="USD",
            received_on=date(2025, 1, 1),
            source="Stripe",
            external_id="t0",
        )
    )
    db.session.commit()
    text = (
        "email,amount,currency,date,type,transaction_id,tax_deductible\n"
        "ann@example.org,10.00,usd,2026-01-05,one_off,t1,5\n"  # 2: good
        "ann@example.org,abc,USD,2026-01-05,one_off,t2,\n"
        "ann@example.org,,USD,2026-01-05,one_off,t3,\n"
        "ann@example.org,-5,USD,2026-01-05,one-off,t4,\n"  # 5
        "ann@example.org,5,XYZ,2026-01-05,one_off,t5,\n"
        "ann@example.org,5,USD,05/01/2026,one_off,t6,\n"
        "ann@example.org,5,USD,2999-01-01,one_off,t7,\n"  # 8
        "ann@example.org,5,USD,2026-01-05,gift,t8,\n"
        "ann@example.org,5,USD,2026-01-05,recurring,t1,\n"  # 10: t1 stored by line 2
        "ann@example.org,5,USD,2026-01-05 10:30:00,recurring,t9,\n"  # 11: good
        "ann@example.org,5,USD,2026-01-05,recurring,t9,\n"  # 12: t9 on line 11 (same batch)
        "ann@example.org,5,USD,2026-01-05,one_off,t0,\n"  # 13: stored before
        "not-an-email,5,USD,2026-01-05,one_off,t10,\n"  # 14
        ",5,USD,2026-01-05,one_off,t11,\n"
        "nobody@example.org,5,USD,2026-01-05,one_off,t12,\n"
        "ann@example.org,10,USD,2026-01-05,one_off,t13,20\n"  # 17
        "ann@example.org,10,USD,2026-01-05,one_off,t14,lots\n"
        "ann@example.org,abc,EUR1,2026-02-30,one_off,t15,\n"  # 19: three problems
        "ann@example.org,7,,2026-01-06,Refund,t16,2\n"  # 20: good, stored negative
        "ann@example.org,0.00,USD,2026-01-06,one_off,t17,\n"  # 21: nothing given
        "ann@example.org,5,USD,0001-01-01,one_off,t18,\n"  # 22: a typo for the year
        "ann@example.org,99999999999999,USD,2026-01-06,one_off,t19,\n"
        'ann@example.org,"12,50",EUR,2026-01-06,one_off,t20,\n'  # 24: a decimal comma, not 1,250
        "ann@example.org,12.345,BHD,2026-01-06,one_off,t21,\n"  # 25: not rounded to 12.34
        'ann@example.org,"1,234.50",USD,2026-01-06,one_off,t22,\n'  # 26: good, thousands
        "ann@example.org,10,USD,2026-01-06,one_off,t23,-5\n"  # 27: never receipted, silently
    )
    run = run_transactions(app, users["user"], tmp_path, text, ALL_COLUMNS, unknown="reject")
    assert run.state is RunState.COMPLETED
    assert reasons(run) == [
        "line 3: 'abc' is not a number for amount",
        "line 4: amount is missing",
        "line 5: amount -5.00 is negative for a one-off gift (only a refund may be)",
        "line 6: 'XYZ' is not a currency code (ISO 4217, like USD, EUR or GBP)",
        "line 7: '05/01/2026' is not a date: write it as yyyy-mm-dd (like 2026-01-31)",
        "line 8: date 2999-01-01 is in the future",
        "line 9: 'gift' is not a transaction type: use one-off, recurring or refund",
        "line 10: transaction id 't1' appears on an earlier line of this file",
        "line 12: transaction id 't9' is repeated: line 11 has it too",
        "line 13: transaction id 't0' is already stored for Stripe",
        "line 14: 'not-an-email' is not a valid email address",
        "line 15: email is missing",
        "line 16: no supporter has the email nobody@example.org",
        "line 17: the tax-deductible amount 20.00 is larger than the amount 10.00",
        "line 18: 'lots' is not a number for the tax-deductible amount",
        "line 19: 'abc' is not a number for amount; 'EUR1' is not a currency code (ISO 4217, like USD, "
        "EUR or GBP); '2026-02-30' is not a date: write it as yyyy-mm-dd (like 2026-01-31)",
        "line 21: amount 0.00 is zero: a gift or refund has an amount",
        "line 22: date 0001-01-01 is before 1900-01-01: check the year",
        "line 23: '99999999999999' is too large for amount (at most 9,999,999,999.99)",
        "line 24: '12,50' is not a number for amount: write decimals with a point (12.50); a comma "
        "may only separate thousands (1,234.50)",
        "line 25: '12.345' has more than two decimals for amount (amounts are kept in cents)",
        "line 27: the tax-deductible amount -5.00 is negative for a one-off gift (only a refund's may be)",
    ]
    assert (run.checked, run.created, run.rejected, run.skipped, run.updated) == (26, 4, 22, 0, 0)
    stored = {
        t.external_id: (t.amount, t.currency, t.received_on, t.kind, t.tax_deductible, t.run_id, t.owner_id)
        for t in Transaction.query.filter_by(run_id=run.id)
    }
    user_id = users["user"].id
    assert stored == {
        "t1": (Decimal("10.00"), "USD", date(2026, 1, 5), "one_off", Decimal("5.00"), run.id, user_id),
        "t9": (Decimal("5.00"), "USD", date(2026, 1, 5), "recurring", None, run.id, user_id),
        "t16": (Decimal("-7.00"), "USD", date(2026, 1, 6), "refund", Decimal("-2.00"), run.id, user_id),
        "t22": (Decimal("1234.50"), "USD", date(2026, 1, 6), "one_off", None, run.id, user_id),
    }
    assert run.has_result  # the import report of the rejected lines
    assert job_type_for("transaction_import").counts(run) == [
        ("Lines checked", 26),
        ("Transactions created", 4),
        ("Supporters created", 0),
        ("Supporters updated", 0),
        ("Lines rejected", 22),
    ]


def test_matched_by_email_an_unknown_supporter_is_created_once_and_a_known_one_updated(app, users, tmp_path):
    add_supporters(
        {"email": "ann@example.org", "first_name": "Ann", "city": "Boston"},
        {"email": "bob@example.org", "first_name": "Bob", "city": "Salem"},
    )
    key = email_key(app.config["SECRET_KEY"])
    db.session.add(ErasedEmail(email_hash=email_hash(key, "gone@example.org")))
    db.session.commit()
    text = (
        "Email,First name,City,Amount,Date,Supporter ID\n"
        "ANN@example.org,Ann,Cambridge,10,2026-01-05,\n"  # Ann moved
        "bob@example.org,,Salem,5,2026-01-05,\n"  # Bob unchanged
        "new@example.org,Nia,Lowell,20,2026-01-06,N-1\n"  # created
        "new@example.org,,,30,2026-01-07,\n"  # a second gift of the same new supporter
        "gone@example.org,Gus,,5,2026-01-07,\n"  # deleted on request
        "ann@example.org,,Somerville,1,2026-01-08,\n"  # Ann again, a later batch
    )
    mapping = ["email", "first_name", "city", "amount", "date", "external_id"]
    run = run_transactions(app, users["user"], tmp_path, text, mapping)
    assert [reason.split(" on ", 1)[0] for reason in reasons(run)] == ["line 6: deleted"]
    logged = [line.message for line in RunLogLine.query.filter_by(run_id=run.id)]
    assert any(message.startswith("No column is mapped to External transaction id") for message in logged)
    assert (run.checked, run.created, run.skipped, run.updated, run.rejected) == (6, 5, 1, 1, 1)
    new = supporter("new@example.org")
    assert (new.first_name, new.city, new.external_id, new.last_run_id) == ("Nia", "Lowell", "N-1", run.id)
    assert supporter("ann@example.org").city == "Somerville"
    assert changes(run) == {
        "ann@example.org": (False, {"city": "Boston"}, {"city": "Somerville"}),
        "new@example.org": (True, {}, {}),
    }
    gifts = Transaction.query.filter_by(supporter_id=new.id).count()
    assert gifts == 2 and Supporter.query.filter_by(email="gone@example.org").count() == 0

    readd = run_transactions(
        app, users["user"], tmp_path, "email,amount,date\ngone@example.org,5,2026-01-07\n",
        ["email", "amount", "date"], readd_deleted=True,
    )  # fmt: skip
    assert (readd.created, readd.skipped, readd.rejected) == (1, 1, 0)


def test_matched_by_external_id_unknown_supporters_need_a_free_email_or_are_refused(app, users, tmp_path):
    add_supporters(
        {"email": "ann@example.org", "external_id": "D-1", "last_name": "Ames"},
        {"email": "bob@example.org"},
    )
    text = (
        "donor id,email,last name,amount,date\n"
        "D-1,other@example.org,Ames,10,2026-01-05\n"  # matched; its email is not changed
        "D-2,cy@example.org,Cole,5,2026-01-05\n"  # created
        "D-3,,Dunn,5,2026-01-05\n"  # no email for a new supporter
        "D-4,bob@example.org,Bell,5,2026-01-05\n"  # bob's email is taken
        ",ann@example.org,,5,2026-01-05\n"  # no id
    )
    mapping = ["external_id", "email", "last_name", "amount", "date"]
    run = run_transactions(app, users["user"], tmp_path, text, mapping, match_by="external_id")
    assert reasons(run) == [
        "line 4: email is missing: a new supporter needs one",
        "line 5: bob@example.org belongs to another supporter (with another external id)",
        "line 6: external supporter id is missing",
    ]
    assert (run.created, run.skipped, run.updated, run.rejected) == (2, 1, 0, 3)
    assert supporter("ann@example.org").external_id == "D-1"
    assert (supporter("cy@example.org").external_id, supporter("cy@example.org").last_name) == ("D-2", "Cole")

    refused = run_transactions(
        app, users["user"], tmp_path, text.replace("D-", "E-").replace("cy@", "dee@"), mapping,
        match_by="external_id", unknown="reject", source="PayPal",
    )  # fmt: skip
    assert reasons(refused)[:2] == [
        "line 2: no supporter has the external id 'E-1'",
        "line 3: no supporter has the external id 'E-2'",
    ]
    assert refused.created == 0 and Supporter.query.filter_by(email="dee@example.org").count() == 0


def test_a_failed_run_retried_continues_from_its_checkpoint_without_duplicates_or_a_new_before(
    app, users, tmp_path, monkeypatch
):
    add_supporters({"email": "ann@example.org", "city": "Boston"})
    rows = [
        f"ann@example.org,{city},{n + 1},2026-01-05,t{n}\n"
        for n, city in enumerate(["Cambridge"] * 6 + ["Salem"] * 3)
    ]
    path = tmp_path / "gifts.csv"
    path.write_text("email,city,amount,date,transaction_id\n" + "".join(rows))
    job = transaction_job(users["user"], path, ["email", "city", "amount", "date", "transaction_id"])
    run = start_run(job, users["user"])
    original = transaction_loader.iter_record_batches

    def flaky(*args, **kwargs):  # the disk goes away while the third batch is read
        for n, batch in enumerate(original(*args, **kwargs), start=1):
            if n == 3:
                raise OSError("disk went away")
            yield batch

    monkeypatch.setattr(transaction_loader, "iter_record_batches", flaky)
    work(app)
    run = fresh(run)
    assert run.state is RunState.FAILED and run.checkpoint == {"records": 6}
    assert Transaction.query.count() == 6 and supporter("ann@example.org").city == "Cambridge"
    monkeypatch.setattr(transaction_loader, "iter_record_batches", original)
    retry_run(run, users["user"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED and (run.checked, run.created, run.updated) == (9, 9, 1)
    assert sorted(t.external_id for t in Transaction.query) == [f"t{n}" for n in range(9)]
    assert changes(run) == {"ann@example.org": (False, {"city": "Boston"}, {"city": "Salem"})}


def test_supporters_another_import_stores_between_the_lookup_and_the_insert(
    app, users, tmp_path, monkeypatch
):
    original = transaction_loader.TransactionLoader.match_supporters

    def raced(self, lines):  # another import stores two of the new supporters meanwhile
        stored = original(self, lines)
        if not Supporter.query.filter_by(email="race@example.org").count():
            db.session.execute(
                db.insert(Supporter),
                [
                    {"email": "race@example.org", "city": "Boston"},
                    {"email": "x@example.org", "external_id": "X-9"},
                ],
            )
        return stored

    monkeypatch.setattr(transaction_loader.TransactionLoader, "match_supporters", raced)
    text = (
        "email,city,amount,date,donor id\n"
        "new@example.org,Lowell,10,2026-01-05,N-1\n"  # created
        "race@example.org,Salem,5,2026-01-05,\n"  # stored meanwhile: its gift goes to that one
        "claim@example.org,,5,2026-01-05,X-9\n"  # its external id stored meanwhile: refused
    )
    mapping = ["email", "city", "amount", "date", "external_id"]
    run = run_transactions(app, users["user"], tmp_path, text, mapping)
    assert reasons(run) == ["line 4: the supporter could not be created: another import stored one like it"]
    assert (run.created, run.skipped, run.rejected) == (2, 1, 1)
    assert changes(run) == {"new@example.org": (True, {}, {})}
    race = supporter("race@example.org")
    assert (race.city, race.last_run_id) == ("Boston", None)
    assert Transaction.query.filter_by(supporter_id=race.id).count() == 1
    assert supporter("new@example.org").external_id == "N-1"


@pytest.mark.parametrize("viewer", ["user", "other", "super_admin"])
def test_the_transactions_page_lists_only_the_viewers_own_and_a_super_admin_all(
    app, client, auth, users, tmp_path, viewer
):
    add_supporters({"email": "ann@example.org"})
    run_transactions(app, users["user"], tmp_path, "email,amount,date\nann@example.org,12.34,2026-01-05\n",
                     ["email", "amount", "date"])  # fmt: skip
    auth.login(users[viewer].email)
    page = client.get("/transactions/").get_data(as_text=True)
    assert ("12.34" in page) is (viewer != "other")
    ann = supporter("ann@example.org")
    detail = client.get(f"/supporters/{ann.id}").get_data(as_text=True)
    assert ("12.34" in detail) is (viewer != "other")
    assert client.get("/supporters/999999").status_code == 404


def test_a_file_without_transaction_ids_is_not_imported_twice_by_running_its_job_again(app, users, tmp_path):
    add_supporters({"email": "ann@example.org"})
    text = "email,amount,currency,date\nann@example.org,5,USD,2026-01-05\n"
    first = run_transactions(app, users["user"], tmp_path, text, ["email", "amount", "currency", "date"])
    assert first.state is RunState.COMPLETED and first.created == 1
    again = start_run(first.job, users["user"])  # Run now, or its schedule
    work(app)
    again = fresh(again)
    assert again.state is RunState.FAILED
    assert "its file was imported by run #1 already" in again.error and "stored twice" in again.error
    assert Transaction.query.count() == 1
