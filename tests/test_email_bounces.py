"""The Email Bounces job type: the bounce endpoint's type, reason and time; the CSV of a send or a
date range (in the account time zone), formula-safe and streamed with Stop; its form and who may
name which send."""

import csv
import os
from datetime import datetime

import pytest

from tests.conftest import act_midway, embedded_only, fresh, work
from tests.test_email_campaign import campaign_for, launch, supporters
from webapp.api.routes import bounce_token
from webapp.engine.runs import request_stop, retry_run, start_run
from webapp.extensions import db
from webapp.jobtypes.email_bounces import COLUMNS, EmailBounces
from webapp.models import Job, Recipient, Run, Suppression
from webapp.models.campaigns import Bounce, BounceKind, RecipientStatus
from webapp.rules.states import RunState
from webapp.storage import current_storage

_sends = 0


def a_send(owner, name="Spring appeal", emails=("a@example.org", "b@example.org")) -> Run:
    """A finished campaign send of `owner` with its recipients, as a launch leaves it."""
    global _sends
    _sends += 1
    job = Job(owner_id=owner.id, job_type="email_campaign", name=name, params={})
    db.session.add(job)
    db.session.flush()
    run = Run(
        job_id=job.id,
        owner_id=owner.id,
        job_type="email_campaign",
        job_name=name,
        number=1,
        state=RunState.COLLECTING,
        request_id=f"REQ-TEST-{_sends:06d}",
        started_at=datetime(2026, 3, 1, 12, 0),
    )
    db.session.add(run)
    db.session.flush()
    for index, email in enumerate(emails):
        db.session.add(
            Recipient(run_id=run.id, supporter_id=index + 1, email=email, status=RecipientStatus.SENT)
        )
    db.session.commit()
    return run


def bounce(run: Run, email: str, at: datetime, kind="hard", reason="550 5.1.1 user unknown") -> Bounce:
    recipient = db.session.execute(db.select(Recipient).filter_by(run_id=run.id, email=email)).scalar_one()
    row = Bounce(
        recipient_id=recipient.id, run_id=run.id, kind=BounceKind(kind), reason=reason, bounced_at=at
    )
    db.session.add(row)
    db.session.commit()
    return row


def bounces_job(owner, **params) -> Job:
    job = Job(owner_id=owner.id, job_type=EmailBounces.key, name="Bounces", params={"bom": False, **params})
    db.session.add(job)
    db.session.commit()
    return job


def run_job(app, job: Job) -> Run:
    run = start_run(job, job.owner)
    work(app)
    return fresh(run)


def table(run: Run) -> list[list[str]]:
    path = current_storage().path(run.result_path)
    with open(path, newline="", encoding="utf-8-sig") as result:
        return list(csv.reader(result))


def result_log(run: Run) -> list:
    from webapp.models import RunLogLine

    return db.session.execute(db.select(RunLogLine).filter_by(run_id=run.id)).scalars().all()


def post_bounce(client, **body):
    return client.post("/api/bounces", json=body, headers={"Authorization": f"Bearer {bounce_token()}"})


# ------------------------------------------------------------------------ the bounce endpoint


def test_the_endpoint_keeps_each_bounces_type_reason_and_time(client, users):
    run = a_send(users["user"])
    soft = post_bounce(
        client, email="A@example.org", request_id=run.request_id, type="soft", reason=" 452 mailbox full "
    )
    assert soft.status_code == 200 and soft.get_json()["reason"] == "452 mailbox full"
    hard = post_bounce(
        client, email="a@example.org", type="hard", reason="550 5.1.1 <a@example.org>: no such user"
    )
    assert hard.status_code == 200
    again = post_bounce(
        client, email="a@example.org", type="hard", reason="550 5.1.1 <a@example.org>: no such user"
    )
    assert again.status_code == 200  # a webhook's retry: kept once
    no_reason = post_bounce(client, email="b@example.org", type="soft")
    assert no_reason.status_code == 200
    rows = db.session.execute(db.select(Bounce).order_by(Bounce.id)).scalars().all()
    assert [(b.recipient.email, b.kind, b.reason) for b in rows] == [
        ("a@example.org", BounceKind.SOFT, "452 mailbox full"),
        ("a@example.org", BounceKind.HARD, "550 5.1.1 <recipient>: no such user"),
        ("b@example.org", BounceKind.SOFT, ""),
    ]
    assert all(b.run_id == run.id and b.bounced_at is not None for b in rows)
    assert fresh(run) and db.session.execute(db.select(Suppression.email)).scalars().all() == [
        "a@example.org"
    ]
    first = db.session.execute(db.select(Recipient).filter_by(email="a@example.org")).scalar_one()
    assert first.bounced_at == rows[0].bounced_at  # the run's contact results count it once


