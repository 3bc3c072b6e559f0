"""Supporter Delete: the typed confirmation, the batches with Stop, what is left of a deleted
supporter (a keyed hash), and imports that reject a deleted address unless told to re-add it."""

import csv
import hashlib
import hmac
import io
import os
import re

import pytest

from tests.conftest import act_midway, fresh, import_job, work
from webapp.engine.runs import request_stop, start_run
from webapp.extensions import db
from webapp.jobtypes.supporter_delete import SupporterDelete
from webapp.models import AuditEntry, Job, Recipient, Run, RunRejection, SavedFilter, Supporter, Suppression
from webapp.models.campaigns import Bounce, BounceKind, RecipientStatus
from webapp.models.people import ErasedEmail, email_hash, email_key
from webapp.rules.states import RunState
from webapp.storage import current_storage


def imported(app, user, tmp_path, emails, name="people.csv"):
    """Supporters imported by `user` (their last import is the user's run)."""
    path = tmp_path / name
    path.write_text("email,first_name\n" + "".join(f"{e},{e.split('@')[0].title()}\n" for e in emails))
    run = start_run(import_job(user, path, ["email", "first_name"]), user)
    work(app)
    return fresh(run)


def upload(client, text, name="Requests of November", **extra):
    return client.post(
        "/supporter-deletes/new",
        data={
            "name": name,
            "source": "csv",
            "encoding": "utf-8",
            "file": (io.BytesIO(text.encode()), "e.csv"),
        }
        | extra,
        content_type="multipart/form-data",
    )


def confirm(client, job_id, typed):
    return client.post(f"/supporter-deletes/{job_id}/confirm", data={"typed": typed})


