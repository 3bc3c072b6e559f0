"""The receipts pages: the template (admins only, a real image), the job forms, the list and a
receipt's page with its PDF and Void, and who may open what."""

from __future__ import annotations

import io
from datetime import date

import pytest
from PIL import Image

from tests.conftest import work
from tests.test_receipts import gift, pdf_text, set_template, supporter
from webapp.extensions import db
from webapp.models import Job, Run
from webapp.models.audit import AuditEntry
from webapp.models.money import Receipt, ReceiptTemplate


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60, 20), "white").save(out, "PNG")
    return out.getvalue()


def template_form(**changes):
    data = {
        "organisation_name": "Les Amis",
        "address": "1 Rue Haute\nLyon",
        "charity_number": "CH-9",
        "signatory": "Jean Dupont, Treasurer",
        "wording": "Official receipt for income tax purposes.",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "path",
    [
        "/receipts/template",
        "/receipts/batch/new",
        "/receipts/annual/new",
        "/receipts/inventory/new",
        "/receipts/1",
    ],
)
def test_a_user_cannot_open_the_admin_pages(client, auth, users, path):
    auth.login("user@example.org")
    assert client.get(path).status_code == 403
    page = client.get("/receipts/")
    assert page.status_code == 200 and b"admins issue, void and list them" in page.data


def test_an_admin_saves_the_template_with_a_real_signature_image(client, auth, users):
    auth.login("admin@example.org")
    page = client.get("/receipts/template")
    assert b"Official receipt for income tax purposes" in page.data  # the default wording offered
    fake = client.post(
        "/receipts/template",
        data={**template_form(), "signature": (io.BytesIO(b"\x89PNG not really"), "sig.png")},
        content_type="multipart/form-data",
    )
    assert fake.status_code == 400 and b"must be a PNG or JPEG image" in fake.data
    assert ReceiptTemplate.get().organisation_name == ""  # nothing saved
    saved = client.post(
        "/receipts/template",
        data={**template_form(), "signature": (io.BytesIO(png()), "sig.png")},
        content_type="multipart/form-data",
    )
    assert saved.status_code == 302
    db.session.expire_all()
    stored = ReceiptTemplate.get()
    assert stored.organisation_name == "Les Amis" and stored.signature_type == "image/png"
    assert client.get("/receipts/template/signature").data == stored.signature
    entry = db.session.execute(
        db.select(AuditEntry).filter_by(action="receipts.template_changed")
    ).scalar_one()
    assert "signature" in entry.detail
    missing = client.post("/receipts/template", data=template_form(organisation_name=""))
    assert missing.status_code == 400 and db.session.get(ReceiptTemplate, 1).organisation_name == "Les Amis"


def test_an_admin_makes_and_runs_a_batch_from_the_form_and_voids_a_receipt(app, client, auth, users):
    person = supporter("zoe@example.org", "Zoë", "Müller-Ñúñez")
    gift(person, "30.00", date(2026, 1, 20))
    auth.login("admin@example.org")
    assert b"The receipt template is not set yet" in client.get("/receipts/batch/new").data
    set_template()
    assert b"The receipt template is not set yet" not in client.get("/receipts/batch/new").data
    bad = client.post(
        "/receipts/batch/new",
        data={"name": "Jan", "source": "range", "start": "2026-02-01", "end": "2026-01-01"},
    )
    assert bad.status_code == 400 and b"The last day is before the first day." in bad.data
    answer = client.post(
        "/receipts/batch/new",
        data={
            "name": "Jan",
            "source": "range",
            "start": "2026-01-01",
            "end": "2026-01-31",
            "action": "save_run",
        },
    )
    assert answer.status_code == 302 and "/runs/" in answer.location
    work(app)
    job = db.session.execute(db.select(Job).filter_by(job_type="batch_receipts")).scalar_one()
    assert job.params == {"source": "range", "start": "2026-01-01", "end": "2026-01-31", "email": False}
    assert client.get(f"/receipts/batch/{job.id}/edit").status_code == 200
    receipt = db.session.execute(db.select(Receipt)).scalar_one()
    listing = client.get("/receipts/?donor=müller")
    assert b"Receipt 1" in listing.data
    assert b"Receipt 1" not in client.get("/receipts/?status=voided").data
    download = client.get(f"/receipts/{receipt.id}/pdf")
    assert download.mimetype == "application/pdf" and "Zoë Müller-Ñúñez" in pdf_text(download.data)
    no_reason = client.post(f"/receipts/{receipt.id}/void", data={"reason": "", "confirm": "y"})
    assert no_reason.status_code == 400 and b"Give the reason" in no_reason.data
    voided = client.post(f"/receipts/{receipt.id}/void", data={"reason": "Duplicate gift", "confirm": "y"})
    assert voided.status_code == 302
    db.session.expire_all()
    assert db.session.get(Receipt, receipt.id).status == "voided"
    assert db.session.execute(db.select(AuditEntry).filter_by(action="receipt.voided")).scalar_one()
    assert b"Voided" in client.get(f"/receipts/{receipt.id}").data