@pytest.mark.parametrize(
    "body,message",
    [
        ({"reason": 550}, "reason must be a string"),
        ({"reason": ["550"]}, "reason must be a string"),
        ({"reason": "x" * 501}, "at most 500 characters"),
        ({"reason": "550\x00 user unknown"}, "holds a NUL character"),  # (webapp/guards.py)
        ({"email": "a@example.org\x00"}, "holds a NUL character"),
        ({"reason": "550\x07 user unknown"}, "no control characters"),
    ],
)
def test_a_bad_reason_is_a_400_with_a_sentence_and_records_nothing(client, users, body, message):
    a_send(users["user"])
    response = post_bounce(client, **{"email": "a@example.org", "type": "hard", **body})
    assert response.status_code == 400 and message in response.get_json()["error"]
    assert db.session.execute(db.select(db.func.count(Bounce.id))).scalar() == 0
    assert Suppression.query.count() == 0


def test_the_address_in_a_reason_is_written_recipient_so_it_goes_with_the_recipient(client, users):
    a_send(users["user"])
    reason = "550 5.1.1 <A@Example.org>... User a@example.org unknown; try b@example.org"
    assert post_bounce(client, email="a@example.org", reason=reason).status_code == 200
    stored = db.session.execute(db.select(Bounce.reason)).scalar()
    assert stored == "550 5.1.1 <recipient>... User <recipient> unknown; try b@example.org"


def test_a_bounce_of_megabytes_is_a_413_that_says_the_json_limit(client, users):
    a_send(users["user"])
    response = post_bounce(client, email="a@example.org", reason="r" * 3_000_000)
    assert response.status_code == 413
    assert response.get_json()["error"] == "A JSON body is at most 1 MB. Nothing was saved."
    assert db.session.execute(db.select(db.func.count(Bounce.id))).scalar() == 0


def test_a_reason_of_500_characters_is_kept_whole(client, users):
    a_send(users["user"])
    assert post_bounce(client, email="a@example.org", type="soft", reason="r" * 500).status_code == 200
    assert db.session.execute(db.select(Bounce.reason)).scalar() == "r" * 500


@embedded_only
def test_the_migration_turns_each_bounce_recorded_before_it_into_one_bounce(tmp_path):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from webapp import create_app

    app = create_app(
        {"VAR_DIR": str(tmp_path / "var"), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'b.db'}"}
    )
    with app.app_context():
        upgrade(revision="b3d5f7a9c1e2")  # the revision before bounce
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO user (id, email, name, password_hash, role, active, created_at, "
                    "session_version) VALUES (1, 'u@example.org', 'U', 'x', 'user', 1, '2026-01-01', 0)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO run (id, owner_id, job_type, job_name, state, trigger, created_at, "
                    "progress_done, checked, created, updated, unchanged, skipped, rejected, checkpoint, "
                    "in_monitor, long_notified, sort_at) VALUES (7, 1, 'email_campaign', 'C', "
                    "'collecting', 'manual', '2026-01-01', 0, 0, 0, 0, 0, 0, 0, '{}', 1, 0, '2026-01-01')"
                )
            )
            for rid, email, bounced in [(1, "h@x.org", "2026-01-02 03:04:05"), (2, "s@x.org", "2026-01-03"),
                                        (3, "n@x.org", None)]:  # fmt: skip
                conn.execute(
                    text(
                        "INSERT INTO recipient (id, run_id, supporter_id, email, data, status, attempts, "
                        "bounced_at) VALUES (:id, 7, :id, :email, '{}', 'sent', 1, :at)"
                    ),
                    {"id": rid, "email": email, "at": bounced},
                )
            conn.execute(
                text(
                    "INSERT INTO suppression (email, reason, created_at) "
                    "VALUES ('h@x.org', 'hard_bounce', '2026-01-02')"
                )
            )
        upgrade(revision="c8e1a2b4d6f0")
        with db.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT recipient_id, run_id, kind, reason FROM bounce ORDER BY id")
            ).all()
        assert rows == [(1, 7, "hard", ""), (2, 7, "soft", "")]
        downgrade(revision="b3d5f7a9c1e2")
        with db.engine.connect() as conn:
            assert (
                conn.execute(text("SELECT count(*) FROM recipient WHERE bounced_at IS NOT NULL")).scalar()
                == 2
            )
        db.engine.dispose()


