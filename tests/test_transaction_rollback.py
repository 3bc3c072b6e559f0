"""Rollback Transaction Data Import: the preview and confirmation on the import's run page, what
a rollback deletes and restores (exactly, a later edit kept), its refusals (API imports, rolled
back already, receipted gifts), one rollback per import, who may, Retry; and what a Supporter
Delete leaves of a supporter's money (the books and receipts, without the person)."""

from __future__ import annotations

import csv
import time
from datetime import date
from decimal import Decimal

import pytest

from tests.conftest import fresh, work
from webapp.engine.runs import request_stop, retry_run
from webapp.extensions import db
from webapp.jobtypes.supporter_delete import erase
from webapp.models import Job, Run
from webapp.models.money import ImportRollback, Receipt, ReceiptItem, SupporterChange, Transaction
from webapp.models.people import Supporter, email_key
from webapp.rules.states import RunState
from webapp.storage import current_storage

_imports = 0


def an_import(owner, *, trigger="manual", state=RunState.COMPLETED) -> Run:
    """A finished Transaction Data Import run of `owner`, as the import leaves it."""
    global _imports
    _imports += 1
    job = Job(owner_id=owner.id, job_type="transaction_import", name=f"Gifts {_imports}", params={})
    db.session.add(job)
    db.session.flush()
    run = Run(
        job_id=job.id,
        owner_id=owner.id,
        job_type="transaction_import",
        job_name=job.name,
        number=1,
        state=state,
        trigger=trigger,
    )
    db.session.add(run)
    db.session.commit()
    return run


def supporter(email, **fields) -> Supporter:
    row = Supporter(email=email, **fields)
    db.session.add(row)
    db.session.flush()
    return row


def gift(run: Run | None, who: Supporter, amount="25.00", external_id=None) -> Transaction:
    row = Transaction(
        supporter_id=who.id,
        amount=Decimal(amount),
        currency="USD",
        received_on=date(2026, 3, 1),
        source="bank",
        external_id=external_id,
        run_id=run.id if run else None,
        owner_id=run.owner_id if run else None,
    )
    db.session.add(row)
    db.session.flush()
    return row


def changed(run: Run, who: Supporter, before: dict, after: dict) -> None:
    db.session.add(SupporterChange(run_id=run.id, supporter_id=who.id, before=before, after=after))


def created(run: Run, who: Supporter) -> None:
    db.session.add(SupporterChange(run_id=run.id, supporter_id=who.id, created=True, before={}, after={}))


def receipt(tx: Transaction, number: int, status="issued") -> Receipt:
    row = Receipt(number=number, kind="single", amount=tx.amount, currency="USD", status=status)
    row.supporter_id = tx.supporter_id
    db.session.add(row)
    db.session.flush()
    db.session.add(ReceiptItem(receipt_id=row.id, transaction_id=tx.id, amount=tx.amount))
    db.session.flush()
    return row


def rollback_runs() -> list[Run]:
    """The rollback runs, oldest first (PostgreSQL returns rows in no set order otherwise)."""
    query = db.select(Run).filter_by(job_type="transaction_rollback").order_by(Run.id)
    return list(db.session.execute(query).scalars())


def confirm(client, run: Run):
    return client.post(f"/rollbacks/imports/{run.id}")


def result_rows(run: Run) -> list[list[str]]:
    with open(current_storage().path(run.result_path), newline="", encoding="utf-8") as result:
        return list(csv.reader(result))


@pytest.fixture
def imported(users):
    """An import of user@ that changed Ann and Dan, created Bea, Cy and Eve (Cy has a gift of a
    later import since, Eve was changed by a later import), with four gifts; Dan's city was
    edited after the import."""
    run = an_import(users["user"])
    ann = supporter("ann@example.org", first_name="Anne", city="Paris", donation_total=Decimal("35.00"))
    bea = supporter("bea@example.org", first_name="Bea", last_run_id=run.id)
    cy = supporter("cy@example.org", first_name="Cy")
    dan = supporter("dan@example.org", first_name="Daniel", city="Rome")
    changed(
        run,
        ann,
        {"first_name": "Ann", "city": None, "donation_total": "10.00"},
        {"first_name": "Anne", "city": "Paris", "donation_total": "35.00"},
    )
    changed(run, dan, {"first_name": "Dan", "city": "Oslo"}, {"first_name": "Daniel", "city": "Bergen"})
    created(run, bea)
    created(run, cy)
    for who in (ann, bea, cy, dan):
        gift(run, who, external_id=f"T-{who.first_name}")
    later = an_import(users["user"])
    gift(later, cy, "5.00", external_id="LATER-1")
    eve = supporter("eve@example.org", first_name="Eve", last_run_id=later.id)  # a later import's
    created(run, eve)
    db.session.commit()
    return run