def test_a_user_cannot_open_an_admins_receipt_run_nor_an_admin_another_admins_import(client, auth, users):
    run = Run(owner_id=users["super_admin"].id, job_type="transaction_import", job_name="Import", number=1)
    receipts_run = Run(owner_id=users["admin"].id, job_type="batch_receipts", job_name="Receipts", number=1)
    db.session.add_all([run, receipts_run])
    db.session.commit()
    auth.login("user@example.org")
    assert client.get(f"/runs/{receipts_run.id}").status_code == 404
    auth.logout()
    auth.login("admin@example.org")
    guessed = client.post(
        "/receipts/batch/new", data={"name": "X", "source": "run", "import_run": str(run.id)}
    )
    assert guessed.status_code == 404
    assert db.session.execute(db.select(Job)).first() is None


def test_new_job_offers_the_receipt_generators_to_admins_only(client, auth, users):
    auth.login("user@example.org")
    assert b"New batch receipts" not in client.get("/jobs/new").data
    auth.logout()
    auth.login("admin@example.org")
    page = client.get("/jobs/new").data
    assert (
        b"New batch receipts" in page and b"New annual receipts" in page and b"New receipt inventory" in page
    )


def test_an_admin_cannot_open_another_admins_receipt_job(client, auth, users):
    job = Job(owner_id=users["super_admin"].id, job_type="batch_receipts", name="Secret", params={})
    db.session.add(job)
    db.session.commit()
    auth.login("admin@example.org")
    assert client.get(f"/receipts/batch/{job.id}/edit").status_code == 404
    assert client.post(f"/receipts/batch/{job.id}/edit", data={"name": "Mine now"}).status_code == 404


def test_a_void_sent_twice_voids_once_and_the_second_says_so(client, auth, users):
    person = supporter("twice@example.org")
    given = gift(person, "10.00", date(2026, 1, 5))
    row = Receipt(number=7, kind="single", amount=given.amount, currency="EUR")
    row.supporter_id = person.id
    db.session.add(row)
    db.session.commit()
    auth.login("admin@example.org")
    first = client.post(f"/receipts/{row.id}/void", data={"reason": "Duplicate gift", "confirm": "y"})
    assert first.status_code == 302
    # the same form sent again (a double click, a second tab): the page says it was voided already
    second = client.post(f"/receipts/{row.id}/void", data={"reason": "Again", "confirm": "y"})
    assert second.status_code == 302 and second.location.endswith(f"/receipts/{row.id}")
    assert "Receipt 7 is voided already: nothing changed." in client.get(second.location).text
    db.session.expire_all()
    assert db.session.get(Receipt, row.id).void_reason == "Duplicate gift"


@pytest.mark.parametrize("path", ["/receipts/batch/new", "/receipts/inventory/new"])
def test_the_period_select_is_named_apart_from_the_radio_beside_it(client, auth, users, path):
    """Two controls both called “Days before each run” could not be told apart by name."""
    auth.login("admin@example.org")
    page = client.get(path).text
    assert '<label for="period">Which days before each run</label>' in page