# ------------------------------------------------------------------------------- the CSV


def test_a_sends_bounces_become_rows_with_every_column(app, users):
    run = a_send(users["user"], emails=("a@example.org", "b@example.org", "c@example.org"))
    bounce(run, "a@example.org", datetime(2026, 3, 1, 15, 30), "soft", "452 4.2.2 mailbox full")
    bounce(run, "b@example.org", datetime(2026, 7, 1, 15, 30), "hard", "550 5.1.1 user unknown")
    other_send = a_send(users["user"], name="Autumn appeal")
    bounce(other_send, "a@example.org", datetime(2026, 3, 1, 16, 0))
    result = run_job(app, bounces_job(users["user"], source="send", run_id=run.id))
    assert result.state is RunState.COMPLETED, result.error
    assert table(result) == [
        list(COLUMNS),
        ["a@example.org", "Spring appeal", "#1", run.request_id, "soft", "452 4.2.2 mailbox full",
         "2026-03-01T10:30:00-05:00"],  # EST
        ["b@example.org", "Spring appeal", "#1", run.request_id, "hard", "550 5.1.1 user unknown",
         "2026-07-01T11:30:00-04:00"],  # EDT
    ]  # fmt: skip
    assert (result.progress_done, result.progress_total, result.created) == (2, 2, 2)
    assert result.result_name == f"Bounces - bounces #{result.number}.csv"


def test_cells_that_look_like_formulas_are_neutralised(app, users):
    run = a_send(users["user"], name='=HYPERLINK("http://evil")', emails=("+1@example.org",))
    bounce(run, "+1@example.org", datetime(2026, 3, 1, 12), reason="@SUM(A1) -2+3")
    rows = table(run_job(app, bounces_job(users["user"], source="send", run_id=run.id)))
    assert rows[1][:2] == ["'+1@example.org", '\'=HYPERLINK("http://evil")']
    assert rows[1][5] == "'@SUM(A1) -2+3"


def test_the_excel_friendly_file_starts_with_a_bom(app, users):
    run = a_send(users["user"])
    job = bounces_job(users["user"], source="send", run_id=run.id)
    job.params = {**job.params, "bom": True}
    db.session.commit()
    result = run_job(app, job)
    with open(current_storage().path(result.result_path), "rb") as raw:
        assert raw.read(3) == b"\xef\xbb\xbf"
    assert table(result) == [list(COLUMNS)]  # no bounces: the header only


def test_a_date_range_is_whole_days_in_the_account_time_zone(app, users):
    run = a_send(users["user"], emails=[f"p{i}@example.org" for i in range(4)])
    bounce(run, "p0@example.org", datetime(2026, 3, 1, 4, 59, 59))  # Feb 28, 23:59:59 EST: out
    bounce(run, "p1@example.org", datetime(2026, 3, 1, 5, 0))  # Mar 1, 00:00 EST: in
    bounce(run, "p2@example.org", datetime(2026, 3, 9, 3, 59, 59))  # Mar 8, 23:59:59 EDT: in
    bounce(run, "p3@example.org", datetime(2026, 3, 9, 4, 0))  # Mar 9, 00:00 EDT: out
    result = run_job(app, bounces_job(users["user"], source="range", start="2026-03-01", end="2026-03-08"))
    assert [(r[0], r[6]) for r in table(result)[1:]] == [
        ("p1@example.org", "2026-03-01T00:00:00-05:00"),
        ("p2@example.org", "2026-03-08T23:59:59-04:00"),  # the DST change is inside the range
    ]