def test_a_rollback_deletes_what_the_import_created_and_restores_what_it_changed_exactly(
    app, client, auth, users, imported
):
    app.config["DELETE_BATCH_SIZE"] = 3  # several batches of each kind
    auth.login(users["user"].email)
    page = client.get(f"/runs/{imported.id}").get_data(as_text=True)
    assert "Roll back this import" in page
    preview = client.get(f"/rollbacks/imports/{imported.id}").get_data(as_text=True)
    assert "Transactions deleted</dt><dd>4<" in preview
    assert "Supporters deleted</dt><dd>1<" in preview  # Bea; Cy has a later gift
    assert "Supporters restored</dt><dd>2<" in preview
    assert "ann@example.org" in preview and "T-Anne" in preview
    response = confirm(client, imported)
    rollback = rollback_runs()[0]
    assert response.status_code == 302 and response.location.endswith(f"/runs/{rollback.id}")
    work(app)
    rollback = fresh(rollback)
    assert rollback.state is RunState.COMPLETED, rollback.error
    assert (rollback.created, rollback.skipped, rollback.updated, rollback.unchanged) == (4, 1, 1, 3)
    assert rollback.checked == 9
    emails = db.session.execute(db.select(Supporter.email).order_by(Supporter.email)).scalars().all()
    assert emails == ["ann@example.org", "cy@example.org", "dan@example.org", "eve@example.org"]
    ann = db.session.execute(db.select(Supporter).filter_by(email="ann@example.org")).scalar_one()
    assert (ann.first_name, ann.city, ann.donation_total) == ("Ann", None, Decimal("10.00"))
    dan = db.session.execute(db.select(Supporter).filter_by(email="dan@example.org")).scalar_one()
    assert (dan.first_name, dan.city) == ("Dan", "Rome")  # the later edit of the city wins
    left = db.session.execute(db.select(Transaction.external_id)).scalars().all()
    assert left == ["LATER-1"]
    rows = {(row[0], row[2]): row[3:] for row in result_rows(rollback)[1:]}
    assert rows[("supporter", "bea@example.org")] == ["deleted", "created by the import"]
    assert rows[("supporter", "ann@example.org")] == ["restored", "first_name, city, donation_total"]
    assert rows[("supporter", "dan@example.org")] == [
        "kept (changed since)",
        "city changed since; restored first_name",
    ]
    assert rows[("supporter", "cy@example.org")][0] == "kept (changed since)"
    assert rows[("supporter", "eve@example.org")][0] == "kept (changed since)"
    assert rows[("transaction", "T-Bea")][0] == "deleted"
    page = client.get(f"/runs/{imported.id}").get_data(as_text=True)
    assert "This import was rolled back" in page and f"/runs/{rollback.id}" in page
    assert "Roll back this import" not in page
    assert "Rolls back" in client.get(f"/runs/{rollback.id}").get_data(as_text=True)


def test_an_import_made_through_the_api_is_refused(app, client, auth, users):
    run = an_import(users["user"], trigger="api")
    auth.login(users["user"].email)
    assert "Roll back this import" not in client.get(f"/runs/{run.id}").get_data(as_text=True)
    page = client.get(f"/rollbacks/imports/{run.id}").get_data(as_text=True)
    assert "only dashboard imports can be rolled back" in page
    response = confirm(client, run)
    assert response.status_code == 409 and rollback_runs() == []


def test_an_import_still_running_is_refused(app, client, auth, users):
    run = an_import(users["user"], state=RunState.PROCESSING)
    auth.login(users["user"].email)
    assert "only a completed or stopped import" in client.get(f"/rollbacks/imports/{run.id}").get_data(
        as_text=True
    )
    assert confirm(client, run).status_code == 409 and rollback_runs() == []


def test_an_import_rolled_back_already_is_refused(app, client, auth, users, imported):
    auth.login(users["user"].email)
    confirm(client, imported)
    work(app)
    page = client.get(f"/rollbacks/imports/{imported.id}").get_data(as_text=True)
    assert "already rolled back" in page
    again = confirm(client, imported)
    assert again.status_code == 302 and len(rollback_runs()) == 1


def test_receipted_gifts_are_listed_and_refused_and_a_voided_receipt_is_not(app, client, auth, users):
    """Only a live (issued) receipt holds a gift: a voided one does not, nor one replaced by
    another (a replaced receipt's number is void and it cannot be voided again)."""
    run = an_import(users["user"])
    ann = supporter("ann@example.org")
    receipted = gift(run, ann, external_id="T-1")
    voided = gift(run, ann, external_id="T-2")
    replaced = gift(run, ann, external_id="T-3")
    receipt(receipted, 1041)
    receipt(voided, 1042, status="voided")
    receipt(replaced, 1043, status="replaced")
    db.session.commit()
    auth.login(users["user"].email)
    page = client.get(f"/rollbacks/imports/{run.id}").get_data(as_text=True)
    assert "a receipted gift must be voided on its receipt first" in page
    assert "1041" in page and "T-1" in page and "1042" not in page and "1043" not in page
    assert confirm(client, run).status_code == 409 and rollback_runs() == []