def test_a_nul_character_in_a_receipts_form_or_filter_is_a_400_and_nothing_changes(client, auth, users):
    """PostgreSQL refuses a NUL in any text (these were 500s there)."""
    set_template()
    person = supporter("nul@example.org")
    given = gift(person, "10.00", date(2026, 1, 5))
    row = Receipt(number=8, kind="single", amount=given.amount, currency="EUR")
    db.session.add(row)
    db.session.commit()
    auth.login("admin@example.org")
    voided = client.post(f"/receipts/{row.id}/void", data={"reason": "a\x00b", "confirm": "y"})
    assert voided.status_code == 400 and "NUL character" in voided.text
    assert client.post("/receipts/template", data=template_form(organisation_name="A\x00")).status_code == 400
    assert client.get("/receipts/", query_string={"donor": "a\x00"}).status_code == 400
    db.session.expire_all()
    assert db.session.get(Receipt, row.id).status == "issued"
    assert ReceiptTemplate.get().organisation_name == "Société des Amis"


def test_the_donor_filter_finds_a_percent_or_underscore_as_typed(client, auth, users):
    for number, email in ((21, "ann_lee@example.org"), (22, "annxlee@example.org")):
        db.session.add(Receipt(number=number, kind="single", amount=1, currency="EUR", donor_email=email))
    db.session.commit()
    auth.login("admin@example.org")
    page = client.get("/receipts/", query_string={"donor": "ann_lee"}).text
    assert "Receipt 21" in page and "Receipt 22" not in page  # _ is no wildcard
    assert "No receipts match these filters." in client.get("/receipts/?donor=%25").text


def test_the_template_form_names_a_bad_image_and_a_missing_name_at_once(client, auth, users):
    auth.login("admin@example.org")
    answer = client.post(
        "/receipts/template",
        data={**template_form(organisation_name=""), "signature": (io.BytesIO(b"not an image"), "sig.png")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400
    assert "This field is required." in answer.text and "must be a PNG or JPEG image" in answer.text


def test_a_tax_year_that_is_no_number_gets_one_message_not_two(client, auth, users):
    auth.login("admin@example.org")
    page = client.post("/receipts/annual/new", data={"name": "2025", "year_choice": "fixed", "year": "abc"})
    assert page.status_code == 400 and page.text.count('class="field-error"') == 1
    assert client.get("/receipts/", query_string={"year": "abc"}).text.count('class="field-error"') == 1


def test_text_the_receipt_font_cannot_print_is_refused_in_the_template_and_said_of_a_donor(
    app, client, auth, users
):
    auth.login("admin@example.org")
    refused = client.post("/receipts/template", data=template_form(organisation_name="Friends 友好协会 🙏"))
    assert refused.status_code == 400
    assert "The receipt font cannot print “友好协会🙏”: a receipt would leave them out." in refused.get_data(
        as_text=True
    )
    assert ReceiptTemplate.get().organisation_name == ""  # nothing saved
    set_template()
    gift(supporter("chen@example.org", "陈", "伟"), "30.00", date(2026, 1, 20))
    gift(supporter("zoe@example.org", "Zoë", "Müller"), "30.00", date(2026, 1, 21))
    client.post(
        "/receipts/batch/new",
        data={
            "name": "Jan",
            "source": "range",
            "start": "2026-01-01",
            "end": "2026-01-31",
            "action": "save_run",
        },
    )
    work(app)
    run = db.session.execute(db.select(Run).filter_by(job_type="batch_receipts")).scalar_one()
    log = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert (
        "Warning: 1 receipt with characters in the donor&#39;s name or address that the receipt font" in log
    )
    assert "receipt 1 (陈 伟)" in log
    chen, zoe = db.session.execute(db.select(Receipt).order_by(Receipt.number)).scalars()
    warning = "The receipt font cannot print “陈伟” of the donor's name or address"
    assert warning in client.get(f"/receipts/{chen.id}").get_data(as_text=True)
    assert "The receipt font cannot print" not in client.get(f"/receipts/{zoe.id}").get_data(as_text=True)
