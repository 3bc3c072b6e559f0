"""Receipts: numbering (parallel runs, a killed and retried run), the PDF read back as text,
which gifts a batch receipts, its ZIP and index, emailing exactly once, annual replacements,
the inventory log and voiding."""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from datetime import date, datetime
from decimal import Decimal

import pytest
from pypdf import PdfReader

from tests.conftest import fresh, no_database, work
from webapp.engine.runner import execute_run
from webapp.engine.runs import retry_run, start_run
from webapp.extensions import db
from webapp.models import Job, Run, Supporter
from webapp.models.money import Receipt, ReceiptItem, ReceiptTemplate, Transaction
from webapp.models.runs import RunLogLine
from webapp.money import issuing, numbering
from webapp.money.pdf import Letterhead, render_receipt, sample_receipt
from webapp.money.periods import relative_days
from webapp.rules.states import RunState
from webapp.storage import current_storage


def supporter(email: str, first: str = "Ann", last: str = "Lee") -> Supporter:
    person = Supporter(email=email, first_name=first, last_name=last, address1="1 Main St", city="Town")
    db.session.add(person)
    db.session.commit()
    return person


def gift(person: Supporter | None, amount: str, on: date, *, kind="one_off", deductible=None, run_id=None):
    row = Transaction(
        supporter_id=person.id if person else None,
        amount=Decimal(amount),
        currency="EUR",
        received_on=on,
        kind=kind,
        source="test",
        tax_deductible=Decimal(deductible) if deductible is not None else None,
        run_id=run_id,
    )
    db.session.add(row)
    db.session.commit()
    return row


def receipt_job(owner, job_type="batch_receipts", **params) -> Job:
    job = Job(owner_id=owner.id, job_type=job_type, name="Receipts", params=params)
    db.session.add(job)
    db.session.commit()
    return job


def batch(owner, start="2026-01-01", end="2026-01-31", **params) -> Job:
    return receipt_job(owner, source="range", start=start, end=end, **params)


def run_job(app, job: Job) -> Run:
    run = start_run(job, job.owner)
    work(app)
    return fresh(run)


def numbers() -> list[int]:
    return list(db.session.execute(db.select(Receipt.number).order_by(Receipt.number)).scalars())


def receipted() -> list[int]:
    """Transaction ids on receipts, one entry per receipt item."""
    return sorted(db.session.execute(db.select(ReceiptItem.transaction_id)).scalars())


def zip_of(run: Run) -> zipfile.ZipFile:
    return zipfile.ZipFile(current_storage().path(run.result_path))


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def set_template(name: str = "Société des Amis") -> None:
    template = ReceiptTemplate.get()
    template.organisation_name = name
    db.session.commit()


@pytest.fixture
def gifts(app, users):
    """Five January gifts of three supporters, a refund, a gift with nothing deductible, a
    February gift and a gift of a deleted supporter."""
    set_template()
    ann, bob, zoe = (
        supporter("ann@example.org"),
        supporter("bob@example.org", "Bob"),
        supporter("zoe@example.org", "Zoë", "Müller-Ñúñez"),
    )
    rows = [
        gift(ann, "50.00", date(2026, 1, 3)),
        gift(ann, "20.00", date(2026, 1, 9), deductible="15.00"),
        gift(bob, "100.00", date(2026, 1, 5), kind="recurring"),
        gift(zoe, "30.00", date(2026, 1, 20)),
        gift(zoe, "40.00", date(2026, 1, 21)),
        gift(ann, "-50.00", date(2026, 1, 10), kind="refund"),
        gift(bob, "10.00", date(2026, 1, 11), deductible="0"),
        gift(bob, "70.00", date(2026, 2, 2)),
        gift(None, "25.00", date(2026, 1, 12)),
    ]
    return rows


# ------------------------------------------------------------------------------------ the PDF