def test_the_days_before_each_run_are_those_before_its_occurrence_or_its_request(app, users):
    run = a_send(users["user"], emails=[f"p{i}@example.org" for i in range(4)])
    bounce(run, "p0@example.org", datetime(2026, 3, 2, 4, 59, 59))  # Mar 1, 23:59:59 EST: out
    bounce(run, "p1@example.org", datetime(2026, 3, 2, 5, 0))  # Mar 2, 00:00 EST: in
    bounce(run, "p2@example.org", datetime(2026, 3, 9, 3, 59, 59))  # Mar 8, 23:59:59 EDT: in
    bounce(run, "p3@example.org", datetime(2026, 3, 9, 4, 0))  # Mar 9 (the run's own day): out
    job = bounces_job(users["user"], source="recent", period="7")
    weekly = start_run(job, users["user"])
    weekly.planned_for = datetime(2026, 3, 9, 13, 0)  # Monday 9 AM EDT; it may run later
    db.session.commit()
    work(app)
    result = fresh(weekly)
    assert [r[0] for r in table(result)[1:]] == ["p1@example.org", "p2@example.org"]
    assert "Bounces of 2026-03-02 to 2026-03-08 (America/New_York)." in [
        line.message for line in result_log(result)
    ]
    by_hand = start_run(job, users["user"])
    by_hand.created_at = datetime(2026, 3, 10, 3, 0)  # Mon 11 PM EDT; a retry days later: the same days
    db.session.commit()
    work(app)
    assert [r[0] for r in table(fresh(by_hand))[1:]] == ["p1@example.org", "p2@example.org"]


def test_a_users_range_holds_only_their_own_sends_a_super_admins_every_send(app, users):
    mine = a_send(users["user"], name="Mine", emails=("m@example.org",))
    theirs = a_send(users["other"], name="Secret of other", emails=("t@example.org",))
    bounce(mine, "m@example.org", datetime(2026, 3, 2, 12))
    bounce(theirs, "t@example.org", datetime(2026, 3, 2, 12))
    export = {"source": "range", "start": "2026-03-01", "end": "2026-03-31"}
    assert [r[0] for r in table(run_job(app, bounces_job(users["user"], **export)))[1:]] == ["m@example.org"]
    every = table(run_job(app, bounces_job(users["super_admin"], **export)))[1:]
    assert [r[0] for r in every] == ["m@example.org", "t@example.org"]


def test_a_send_the_owner_may_not_see_fails_the_run_without_a_row(app, users):
    theirs = a_send(users["other"], name="Secret of other")
    bounce(theirs, "a@example.org", datetime(2026, 3, 2, 12))
    result = run_job(app, bounces_job(users["user"], source="send", run_id=theirs.id))
    assert result.state is RunState.FAILED
    assert "no longer one you may see" in result.error and not result.result_path


def test_stop_between_batches_leaves_no_file(app, users):
    run = a_send(users["user"], emails=())
    count = 3000  # 1,000 batches of 3: the stop lands half-way
    db.session.execute(
        db.insert(Recipient),
        [
            {"run_id": run.id, "supporter_id": i, "email": f"p{i}@example.org", "data": {}}
            for i in range(count)
        ],
    )
    ids = db.session.execute(db.select(Recipient.id).filter_by(run_id=run.id)).scalars().all()
    when = datetime(2026, 3, 2, 12)
    db.session.execute(
        db.insert(Bounce),
        [
            {"recipient_id": i, "run_id": run.id, "kind": "hard", "reason": "", "bounced_at": when}
            for i in ids
        ],
    )
    db.session.commit()
    job = bounces_job(users["user"], source="send", run_id=run.id)
    stopped = act_midway(app, start_run(job, users["user"]), users["user"], request_stop, after=30)
    assert stopped.state is RunState.CANCELLED
    assert 30 <= stopped.progress_done < count and not stopped.result_path
    assert os.listdir(app.config["RESULTS_DIR"]) == []