def test_a_gift_receipted_after_the_confirmation_fails_the_run_and_frees_the_import(app, client, auth, users):
    run = an_import(users["user"])
    tx = gift(run, supporter("ann@example.org"), external_id="T-1")
    db.session.commit()
    auth.login(users["user"].email)
    confirm(client, run)
    receipt(tx, 7)
    db.session.commit()
    work(app)
    rollback = fresh(rollback_runs()[0])
    assert rollback.state is RunState.FAILED and "voided on its receipt first" in rollback.error
    assert db.session.execute(db.select(ImportRollback)).scalars().all() == []  # free again
    assert db.session.execute(db.select(Transaction)).scalars().all() != []


def test_pressing_the_button_twice_starts_one_rollback(app, client, auth, users, imported):
    auth.login(users["user"].email)
    first, second = confirm(client, imported), confirm(client, imported)
    runs = rollback_runs()
    assert len(runs) == 1 and len(db.session.execute(db.select(ImportRollback)).all()) == 1
    assert first.location == second.location == f"/runs/{runs[0].id}"
    # named for the import's run, without a second "run #1" beside its own run's label
    assert runs[0].job.name == f"Rollback of “{imported.job_name}” (import #{imported.number})"


def test_a_rollback_cancelled_before_it_starts_frees_the_import(app, client, auth, users, imported):
    auth.login(users["user"].email)
    confirm(client, imported)
    request_stop(rollback_runs()[0], users["user"])
    assert db.session.execute(db.select(ImportRollback)).all() == []
    assert "Roll back this import" in client.get(f"/runs/{imported.id}").get_data(as_text=True)
    confirm(client, imported)
    work(app)
    assert [run.state for run in rollback_runs()] == [RunState.CANCELLED, RunState.COMPLETED]


def test_a_failed_rollback_continues_on_retry_doing_nothing_twice(
    app, client, auth, users, imported, monkeypatch
):
    from webapp.jobtypes import transaction_rollback

    app.config["DELETE_BATCH_SIZE"] = 1
    real, calls = transaction_rollback.restore, []

    def failing_once(supporter, change):
        calls.append(supporter.email)
        if len(calls) == 2:
            raise OSError("the disk went away")
        return real(supporter, change)

    monkeypatch.setattr(transaction_rollback, "restore", failing_once)
    auth.login(users["user"].email)
    confirm(client, imported)
    work(app)
    rollback = fresh(rollback_runs()[0])
    assert rollback.state is RunState.FAILED and rollback.created == 4
    retry_run(rollback, users["user"])
    work(app)
    rollback = fresh(rollback)
    assert rollback.state is RunState.COMPLETED
    assert (rollback.created, rollback.skipped, rollback.updated, rollback.unchanged) == (4, 1, 1, 3)
    assert len(result_rows(rollback)) == 1 + 9  # each record listed once


@pytest.mark.parametrize(("role", "status"), [("other", 404), ("admin", 404), ("super_admin", 200)])
def test_another_users_import_is_a_404_but_to_a_super_admin(app, client, auth, users, imported, role, status):
    auth.login(users[role].email)
    assert client.get(f"/rollbacks/imports/{imported.id}").status_code == status
    if status == 404:
        assert confirm(client, imported).status_code == 404 and rollback_runs() == []
    else:
        confirm(client, imported)
        (rollback,) = rollback_runs()
        assert rollback.owner_id == users["user"].id and rollback.started_by_id == users[role].id


def test_a_deleted_supporters_gifts_and_receipts_stay_without_the_person(app, users):
    run = an_import(users["user"])
    ann = supporter("ann@example.org")
    tx = gift(run, ann)
    issued = receipt(tx, 1)
    issued.donor_email, issued.donor_name = "ann@example.org", "Ann Smith"
    bea = supporter("bea@example.org", first_name="Bea")
    db.session.add_all(
        [
            SupporterChange(
                run_id=run.id, supporter_id=ann.id, before={"city": "Oslo"}, after={"city": "Rome"}
            ),
            SupporterChange(
                run_id=run.id, supporter_id=bea.id, before={"city": "Bern"}, after={"city": "Graz"}
            ),
        ]
    )
    db.session.commit()
    erase([(ann.id, ann.email)], email_key("test-secret"), run.id)
    db.session.commit()
    tx, issued = db.session.get(Transaction, tx.id), db.session.get(Receipt, issued.id)
    assert tx.supporter_id is None and tx.amount == Decimal("25.00")
    assert issued.supporter_id is None and issued.donor_email is None and issued.donor_name == "Ann Smith"
    # what an import changed on the person (their old and new city) is gone too; others' stays
    kept = db.session.execute(db.select(SupporterChange.supporter_id)).scalars().all()
    assert kept == [bea.id]


