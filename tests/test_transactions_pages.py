"""The Transactions pages: a transaction import's upload and mapping (with the mapping remembered
from the user's last import), the list's filters, totals and pages, a supporter's page."""

import io
import re
from datetime import date
from decimal import Decimal

from tests.conftest import work
from tests.test_api_tokens import api, make_token
from webapp.extensions import db
from webapp.models import Job, Run, Supporter
from webapp.models.money import Transaction
from webapp.money.rollback import import_refusal
from webapp.rules.states import RunState

GIFTS = "Betrag,E-mail,Date,Appeal\n12.50,ann@example.org,2026-01-05,SPRING\n3,bob@example.org,2026-01-06,\n"


def upload(client, text=GIFTS, name="January gifts", encoding="utf-8"):
    return client.post(
        "/transactions/new",
        data={"name": name, "encoding": encoding, "file": (io.BytesIO(text.encode()), "gifts.csv")},
        content_type="multipart/form-data",
    )


def mapping_url(response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    assert re.fullmatch(r"/transactions/new/[\w-]+", response.headers["Location"])
    return response.headers["Location"]


def selected(page: str, column: str) -> str:
    select = re.search(rf'<select[^>]*aria-label="Field for column “{column}”".*?</select>', page, re.S)
    assert select is not None
    chosen = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', select.group(0))
    return next(value for value in chosen.groups() if value is not None) if chosen else ""


def test_an_import_is_uploaded_mapped_saved_and_run_and_its_mapping_remembered(app, client, auth, users):
    db.session.add(Supporter(email="ann@example.org"))
    db.session.commit()
    auth.login(users["user"].email)
    url = mapping_url(upload(client))
    page = client.get(url).get_data(as_text=True)
    assert "12.50" in page and "SPRING" in page  # the preview
    assert "Unknown columns: Betrag." in page
    assert [selected(page, c) for c in ("Betrag", "E-mail", "Date", "Appeal")] == [
        "",
        "email",
        "date",
        "appeal",
    ]
    form = {
        "name": "January gifts",
        "source": "Stripe",
        "match_by": "email",
        "unknown": "create",
        "default_currency": "EUR",
        **{"col_0": "", "col_1": "email", "col_2": "date", "col_3": "appeal"},
    }
    refused = client.post(url, data=form)
    assert refused.status_code == 200
    assert "Map one column to Amount: every transaction needs one." in refused.get_data(as_text=True)
    saved = client.post(url, data={**form, "col_0": "amount", "action": "save_run"})
    assert saved.status_code == 302 and "/runs/" in saved.headers["Location"]
    again = client.post(url, data={**form, "col_0": "amount", "action": "save_run"})  # sent again
    assert again.status_code == 302 and again.headers["Location"] == saved.headers["Location"]
    job = Job.query.filter_by(job_type="transaction_import").one()  # one job, one run
    assert Run.query.filter_by(job_id=job.id).count() == 1
    back = client.get(url)  # Back to the mapping page
    assert back.status_code == 302 and back.headers["Location"] == f"/jobs/{job.id}"
    assert job.params["source"] == "Stripe" and job.params["default_currency"] == "EUR"
    described = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "Betrag → Amount" in described and "<dd>Create the supporter</dd>" in described
    work(app)
    run = Run.query.filter_by(job_id=job.id).one()
    assert run.state is RunState.COMPLETED and (run.created, run.skipped) == (2, 1)
    assert {(t.amount, t.currency) for t in Transaction.query} == {
        (Decimal("12.50"), "EUR"),
        (Decimal("3.00"), "EUR"),
    }

    again = client.get(mapping_url(upload(client, name="February gifts"))).get_data(as_text=True)
    assert selected(again, "Betrag") == "amount"  # as the user mapped it last time
    assert "New transaction import" in client.get("/jobs/new").get_data(as_text=True)


def gift(owner, amount, currency="USD", kind="one_off", day=date(2026, 1, 5), **extra):
    return Transaction(
        owner_id=owner.id,
        amount=Decimal(amount),
        currency=currency,
        kind=kind,
        received_on=day,
        source="Bank",
        **extra,
    )


def test_a_utf8_file_read_as_latin1_is_warned_about_before_it_is_mapped(app, client, auth, users):
    auth.login(users["user"].email)
    page = client.get(
        mapping_url(upload(client, GIFTS + "4,zoe@example.org,2026-01-07,Été\n", encoding="latin-1"))
    )
    html = page.get_data(as_text=True)
    assert "This file looks like UTF-8, but it was read as Latin-1" in html
    assert '<a href="/transactions/new">Upload it again</a>' in html


def test_the_list_filters_totals_by_currency_and_pages(app, client, auth, users):
    ann = Supporter(email="ann@example.org")
    db.session.add(ann)
    db.session.flush()
    user = users["user"]
    db.session.add_all(
        [
            gift(user, "10", supporter_id=ann.id, appeal="SPRING"),
            gift(user, "20", "EUR", appeal="SPRING", day=date(2026, 2, 1)),
            gift(user, "-5", kind="refund", supporter_id=ann.id),
            gift(users["other"], "1000"),
        ]
    )
    db.session.commit()
    auth.login(user.email)
    page = client.get("/transactions/").get_data(as_text=True)
    assert re.search(r"<td>USD</td><td class=\"num\">2</td><td class=\"num\">5.00</td>", page)
    assert "1,000.00" not in page and f'href="/supporters/{ann.id}"' in page
    spring = client.get("/transactions/?appeal=SPRING&date_to=2026-01-31").get_data(as_text=True)
    assert "10.00 USD" in spring and "20.00 EUR" not in spring and "-5.00" not in spring
    refunds = client.get("/transactions/?type=refund&email=ANN").get_data(as_text=True)
    assert "-5.00 USD" in refunds and "10.00 USD" not in refunds
    assert client.get("/transactions/?date_from=31/01/2026").status_code == 400
    app.config["PAGE_SIZE"] = 2
    first = client.get("/transactions/").get_data(as_text=True)
    older = re.search(r'href="(/transactions/\?before=\d+)"', first)
    assert older and "10.00 USD" in client.get(older.group(1)).get_data(as_text=True)
    detail = client.get(f"/supporters/{ann.id}").get_data(as_text=True)
    assert "ann@example.org" in detail and "-5.00 USD" in detail and "20.00 EUR" not in detail


def test_the_api_imports_a_csv_body_as_a_run_that_cannot_be_rolled_back_and_lists_only_own(
    app, client, auth, users
):
    writer = make_token(client, auth, users["user"].email, access="write")
    reader = make_token(client, auth, users["other"].email)
    body = "Gift,Email,Date\n12.50,ann@example.org,2026-01-05\n"
    path = "/api/v1/transaction-imports?source=Bank&map=Gift:amount&map=Email:email&map=Date:date"
    answer = api(client, path, writer, "POST", data=body, content_type="text/csv")
    assert answer.status_code == 202, answer.json
    work(app)
    run = db.session.get(Run, answer.json["id"])
    assert run.trigger == "api" and run.state is RunState.COMPLETED and run.created == 1
    assert "API" in import_refusal(run)  # only dashboard imports can be rolled back
    unknown_column = body.replace("Gift", "Betrag")  # "Gift" is remembered from the first import
    refused = api(
        client,
        "/api/v1/transaction-imports?source=Bank",
        writer,
        "POST",
        data=unknown_column,
        content_type="text/csv",
    )
    assert refused.status_code == 422, refused.json
    assert "Map one column to Amount" in refused.json["error"]["message"]
    own = api(client, "/api/v1/transactions?email=ANN&date_from=2026-01-01", writer).json
    assert [(t["amount"], t["supporter_email"], t["run_id"]) for t in own["transactions"]] == [
        ("12.50", "ann@example.org", run.id)
    ]
    assert api(client, "/api/v1/transactions", reader).json["transactions"] == []


def test_malformed_filters_and_ids_are_a_4xx_never_a_500(client, auth, users):
    auth.login(users["user"].email)
    for name in ("date_from", "date_to", "type", "run", "before", "after"):
        for value in ("abc", "²", "-1", "99999999999999999999", "2026-02-30"):
            answer = client.get("/transactions/", query_string={name: value})
            assert answer.status_code == 400, (name, value)
    assert client.get("/transactions/?appeal=%25&email=_&method=" + "x" * 500).status_code == 200
    for value in ("99999999999999999999", "²", "0"):
        assert client.get(f"/supporters/{value}").status_code == 404
    assert client.get("/transactions/new/not-a-token").status_code == 404


def test_a_text_filter_with_a_nul_character_is_a_400_not_a_database_error(client, auth, users):
    """PostgreSQL refuses a NUL in any text it is sent (it was a 500 there)."""
    auth.login(users["user"].email)
    for name in ("appeal", "method", "email"):
        answer = client.get("/transactions/", query_string={name: "a\x00b"})
        assert answer.status_code == 400 and "NUL character" in answer.text, name


def test_a_form_field_with_a_nul_character_is_a_400_on_the_report_and_rollback_pages(client, auth, users):
    """The reports and rollbacks screens refuse a NUL as the Transactions page does (a 500 on
    PostgreSQL before)."""
    auth.login(users["user"].email)
    answer = client.post("/reports/new", data={"name": "a\x00b", "range": "previous_month"})
    assert answer.status_code == 400 and "NUL character" in answer.text
    assert db.session.execute(db.select(Job)).first() is None
    assert client.post("/rollbacks/imports/1", data={"x": "\x00"}).status_code == 400


def test_an_upload_over_the_limit_is_told_on_the_form_despite_the_nul_check(app, client, auth, users):
    """The NUL check reads the form before the view: a body over the limit still gets the
    form's sentence (413), not a bare error."""
    app.config["MAX_CONTENT_LENGTH"] = 2048
    auth.login(users["user"].email)
    answer = upload(client, "email,amount\n" + "".join(f"p{i}@example.org,5\n" for i in range(300)))
    assert answer.status_code == 413 and "larger than the upload limit of 2 KB" in answer.text


def test_a_backwards_date_range_says_so_and_an_old_gift_can_be_found(app, client, auth, users):
    user = users["user"]
    db.session.add(gift(user, "10", day=date(1950, 6, 1)))  # imports take gifts from 1900
    db.session.commit()
    auth.login(user.email)
    backwards = client.get("/transactions/?date_from=2026-03-01&date_to=2026-01-01").get_data(as_text=True)
    assert "The From day is after the To day: no transaction can match." in backwards
    found = client.get("/transactions/?date_from=1950-01-01&date_to=1950-12-31")
    assert found.status_code == 200 and "1950" in found.get_data(as_text=True)