def test_the_pdf_is_text_with_accented_names_and_what_it_replaces():
    head = Letterhead("Société des Amis", "1 Rue Haute\nLyon", "CH-123", signatory="Jean Dupont")
    text = pdf_text(render_receipt(sample_receipt(replaces_number=41), head))
    for expected in (
        "Société des Amis",
        "CH-123",
        "Receipt number: 1042",
        "Zoë Müller-Ñúñez",
        "Replaces receipt 41",
        "150.00 EUR",
        "2025-12-03",
        "Jean Dupont",
    ):
        assert expected in text
    # a name outside the trimmed fonts is rendered with the full ones
    assert "Ⴀლა" in pdf_text(render_receipt(sample_receipt(donor_name="Ⴀლა"), head))


@no_database
@pytest.mark.parametrize(
    "period,first,last",
    [
        ("yesterday", date(2026, 3, 1), date(2026, 3, 1)),
        ("previous_week", date(2026, 2, 23), date(2026, 3, 1)),
        ("previous_month", date(2026, 2, 1), date(2026, 2, 28)),
        ("previous_quarter", date(2025, 10, 1), date(2025, 12, 31)),
        ("previous_year", date(2025, 1, 1), date(2025, 12, 31)),
    ],
)
def test_a_relative_period_is_whole_days_before_the_runs_day_in_the_account_zone(period, first, last):
    moment = datetime(2026, 3, 3, 3, 0)  # UTC: still Monday March 2 in New York
    assert relative_days(period, moment, "America/New_York") == (first, last)


# ------------------------------------------------------------------------ batch eligibility


def test_a_batch_receipts_each_eligible_gift_of_the_range_once_with_a_zip_and_index(app, users, gifts):
    run = run_job(app, batch(users["admin"]))
    assert run.state is RunState.COMPLETED, run.error
    # refund, nothing deductible, February and the deleted supporter's gift are left out
    assert receipted() == [gifts[i].id for i in range(5)]
    assert numbers() == [1, 2, 3, 4, 5] and run.created == 5
    amounts = dict(db.session.execute(db.select(ReceiptItem.transaction_id, ReceiptItem.amount)).all())
    assert amounts[gifts[1].id] == Decimal("15.00")  # the tax-deductible part, not the amount
    # each receipt names its gift's supporter (not the gift's own id, as it once did)
    linked = db.session.execute(
        db.select(Receipt.supporter_id, Transaction.supporter_id)
        .join(ReceiptItem, ReceiptItem.receipt_id == Receipt.id)
        .join(Transaction, Transaction.id == ReceiptItem.transaction_id)
    ).all()
    assert len(linked) == 5 and all(receipt == gift for receipt, gift in linked)
    archive = zip_of(run)
    assert sorted(archive.namelist()) == ["index.csv"] + [f"receipt-{n}.pdf" for n in range(1, 6)]
    index = list(csv.reader(io.StringIO(archive.read("index.csv").decode("utf-8-sig"))))
    assert index[0][0] == "Number" and len(index) == 6
    assert [
        "4",
        "zoe@example.org",
        "Zoë Müller-Ñúñez",
        "30.00",
        "EUR",
        "2026-01-20",
        "receipt-4.pdf",
    ] in index
    assert "Zoë Müller-Ñúñez" in pdf_text(archive.read("receipt-4.pdf"))
    again = run_job(app, batch(users["admin"]))  # already receipted: nothing new
    assert again.created == 0 and numbers() == [1, 2, 3, 4, 5]


def test_no_receipt_is_issued_before_the_template_is_set(app, users):
    gift(supporter("ann@example.org"), "10.00", date(2026, 1, 5))
    run = run_job(app, batch(users["admin"]))
    assert run.state is RunState.FAILED and "Receipts settings" in run.error and numbers() == []