def test_a_retried_run_continues_after_the_last_bounce_written(app, users, monkeypatch):
    run = a_send(users["user"], emails=[f"p{i}@example.org" for i in range(7)])
    for i in range(7):
        bounce(run, f"p{i}@example.org", datetime(2026, 3, 2, 12))
    calls = {"n": 0}

    def failing_commit(ctx, **kwargs):  # the second batch's commit fails once
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("database went away")
        return original(ctx, **kwargs)

    from webapp.engine.context import RunContext

    original = RunContext.commit_batch
    monkeypatch.setattr(RunContext, "commit_batch", lambda ctx, **kw: failing_commit(ctx, **kw))
    job = bounces_job(users["user"], source="send", run_id=run.id)
    failed = run_job(app, job)
    assert failed.state is RunState.FAILED and failed.progress_done == 3
    retry_run(failed, users["user"])
    work(app)
    done = fresh(failed)
    assert done.state is RunState.COMPLETED, done.error
    assert [r[0] for r in table(done)[1:]] == [f"p{i}@example.org" for i in range(7)]


# ------------------------------------------------------------------------------- the form


def test_the_new_job_page_offers_a_bounce_export(client, auth, users):
    auth.login(users["user"].email)
    page = client.get("/jobs/new").get_data(as_text=True)
    assert "Email Bounces" in page and "/bounce-exports/new" in page


def test_the_form_saves_a_send_and_a_date_range(client, auth, users):
    run = a_send(users["user"])
    auth.login(users["user"].email)
    form = client.get("/bounce-exports/new").get_data(as_text=True)
    assert f'value="{run.id}"' in form and "America/New_York (E" in form
    response = client.post("/bounce-exports/new", data={"name": "One send", "source": "send", "send": run.id})
    assert response.status_code == 302
    response = client.post(
        "/bounce-exports/new",
        data={"name": "March", "source": "range", "start": "2026-03-01", "end": "2026-03-31", "bom": "y"},
    )
    assert response.status_code == 302
    response = client.post("/bounce-exports/new", data={"name": "Weekly", "source": "recent", "period": "7"})
    assert response.status_code == 302
    jobs = (
        db.session.execute(db.select(Job).filter_by(job_type="email_bounces").order_by(Job.id))
        .scalars()
        .all()
    )
    assert [(j.name, j.params) for j in jobs] == [
        ("One send", {"source": "send", "run_id": run.id, "bom": False}),
        ("March", {"source": "range", "start": "2026-03-01", "end": "2026-03-31", "bom": True}),
        ("Weekly", {"source": "recent", "period": "7", "bom": False}),
    ]
    pages = [client.get(f"/jobs/{job.id}").get_data(as_text=True) for job in jobs]
    assert "“Spring appeal” send #1" in pages[0]
    assert "Mar 1, 2026 – Mar 31, 2026" in pages[1]
    assert "Every send: the 7 days before each run" in pages[2]


def test_save_and_run_now_starts_a_run(client, auth, users):
    run = a_send(users["user"])
    auth.login(users["user"].email)
    response = client.post(
        "/bounce-exports/new",
        data={"name": "Now", "source": "send", "send": run.id, "action": "save_run"},
    )
    assert response.status_code == 302 and "/runs/" in response.headers["Location"]


@pytest.mark.parametrize(
    "data,message",
    [
        ({"source": "send"}, "Choose the campaign send"),
        ({"source": "send", "send": "abc"}, "Choose the campaign send"),
        ({"source": "range"}, "Choose the first day."),
        ({"source": "range", "start": "2026-03-01"}, "Choose the last day."),
        (
            {"source": "range", "start": "2026-03-09", "end": "2026-03-01"},
            "The last day is before the first day.",
        ),
        ({"source": "range", "start": "1999-12-31", "end": "2026-03-01"}, "on or after Jan 1, 2000"),
        ({"source": "range", "start": "2026-03-01", "end": "2101-01-01"}, "on or before"),
        ({"source": "range", "start": "not a day", "end": "2026-03-01"}, "Not a valid date"),
        ({"source": "everything"}, "Not a valid choice"),
        ({"source": "recent", "period": "365"}, "Not a valid choice"),
    ],
)
def test_bad_input_is_a_message_on_the_form_and_saves_nothing(client, auth, users, data, message):
    auth.login(users["user"].email)
    response = client.post("/bounce-exports/new", data={"name": "Bad", **data})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert Job.query.filter_by(job_type="email_bounces").count() == 0