def job_id_of(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(re.search(r"/supporter-deletes/(\d+)$", response.headers["Location"]).group(1))


def result_rows(run):
    with open(current_storage().path(run.result_path), newline="", encoding="utf-8") as result:
        return list(csv.reader(result))


def emails_stored():
    return set(db.session.execute(db.select(Supporter.email)).scalars())


def test_an_admin_deletes_with_the_typed_count_and_only_a_keyed_hash_is_left(
    app, client, auth, users, tmp_path
):
    imported(app, users["user"], tmp_path, ["ann@example.org", "bob@example.org", "cy@example.org"])
    ann = Supporter.query.filter_by(email="ann@example.org").one()
    sent = Run(
        owner_id=users["user"].id, job_type="email_campaign", job_name="Appeal", state=RunState.COMPLETED
    )
    sending = Run(
        owner_id=users["user"].id, job_type="email_campaign", job_name="Appeal", state=RunState.PAUSED
    )
    db.session.add_all([sent, sending])
    db.session.flush()
    db.session.add_all(
        [
            Recipient(
                run_id=sent.id,
                supporter_id=ann.id,
                email=ann.email,
                data={"first_name": "Ann"},
                status=RecipientStatus.SENT,
            ),
            Recipient(run_id=sending.id, supporter_id=ann.id, email=ann.email, data={"first_name": "Ann"}),
            Suppression(email="ann@example.org", reason="unsubscribe"),
        ]
    )
    db.session.flush()
    db.session.add(
        Bounce(
            recipient_id=Recipient.query.filter_by(run_id=sent.id).one().id,
            run_id=sent.id,
            kind=BounceKind.SOFT,
            reason="452 4.2.2 <ann@example.org>: mailbox full",
        )
    )
    db.session.commit()
    auth.login(users["admin"].email)
    job_id = job_id_of(
        upload(
            client, "Email,Note\nANN@example.org ,x\nbob@example.org,\nnobody@example.org,\nnot-an-email,\n"
        )
    )
    page = client.get(f"/supporter-deletes/{job_id}").get_data(as_text=True)
    assert "2 supporters" in page and "ann@example.org" in page and "Bob" in page
    assert "1 of them without a valid email address" in page

    wrong = confirm(client, job_id, "3")
    assert wrong.status_code == 400 and "type 2 to confirm" in wrong.get_data(as_text=True)
    assert confirm(client, job_id, "two").status_code == 400
    assert db.session.execute(db.select(Run).where(Run.job_type == SupporterDelete.key)).first() is None

    started = confirm(client, job_id, "2")
    assert started.status_code == 302 and "/runs/" in started.headers["Location"]
    work(app)
    run = fresh(db.session.execute(db.select(Run).where(Run.job_type == SupporterDelete.key)).scalar_one())
    assert run.state is RunState.COMPLETED
    assert (run.checked, run.updated, run.unchanged, run.rejected) == (4, 2, 1, 1)
    assert emails_stored() == {"cy@example.org"}
    assert result_rows(run) == [
        ["email", "result"],
        ["ann@example.org", "deleted"],
        ["bob@example.org", "deleted"],
        ["nobody@example.org", "not found"],
    ]
    assert [r.reason for r in RunRejection.query.filter_by(run_id=run.id)] == [
        "line 5: 'not-an-email' is not an email address"
    ]
    assert "Rejected rows were not deleted; the other rows were." in client.get(f"/runs/{run.id}").get_data(
        as_text=True
    )
    # the send's row stays for the campaign's counts, with nothing of Ann in it
    recipients = Recipient.query.order_by(Recipient.id).all()
    assert [(r.email, r.data, r.supporter_id < 0, r.status) for r in recipients] == [
        ("", {}, True, RecipientStatus.SENT),
        ("", {}, True, RecipientStatus.FAILED),  # a send still under way never reaches her
    ]
    assert Suppression.query.count() == 0
    assert [(b.kind, b.reason) for b in Bounce.query] == [(BounceKind.SOFT, "")]
    key = email_key(app.config["SECRET_KEY"])
    kept = {row.email_hash for row in ErasedEmail.query}
    assert kept == {email_hash(key, "ann@example.org"), email_hash(key, "bob@example.org")}
    assert all("example.org" not in h for h in kept)
    # HMAC-SHA256 of the lower-cased email, under a key derived from the SECRET_KEY
    assert (
        email_hash(key, " ANN@example.org") == hmac.new(key, b"ann@example.org", hashlib.sha256).hexdigest()
    )
    assert key == hmac.digest(b"test-secret", b"conveyor supporter delete: email key", "sha256")
    # the uploaded list of emails is gone; the job is not on the Jobs page, nor run again
    stored = current_storage().path(db.session.get(Job, job_id).params["path"])
    assert stored is not None and not os.path.exists(stored)
    assert "Requests of November" not in client.get("/jobs/").get_data(as_text=True)
    assert client.post(f"/jobs/{job_id}/run").status_code == 400
    assert AuditEntry.query.filter_by(action="supporter_delete.confirmed").count() == 1


def test_confirming_twice_starts_one_run(app, client, auth, users, tmp_path):
    imported(app, users["user"], tmp_path, ["ann@example.org"])
    auth.login(users["user"].email)
    job_id = job_id_of(upload(client, "email\nann@example.org\n"))
    first = confirm(client, job_id, "1")
    second = confirm(client, job_id, "1")
    assert "/runs/" in first.headers["Location"]
    assert second.status_code == 302 and second.headers["Location"].endswith(f"/supporter-deletes/{job_id}")
    assert Run.query.filter_by(job_id=job_id).count() == 1


def test_a_user_deletes_only_the_supporters_they_imported(app, client, auth, users, tmp_path):
    imported(app, users["user"], tmp_path, ["mine@example.org"], name="mine.csv")
    imported(app, users["other"], tmp_path, ["theirs@example.org"], name="theirs.csv")
    auth.login(users["user"].email)
    job_id = job_id_of(upload(client, "email\nmine@example.org\ntheirs@example.org\n"))
    page = client.get(f"/supporter-deletes/{job_id}").get_data(as_text=True)
    assert "1 supporter" in page and "theirs@example.org" not in page
    confirm(client, job_id, "1")
    work(app)
    run = fresh(Run.query.filter_by(job_id=job_id).one())
    assert emails_stored() == {"theirs@example.org"}
    assert result_rows(run)[1:] == [["mine@example.org", "deleted"], ["theirs@example.org", "not found"]]


def test_importing_another_users_supporter_again_does_not_make_it_deletable_by_you(
    app, client, auth, users, tmp_path
):
    # "other" adds theirs@; "user" imports the same email again (changing a cell), which makes
    # user its last importer: still not one user's imports added, so not user's to delete
    imported(app, users["other"], tmp_path, ["theirs@example.org"], name="theirs.csv")
    imported(app, users["user"], tmp_path, ["theirs@example.org", "mine@example.org"], name="again.csv")
    auth.login(users["user"].email)
    job_id = job_id_of(upload(client, "email\ntheirs@example.org\nmine@example.org\n"))
    page = client.get(f"/supporter-deletes/{job_id}").get_data(as_text=True)
    assert "1 supporter" in page and "theirs@example.org" not in page
    confirm(client, job_id, "1")
    work(app)
    assert emails_stored() == {"theirs@example.org"}


@pytest.mark.parametrize("role", ["admin", "super_admin"])
def test_admins_delete_anyones_supporters(app, client, auth, users, tmp_path, role):
    imported(app, users["other"], tmp_path, ["theirs@example.org"])
    auth.login(users[role].email)
    job_id = job_id_of(upload(client, "email\ntheirs@example.org\n"))
    confirm(client, job_id, "1")
    work(app)
    assert emails_stored() == set()


@pytest.mark.parametrize("role,status", [("user", 404), ("admin", 404), ("super_admin", 200)])
def test_another_users_delete_is_a_404_but_to_a_super_admin(app, client, auth, users, tmp_path, role, status):
    imported(app, users["other"], tmp_path, ["theirs@example.org"])
    auth.login(users["other"].email)
    job_id = job_id_of(upload(client, "email\ntheirs@example.org\n", name="Secret delete"))
    auth.logout()
    auth.login(users[role].email)
    assert client.get(f"/supporter-deletes/{job_id}").status_code == status
    if status == 404:
        assert confirm(client, job_id, "1").status_code == 404
        assert "Secret delete" not in client.get("/supporter-deletes/").get_data(as_text=True)
        assert Run.query.filter_by(job_id=job_id).count() == 0


def saved_filter(user, city="Boston"):
    saved = SavedFilter(
        owner_id=user.id,
        name=f"In {city}",
        rule={"conditions": [{"field": "city", "op": "equals", "value": city}]},
    )
    db.session.add(saved)
    db.session.commit()
    return saved


def test_a_saved_filter_deletes_whom_it_matches_and_refuses_more_than_confirmed(app, client, auth, users):
    db.session.add_all(
        [Supporter(email=f"b{i}@example.org", city="Boston") for i in range(5)]
        + [Supporter(email="n@example.org", city="Nahant")]
    )
    db.session.commit()
    saved = saved_filter(users["admin"])
    auth.login(users["admin"].email)
    response = client.post(
        "/supporter-deletes/new", data={"name": "Boston", "source": "filter", "filter_id": saved.id}
    )
    job_id = job_id_of(response)
    assert "5 supporters" in client.get(f"/supporter-deletes/{job_id}").get_data(as_text=True)
    confirm(client, job_id, "5")
    work(app)
    run = fresh(Run.query.filter_by(job_id=job_id).one())
    assert run.state is RunState.COMPLETED and run.updated == 5
    assert emails_stored() == {"n@example.org"}
    assert [row[1] for row in result_rows(run)[1:]] == ["deleted"] * 5

    db.session.add_all([Supporter(email=f"c{i}@example.org", city="Boston") for i in range(3)])
    db.session.commit()
    job_id = job_id_of(
        client.post(
            "/supporter-deletes/new", data={"name": "Again", "source": "filter", "filter_id": saved.id}
        )
    )
    confirm(client, job_id, "3")
    db.session.add(Supporter(email="late@example.org", city="Boston"))  # after the confirmation
    db.session.commit()
    work(app)
    run = fresh(Run.query.filter_by(job_id=job_id).one())
    assert run.state is RunState.FAILED and "more than the 3 confirmed" in run.error
    assert len(emails_stored()) == 5


def test_choosing_a_saved_filter_without_any_says_so(app, client, auth, users):
    auth.login(users["user"].email)
    page = client.post("/supporter-deletes/new", data={"name": "X", "source": "filter"}).get_data(
        as_text=True
    )
    assert "You chose a saved filter, and you have none yet" in page
    assert Job.query.filter_by(job_type=SupporterDelete.key).count() == 0


def test_another_users_saved_filter_is_a_404(app, client, auth, users):
    theirs = saved_filter(users["other"])
    auth.login(users["user"].email)
    response = client.post(
        "/supporter-deletes/new", data={"name": "X", "source": "filter", "filter_id": theirs.id}
    )
    assert response.status_code == 404
    assert Job.query.filter_by(job_type=SupporterDelete.key).count() == 0


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "The file is empty."),
        ("name,city\nAnn,Boston\n", "The file has no column of emails"),
        ("email\n", "The file has a header row but no data rows."),
    ],
)
def test_a_file_that_cannot_be_used_is_refused_with_a_message(app, client, auth, users, text, message):
    auth.login(users["user"].email)
    response = upload(client, text)
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    assert Job.query.count() == 0
    assert not list(current_storage().entries("uploads"))


