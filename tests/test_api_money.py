"""Transaction reports and receipts by the API: making their jobs (receipt generators by admins
only, with the pages' checks), the receipts list, one receipt, its PDF and Void."""

from __future__ import annotations

import io
from decimal import Decimal

from pypdf import PdfReader

from tests.test_api_tokens import api, make_token
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.models import AuditEntry
from webapp.models.jobs import Job
from webapp.models.money import Receipt, ReceiptTemplate


def write(client, auth, email: str) -> str:
    return make_token(client, auth, email, name="Script", access="write")


def test_a_report_job_is_made_with_the_forms_checks(app, client, auth, users):
    secret = write(client, auth, users["user"].email)
    made = api(
        client,
        "/api/v1/jobs",
        secret,
        method="POST",
        json={
            "type": "transaction_report",
            "name": "Monthly gifts",
            "appeal": " SPRING ",
            "min_amount": "10",
        },
    )
    assert made.status_code == 201, made.json
    job = db.session.get(Job, made.json["id"])
    assert job.job_type == "transaction_report" and job.owner_id == users["user"].id
    assert job.params["range"] == "previous_month" and job.params["appeal"] == "SPRING"
    assert job.params["min_amount"] == "10.00"

    backwards = api(
        client,
        "/api/v1/jobs",
        secret,
        method="POST",
        json={
            "type": "transaction_report",
            "name": "Backwards",
            "range": "fixed",
            "start": "2026-03-31",
            "end": "2026-03-01",
        },
    )
    assert backwards.status_code == 422 and "end" in backwards.json["error"]["problems"]
    unknown = api(
        client, "/api/v1/jobs", secret, method="POST", json={"type": "transaction_report", "range": "forever"}
    )
    assert unknown.status_code == 422
    assert Job.query.filter_by(job_type="transaction_report").count() == 1  # nothing half-made


def test_receipt_generators_are_made_by_admins_only(app, client, auth, users):
    body = {"type": "annual_receipts", "name": "Annual 2025", "year_choice": "fixed", "year": 2025}
    user = write(client, auth, users["user"].email)
    refused = api(client, "/api/v1/jobs", user, method="POST", json=body)
    assert refused.status_code == 403 and "admin" in refused.json["error"]["message"]
    admin = write(client, auth, users["admin"].email)
    made = api(client, "/api/v1/jobs", admin, method="POST", json=body)
    assert made.status_code == 201, made.json
    assert db.session.get(Job, made.json["id"]).params == {
        "year_choice": "fixed",
        "year": 2025,
        "email": False,
    }
    no_year = api(client, "/api/v1/jobs", admin, method="POST", json={**body, "year": None})
    assert no_year.status_code == 422 and "year" in no_year.json["error"]["problems"]


def test_a_batch_of_another_users_import_is_a_404(app, client, auth, users):
    theirs = Job(owner_id=users["other"].id, job_type="transaction_import", name="Theirs", params={})
    db.session.add(theirs)
    db.session.commit()
    run = start_run(theirs, users["other"])
    admin = write(client, auth, users["admin"].email)
    body = {"type": "batch_receipts", "name": "Their gifts", "source": "run", "import_run": run.id}
    assert api(client, "/api/v1/jobs", admin, method="POST", json=body).status_code == 404
    period = {
        "type": "batch_receipts",
        "name": "Last month",
        "source": "relative",
        "period": "previous_month",
    }
    made = api(client, "/api/v1/jobs", admin, method="POST", json=period)
    assert (
        made.status_code == 201 and db.session.get(Job, made.json["id"]).params["period"] == "previous_month"
    )


def test_receipts_are_listed_read_printed_and_voided_by_admins(app, client, auth, users):
    template = ReceiptTemplate.get()
    template.organisation_name = "Friends of the Forest"
    first = Receipt(number=7, kind="single", donor_name="Zoë Müller", amount=Decimal("40.00"), currency="EUR")
    second = Receipt(
        number=8, kind="annual", tax_year=2025, donor_name="Bo", amount=Decimal("5"), currency="USD"
    )
    db.session.add_all([first, second])
    db.session.commit()
    user = write(client, auth, users["user"].email)
    assert api(client, "/api/v1/receipts", user).status_code == 403
    assert api(client, f"/api/v1/receipts/{first.id}", user).status_code == 403
    admin = write(client, auth, users["admin"].email)

    listed = api(client, "/api/v1/receipts?limit=1", admin).json
    assert [found["number"] for found in listed["receipts"]] == [8] and listed["next"]
    assert [found["number"] for found in api(client, listed["next"], admin).json["receipts"]] == [7]
    annual = api(client, "/api/v1/receipts?kind=annual&year=2025", admin).json["receipts"]
    assert [found["number"] for found in annual] == [8]
    # the donor filter means what the Receipts page's does: part of the name or email, any case
    donor = api(client, "/api/v1/receipts?donor=M%C3%BCLLER", admin).json["receipts"]
    assert [found["number"] for found in donor] == [7]
    assert api(client, "/api/v1/receipts?donor=%25", admin).json["receipts"] == []  # % is no wildcard
    assert api(client, "/api/v1/receipts?donor=" + "x" * 201, admin).status_code == 422

    pdf = api(client, f"/api/v1/receipts/{first.id}/pdf", admin)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Zoë Müller" in text and "Friends of the Forest" in text

    voided = api(
        client, f"/api/v1/receipts/{first.id}/void", admin, method="POST", json={"reason": "Wrong donor"}
    )
    assert voided.status_code == 200 and voided.json["status"] == "voided"
    assert voided.json["void_reason"] == "Wrong donor" and voided.json["voided_at"].endswith("+00:00")
    again = api(client, f"/api/v1/receipts/{first.id}/void", admin, method="POST", json={"reason": "Twice"})
    assert again.status_code == 409
    db.session.refresh(first)
    assert first.status == "voided" and first.void_reason == "Wrong donor"
    assert AuditEntry.query.filter_by(action="receipt.voided").count() == 1
    empty = api(client, f"/api/v1/receipts/{second.id}/void", admin, method="POST", json={"reason": ""})
    assert empty.status_code == 422
    assert api(client, "/api/v1/receipts/999999", admin).status_code == 404