def test_a_batch_of_one_import_run_takes_only_that_runs_gifts(app, users):
    set_template()
    person = supporter("ann@example.org")
    mine = gift(person, "10.00", date(2025, 5, 1), run_id=77)
    gift(person, "10.00", date(2025, 5, 1), run_id=78)
    import_run = Run(
        id=77, owner_id=users["admin"].id, job_type="transaction_import", job_name="Import", number=1
    )
    db.session.add(import_run)
    db.session.commit()
    run = run_job(app, receipt_job(users["admin"], source="run", import_run_id=77))
    assert run.state is RunState.COMPLETED, run.error
    assert receipted() == [mine.id]


def test_a_voided_receipt_gives_its_gift_back_and_its_number_is_not_used_again(app, users, gifts):
    run_job(app, batch(users["admin"], end="2026-01-03"))
    first = db.session.execute(db.select(Receipt)).scalar_one()
    with pytest.raises(issuing.VoidError):
        issuing.void(first, "  ")
    issuing.void(first, "Wrong donor")
    db.session.commit()
    assert first.status == "voided" and first.voided_at and first.void_reason == "Wrong donor"
    with pytest.raises(issuing.VoidError):
        issuing.void(first, "again")
    run_job(app, batch(users["admin"], end="2026-01-03"))
    assert numbers() == [1, 2] and receipted() == [gifts[0].id, gifts[0].id]


# ------------------------------------------------------------------------------ numbering