def test_a_real_import_is_rolled_back_to_what_was_there_before(app, client, auth, users, tmp_path):
    from tests.test_transaction_import import run_transactions

    ann = supporter("ann@example.org", first_name="Ann", city="Oslo")
    db.session.commit()
    text = (
        "email,amount,currency,date,first_name,city\n"
        "ann@example.org,25.00,USD,2026-03-01,Anne,Oslo\n"
        "new@example.org,10.00,USD,2026-03-02,Neil,Rome\n"
    )
    mapping = ["email", "amount", "currency", "date", "first_name", "city"]
    imported = run_transactions(app, users["user"], tmp_path, text, mapping)
    assert imported.state is RunState.COMPLETED and db.session.query(Transaction).count() == 2
    assert db.session.get(Supporter, ann.id).first_name == "Anne"
    auth.login(users["user"].email)
    confirm(client, imported)
    work(app)
    (rollback,) = rollback_runs()
    rollback = fresh(rollback)
    assert rollback.state is RunState.COMPLETED, rollback.error
    assert (rollback.created, rollback.skipped, rollback.updated) == (2, 1, 1)
    assert db.session.query(Transaction).count() == 0
    assert db.session.execute(db.select(Supporter.email)).scalars().all() == ["ann@example.org"]
    ann = db.session.get(Supporter, ann.id)
    assert (ann.first_name, ann.city) == ("Ann", "Oslo")


def test_a_rollback_stopped_part_way_is_finished_by_a_new_one(
    app, client, auth, users, imported, monkeypatch
):
    from tests.conftest import act_midway
    from webapp.engine.context import RunContext

    app.config["DELETE_BATCH_SIZE"] = 1
    commit_batch = RunContext.commit_batch

    def slowly(ctx, **counts):  # a batch at a time, slowly enough for Stop to land part-way
        commit_batch(ctx, **counts)
        time.sleep(0.25)

    monkeypatch.setattr(RunContext, "commit_batch", slowly)
    auth.login(users["user"].email)
    confirm(client, imported)
    stopped = act_midway(app, rollback_runs()[0], users["user"], request_stop, after=2)
    assert stopped.state is RunState.CANCELLED and 2 <= stopped.progress_done < 9
    assert db.session.execute(db.select(ImportRollback.rollback_run_id)).scalar_one() == stopped.id
    assert "ended cancelled before it finished" in client.get(f"/runs/{imported.id}").get_data(as_text=True)
    confirm(client, imported)
    work(app)
    finished = fresh(rollback_runs()[1])
    assert finished.state is RunState.COMPLETED, finished.error
    assert db.session.execute(db.select(ImportRollback.rollback_run_id)).scalar_one() == finished.id
    assert stopped.created + finished.created == 4
    assert db.session.execute(db.select(Transaction.external_id)).scalars().all() == ["LATER-1"]
    ann = db.session.execute(db.select(Supporter).filter_by(email="ann@example.org")).scalar_one()
    assert (ann.first_name, ann.city, ann.donation_total) == ("Ann", None, Decimal("10.00"))
    assert db.session.execute(db.select(Supporter).filter_by(email="bea@example.org")).scalar() is None


def test_the_preview_names_each_gifts_supporter_and_tells_a_user_who_voids_a_receipt(
    app, client, auth, users, imported
):
    auth.login(users["user"].email)
    page = client.get(f"/rollbacks/imports/{imported.id}").get_data(as_text=True)
    sample = page[page.index("Sample of the transactions to delete") :]
    bea = db.session.execute(db.select(Supporter).filter_by(email="bea@example.org")).scalar_one()
    assert f'<a href="/supporters/{bea.id}">bea@example.org</a>' in sample  # not a bare id
    assert "<td>First name</td>" in sample and "first_name" not in sample  # a field as staff name it
    tx = gift(an_import(users["user"]), bea, external_id="T-R")
    receipt(tx, 2051)
    db.session.commit()
    refused = client.get(f"/rollbacks/imports/{tx.run_id}").get_data(as_text=True)
    assert "only an admin can void a receipt: ask an admin" in refused  # a user cannot void
    assert "/receipts/?number=2051" not in refused
    auth.logout()
    auth.login(users["super_admin"].email)
    refused = client.get(f"/rollbacks/imports/{tx.run_id}").get_data(as_text=True)
    assert "/receipts/?number=2051" in refused and "ask an admin" not in refused