def test_a_file_of_more_emails_than_one_delete_takes_is_refused(app, client, auth, users, monkeypatch):
    from webapp.erasure import routes
    from webapp.jobtypes import supporter_delete

    monkeypatch.setattr(routes, "MAX_EMAILS", 3)
    auth.login(users["user"].email)
    response = upload(client, "email\n" + "".join(f"p{i}@example.org\n" for i in range(4)))
    assert "The file has 4 lines; a supporter delete takes at most 3 emails" in response.get_data(
        as_text=True
    )
    assert Job.query.count() == 0 and not list(current_storage().entries("uploads"))
    assert supporter_delete.MAX_EMAILS == 200_000


def test_a_file_of_emails_only_needs_no_header(app, client, auth, users, tmp_path):
    imported(app, users["user"], tmp_path, ["ann@example.org", "bob@example.org"])
    auth.login(users["user"].email)
    job_id = job_id_of(upload(client, "ann@example.org\nbob@example.org\n"))
    assert "2 supporters" in client.get(f"/supporter-deletes/{job_id}").get_data(as_text=True)


def test_a_file_over_the_upload_limit_is_refused_with_a_message(app, client, auth, users):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    auth.login(users["user"].email)
    response = upload(client, "email\n" + "someone@example.org\n" * 100)
    assert response.status_code == 413 and "larger than the upload limit" in response.get_data(as_text=True)