def test_two_runs_in_parallel_share_the_gifts_with_unique_gap_free_numbers(app, users):
    set_template()
    people = [supporter(f"p{i}@example.org") for i in range(4)]
    for i in range(24):
        gift(people[i % 4], "5.00", date(2026, 1, 1 + i))
    runs = [start_run(batch(users["admin"]), users["admin"]) for _ in range(2)]
    for run in runs:
        db.session.execute(db.update(Run).where(Run.id == run.id).values(state=RunState.QUEUED))
    db.session.commit()
    errors = []

    def execute(run_id: int) -> None:
        with app.app_context():
            try:
                execute_run(run_id)
            except Exception as exc:  # pragma: no cover - shown by the assert
                errors.append(exc)

    threads = [threading.Thread(target=execute, args=(run.id,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    runs = [fresh(run) for run in runs]
    assert all(run.state is RunState.COMPLETED for run in runs), [run.error for run in runs]
    assert numbers() == list(range(1, 25))
    assert len(set(receipted())) == 24 == len(receipted())
    assert sum(run.created for run in runs) == 24


def test_a_run_killed_midway_and_retried_leaves_no_gap_and_no_gift_twice(app, users, gifts, monkeypatch):
    app.config["EXPORT_BATCH_SIZE"] = 2
    taken = numbering.take
    calls = []

    def dies_on_the_second_batch(first: int, count: int) -> None:
        calls.append(first)
        taken(first, count)
        if len(calls) == 2:
            raise RuntimeError("worker killed")

    monkeypatch.setattr(numbering, "take", dies_on_the_second_batch)
    run = run_job(app, batch(users["admin"]))
    assert run.state is RunState.FAILED and numbers() == [1, 2]  # the second batch was rolled back
    monkeypatch.setattr(numbering, "take", taken)
    retry_run(run, users["admin"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED, run.error
    assert numbers() == [1, 2, 3, 4, 5] and receipted() == [gifts[i].id for i in range(5)]
    assert run.created == 5
    assert len([n for n in zip_of(run).namelist() if n.endswith(".pdf")]) == 5  # the first attempt's too


# ------------------------------------------------------------------------------------ email


def test_each_receipt_is_emailed_once_even_when_the_run_is_retried(app, users, gifts, monkeypatch):
    from webapp.money import delivery

    sent = []
    original = delivery.Emailer.send

    def send_then_die(self, receipt_id, message):
        result = original(self, receipt_id, message)
        sent.append(message.as_email())
        if len(sent) == 3:
            raise RuntimeError("worker killed")
        return result

    monkeypatch.setattr(delivery.Emailer, "send", send_then_die)
    run = run_job(app, batch(users["admin"], email=True))
    assert run.state is RunState.FAILED
    retry_run(run, users["admin"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED, run.error
    assert len(sent) == 5  # three before the failure, two after: none twice
    assert sorted(m["To"] for m in sent) == sorted(
        ["ann@example.org", "ann@example.org", "bob@example.org", "zoe@example.org", "zoe@example.org"]
    )
    attachment = next(sent[0].iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert "Receipt number: 1" in pdf_text(attachment.get_content())
    assert db.session.execute(db.select(db.func.count()).where(Receipt.emailed_at.is_(None))).scalar() == 0


# ----------------------------------------------------------------------------------- annual


def test_annual_rerun_replaces_only_supporters_whose_gifts_changed(app, users, gifts):
    first = run_job(app, receipt_job(users["admin"], "annual_receipts", year_choice="fixed", year=2026))
    assert first.state is RunState.COMPLETED, first.error
    receipts = {r.donor_email: r for r in db.session.execute(db.select(Receipt)).scalars()}
    assert receipts["ann@example.org"].amount == Decimal("15.00")  # 50 + 15 deductible - 50 refunded
    assert receipts["bob@example.org"].amount == Decimal("170.00")  # 100 + 70 (0 deductible left out)
    ann, zoe = (
        db.session.get(Supporter, gifts[0].supporter_id),
        db.session.get(Supporter, gifts[3].supporter_id),
    )
    gift(zoe, "5.00", date(2026, 12, 30))
    second = run_job(app, receipt_job(users["admin"], "annual_receipts", year_choice="fixed", year=2026))
    assert second.created == 1 and second.unchanged == 2
    new = db.session.execute(db.select(Receipt).where(Receipt.run_id == second.id)).scalar_one()
    old = db.session.get(Receipt, receipts["zoe@example.org"].id)
    assert new.replaces_id == old.id and new.amount == Decimal("75.00")
    assert (
        old.status == "replaced" and old.voided_at and old.void_reason == f"Replaced by receipt {new.number}"
    )
    assert "Replaces receipt" in pdf_text(zip_of(second).read(f"receipt-{new.number}.pdf"))
    assert db.session.get(Receipt, receipts["ann@example.org"].id).status == "issued"
    assert ann is not None


def test_an_annual_receipt_nets_the_years_refunds_and_one_refunded_in_full_is_voided(app, users, gifts):
    first = run_job(app, receipt_job(users["admin"], "annual_receipts", year_choice="fixed", year=2026))
    ann_receipt = db.session.execute(db.select(Receipt).filter_by(donor_email="ann@example.org")).scalar_one()
    text = pdf_text(zip_of(first).read(f"receipt-{ann_receipt.number}.pdf"))
    assert "-50,00" in text or "-50.00" in text  # the refund is listed on the receipt
    ann = db.session.get(Supporter, gifts[0].supporter_id)
    gift(ann, "-15.00", date(2026, 6, 1), kind="refund")  # now all she gave is given back
    gift(ann, "-9.00", date(2025, 6, 1), kind="refund")  # another year's: no matter
    second = run_job(app, receipt_job(users["admin"], "annual_receipts", year_choice="fixed", year=2026))
    assert second.state is RunState.COMPLETED and second.created == 0
    voided = db.session.get(Receipt, ann_receipt.id)
    assert voided.status == "voided" and voided.void_reason == "Refunded: nothing is left to receipt"
    logged = RunLogLine.query.filter_by(run_id=second.id)
    assert any(
        "1 receipt voided: their donors' gifts of 2026 were refunded" in line.message for line in logged
    )
    supporters_receipted = {r.donor_email for r in db.session.execute(db.select(Receipt)).scalars()}
    assert supporters_receipted == {"ann@example.org", "bob@example.org", "zoe@example.org"}


# --------------------------------------------------------------------------------- inventory


def test_the_inventory_lists_issued_voided_and_replaced_receipts(app, users, gifts):
    run_job(app, receipt_job(users["admin"], "annual_receipts", year_choice="fixed", year=2026))
    gift(db.session.get(Supporter, gifts[3].supporter_id), "5.00", date(2026, 3, 1))
    run_job(app, receipt_job(users["admin"], "annual_receipts", year_choice="fixed", year=2026))
    bob = db.session.execute(db.select(Receipt).where(Receipt.donor_email == "bob@example.org")).scalar_one()
    issuing.void(bob, "=HYPERLINK(1)")
    db.session.commit()
    today = date.today().isoformat()
    run = run_job(
        app, receipt_job(users["admin"], "receipt_inventory", source="range", start="2026-01-01", end=today)
    )
    assert run.state is RunState.COMPLETED, run.error
    with open(current_storage().path(run.result_path), encoding="utf-8-sig", newline="") as result:
        rows = list(csv.DictReader(result))
    assert [(r["Number"], r["Status"], r["Replaces receipt"], r["Replaced by receipt"]) for r in rows] == [
        ("1", "Issued", "", ""),
        ("2", "Voided", "", ""),
        ("3", "Replaced", "", "4"),
        ("4", "Issued", "3", ""),
    ]
    assert rows[1]["Void reason"] == "'=HYPERLINK(1)"
    assert rows[0]["Issued at"][-6] in "+-" and rows[0]["Tax year"] == "2026"
    # the run an auditor can find: its job's name and number, not a bare "#1"
    first_run = db.session.get(Run, int(rows[0]["Issuing run id"]))
    assert rows[0]["Issuing run"] == f"“{first_run.job_name}” run #{first_run.number}"


def test_a_stopped_run_keeps_the_receipts_of_its_committed_batches(app, users, gifts, monkeypatch):
    app.config["EXPORT_BATCH_SIZE"] = 2
    taken = numbering.take

    def asked_to_stop(first: int, count: int) -> None:  # as the Stop button does, between batches
        taken(first, count)
        db.session.execute(db.update(Run).values(control="stop"))

    monkeypatch.setattr(numbering, "take", asked_to_stop)
    run = run_job(app, batch(users["admin"]))
    assert run.state is RunState.CANCELLED and run.created == 2
    assert numbers() == [1, 2] and receipted() == [gifts[0].id, gifts[2].id]


def test_a_receipt_run_says_what_it_issued_and_emailed_when_stopped_or_its_worker_dies(app, users):
    from webapp.engine.reconciler import worker_died_reason
    from webapp.jobtypes import job_type_for

    run = Run(
        owner_id=users["admin"].id,
        job_type="batch_receipts",
        job_name="Batch R",
        number=1,
        created=3000,
        updated=420,
        progress_done=0,
        progress_total=3000,
        started_at=datetime(2026, 12, 1, 0, 50),
    )
    # its receipts are all numbered before their PDFs are written: "0 of 3,000 rows were
    # receipted" made an admin believe none was issued or sent
    reason = worker_died_reason(run, "America/New_York")
    assert "3,000 receipts were issued (numbered), 420 of them emailed. Retry continues" in reason
    for key in ("batch_receipts", "annual_receipts"):
        question = job_type_for(key).stop_question(run)
        assert question == (
            "Stop “Batch R” at the next batch? 3,000 receipts were issued (numbered), 420 of them "
            "emailed, and they stay so."
        )


def test_a_receipt_subject_of_accented_words_arrives_with_its_spaces():
    # Python folded a long header at 78 characters between two encoded words, and a reader
    # joins those without the space between them ("Friends of the ÜnïcodeFjörd")
    from email.message import EmailMessage

    from webapp.mailing.transport import Outgoing

    message = EmailMessage()
    message["From"], message["To"] = "receipts@park.example", "ann@example.org"
    subject = "Your tax receipt 10 from Friends of the Ünïcode Fjörd — a long organisation name here"
    message["Subject"] = subject
    message.set_content("Thank you.")
    assert Outgoing.from_email(message).as_email()["Subject"] == subject