@pytest.mark.parametrize("role,whose,status", [
    ("user", "own", 302), ("user", "other", 404), ("user", "unknown", 404),
    ("admin", "other", 404), ("super_admin", "other", 302), ("super_admin", "unknown", 404),
])  # fmt: skip
def test_a_send_id_in_the_form_follows_the_url_rule(client, auth, users, role, whose, status):
    owner = users["user"] if whose == "own" else users["other"]
    run = a_send(owner, name="Secret campaign of other" if whose == "other" else "Mine")
    send = {"own": run.id, "other": run.id, "unknown": 10**9}[whose]
    auth.login(users[role].email)
    response = client.post("/bounce-exports/new", data={"name": "Probe", "source": "send", "send": send})
    assert response.status_code == status
    if status == 404:
        assert "Secret" not in response.get_data(as_text=True)
        assert Job.query.filter_by(job_type="email_bounces").count() == 0
    if role == "user":  # the list offers only the sends the user may see
        assert ("Secret" in client.get("/bounce-exports/new").get_data(as_text=True)) is False


def test_the_edit_page_changes_a_job_and_hides_anyone_elses(client, auth, users):
    run = a_send(users["user"])
    job = bounces_job(users["user"], source="range", start="2026-03-01", end="2026-03-31")
    auth.login(users["user"].email)
    job_page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert f'href="/bounce-exports/{job.id}/edit">Edit</a>' in job_page
    page = client.get(f"/bounce-exports/{job.id}/edit").get_data(as_text=True)
    assert 'value="2026-03-01"' in page and 'value="2026-03-31"' in page
    response = client.post(
        f"/bounce-exports/{job.id}/edit", data={"name": "Renamed", "source": "send", "send": run.id}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert (job.name, job.params) == ("Renamed", {"source": "send", "run_id": run.id, "bom": False})
    theirs = bounces_job(users["other"], source="send", run_id=run.id)
    assert client.get(f"/bounce-exports/{theirs.id}/edit").status_code == 404
    export = Job(owner_id=users["user"].id, job_type="user_data_export", name="E", params={})
    db.session.add(export)
    db.session.commit()
    response = client.get(f"/bounce-exports/{export.id}/edit")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/jobs/{export.id}")


def test_a_bounce_export_gets_a_schedule_like_any_job(client, auth, users):
    from datetime import date

    from webapp.models import JobSchedule

    job = bounces_job(users["user"], source="recent", period="7")
    auth.login(users["user"].email)
    assert client.get(f"/jobs/{job.id}/schedule").status_code == 200
    response = client.post(
        f"/jobs/{job.id}/schedule",
        data={
            "enabled": "y",
            "kind": "days_of_week",
            "weekdays": ["0"],
            "time": "09:00",
            "start_date": date.today().isoformat(),
            "overlap_policy": "skip",
            "misfire_policy": "run_once",
            "misfire_grace_minutes": "60",
        },
    )
    assert response.status_code == 302
    schedule = db.session.execute(db.select(JobSchedule).filter_by(job_id=job.id)).scalar_one()
    assert schedule.enabled and schedule.next_run_at is not None
    assert EmailBounces().may_run_by_itself(job)


def test_a_real_send_bounce_and_export_end_to_end(app, client, users):
    supporters(2)
    run = launch(campaign_for(users["user"], name="Real send"), users["user"])
    work(app)
    run = fresh(run)
    assert (
        post_bounce(client, email="s1@example.org", request_id=run.request_id, reason="550 no").status_code
        == 200
    )
    rows = table(run_job(app, bounces_job(users["user"], source="send", run_id=run.id)))
    assert [r[:6] for r in rows[1:]] == [
        ["s1@example.org", "Real send", "#1", run.request_id, "hard", "550 no"]
    ]