def test_stop_keeps_what_was_deleted_and_records_it(app, client, auth, users):
    app.config["DELETE_BATCH_SIZE"] = 2
    db.session.execute(db.insert(Supporter), [{"email": f"p{i:03}@example.org"} for i in range(300)])
    db.session.commit()
    auth.login(users["admin"].email)
    job_id = job_id_of(upload(client, "email\n" + "".join(f"p{i:03}@example.org\n" for i in range(300))))
    confirm(client, job_id, "300")
    run = Run.query.filter_by(job_id=job_id).one()
    run = act_midway(app, run, users["admin"], request_stop, after=10)
    assert run.state is RunState.CANCELLED
    assert 10 <= run.updated < 300
    deleted = [row[0] for row in result_rows(run)[1:]]
    assert len(deleted) == run.updated == 300 - len(emails_stored()) == ErasedEmail.query.count()
    assert not emails_stored() & set(deleted)


def test_a_reimport_rejects_a_deleted_address_unless_told_to_readd_it(app, client, auth, users, tmp_path):
    imported(app, users["admin"], tmp_path, ["ann@example.org", "bob@example.org"])
    auth.login(users["admin"].email)
    confirm(client, job_id_of(upload(client, "email\nann@example.org\n")), "1")
    work(app)
    again = imported(app, users["user"], tmp_path, ["Ann@Example.org", "cy@example.org"], name="again.csv")
    assert (again.created, again.rejected) == (1, 1)
    reason = RunRejection.query.filter_by(run_id=again.id).one().reason
    assert re.fullmatch(r"line 2: deleted on [A-Z][a-z]{2} \d{1,2}, \d{4} on request", reason)
    assert emails_stored() == {"bob@example.org", "cy@example.org"}

    path = tmp_path / "readd.csv"
    path.write_text("email\nann@example.org\n")
    job = import_job(users["user"], path, ["email"])
    job.params = {**job.params, "readd_deleted": True}
    db.session.commit()
    readded = start_run(job, users["user"])
    work(app)
    readded = fresh(readded)
    assert (readded.created, readded.rejected) == (1, 0)
    assert "ann@example.org" in emails_stored()
    assert ErasedEmail.query.count() == 0  # re-added: a later import takes it as any other


def test_the_mapping_form_stores_the_readd_checkbox(app, client, auth, users):
    from tests.conftest import upload_csv

    auth.login(users["user"].email)
    token = upload_csv(client, "email\nann@example.org\n").headers["Location"].rsplit("/", 1)[1]
    page = client.get(f"/jobs/new/import/{token}").get_data(as_text=True)
    assert "Re-add previously deleted supporters" in page
    client.post(f"/jobs/new/import/{token}", data={"name": "Back", "col_0": "email", "readd_deleted": "y"})
    assert Job.query.filter_by(name="Back").one().params["readd_deleted"] is True


def test_a_failed_delete_continues_on_retry_and_its_result_lists_every_email_once(
    app, client, auth, users, monkeypatch
):
    from webapp.engine.runs import retry_run
    from webapp.jobtypes import supporter_delete

    app.config["DELETE_BATCH_SIZE"] = 2
    db.session.execute(db.insert(Supporter), [{"email": f"p{i}@example.org"} for i in range(6)])
    db.session.commit()
    auth.login(users["admin"].email)
    job_id = job_id_of(upload(client, "email\n" + "".join(f"p{i}@example.org\n" for i in range(6))))
    confirm(client, job_id, "6")
    real, calls = supporter_delete.erase, []

    def failing_once(rows, key, run_id):
        calls.append(rows)
        if len(calls) == 2:
            raise OSError("the disk went away")
        real(rows, key, run_id)

    monkeypatch.setattr(supporter_delete, "erase", failing_once)
    work(app)
    run = fresh(Run.query.filter_by(job_id=job_id).one())
    assert run.state is RunState.FAILED and run.updated == 2 and len(emails_stored()) == 4
    retry_run(run, users["admin"])
    work(app)
    run = fresh(run)
    assert run.state is RunState.COMPLETED and run.updated == 6 and emails_stored() == set()
    assert [row[0] for row in result_rows(run)[1:]] == [f"p{i}@example.org" for i in range(6)]


def test_a_delete_waiting_for_its_confirmation_can_be_discarded(app, client, auth, users, tmp_path):
    imported(app, users["user"], tmp_path, ["ann@example.org"])
    auth.login(users["user"].email)
    job_id = job_id_of(upload(client, "email\nann@example.org\n"))
    path = current_storage().path(db.session.get(Job, job_id).params["path"])
    assert "Discard this delete" in client.get(f"/supporter-deletes/{job_id}").get_data(as_text=True)
    response = client.post(f"/supporter-deletes/{job_id}/discard")
    assert response.status_code == 302 and response.headers["Location"].endswith("/supporter-deletes/")
    db.session.expire_all()
    assert db.session.get(Job, job_id) is None and not os.path.exists(path)
    assert emails_stored() == {"ann@example.org"}
    assert client.post(f"/supporter-deletes/{job_id}/discard").status_code == 404
    assert AuditEntry.query.filter_by(action="job.deleted").count() == 1


def test_a_confirmed_delete_is_not_discarded(app, client, auth, users, tmp_path):
    imported(app, users["user"], tmp_path, ["ann@example.org"])
    auth.login(users["user"].email)
    job_id = job_id_of(upload(client, "email\nann@example.org\n"))
    confirm(client, job_id, "1")
    response = client.post(f"/supporter-deletes/{job_id}/discard")
    assert response.headers["Location"].endswith(f"/supporter-deletes/{job_id}")
    assert db.session.get(Job, job_id) is not None
    assert AuditEntry.query.filter_by(action="job.deleted").count() == 0


def test_a_users_saved_filter_deletes_only_the_supporters_they_imported(app, client, auth, users, tmp_path):
    imported(app, users["user"], tmp_path, ["mine@example.org"], name="mine.csv")
    imported(app, users["other"], tmp_path, ["theirs@example.org"], name="theirs.csv")
    db.session.execute(db.update(Supporter).values(city="Boston"))
    db.session.commit()
    saved = saved_filter(users["user"])
    auth.login(users["user"].email)
    job_id = job_id_of(
        client.post(
            "/supporter-deletes/new", data={"name": "Mine", "source": "filter", "filter_id": saved.id}
        )
    )
    page = client.get(f"/supporter-deletes/{job_id}").get_data(as_text=True)
    assert "1 supporter" in page and "theirs@example.org" not in page
    confirm(client, job_id, "1")
    work(app)
    assert emails_stored() == {"theirs@example.org"}


def test_a_saved_filter_deleted_before_the_confirmation_is_said_plainly(app, client, auth, users):
    # a delete made before its filter's conditions were kept with it (tests/test_saved_filters.py)
    db.session.add(Supporter(email="b@example.org", city="Boston"))
    saved = saved_filter(users["admin"])
    auth.login(users["admin"].email)
    job_id = job_id_of(
        client.post(
            "/supporter-deletes/new", data={"name": "Gone", "source": "filter", "filter_id": saved.id}
        )
    )
    job = db.session.get(Job, job_id)
    job.params = {name: value for name, value in job.params.items() if name != "rule"}
    db.session.delete(saved)
    db.session.commit()
    page = client.get(f"/supporter-deletes/{job_id}")
    assert page.status_code == 409 and "its saved filter was deleted" in page.get_data(as_text=True)
    assert confirm(client, job_id, "1").status_code == 409
    assert Run.query.filter_by(job_id=job_id).count() == 0 and emails_stored() == {"b@example.org"}
