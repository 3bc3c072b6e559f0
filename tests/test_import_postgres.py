"""User Data Import on PostgreSQL (each slice COPYed into a staging table, then upserted by one
statement, webapp/jobtypes/pg_copy.py) gives what the same import gives on SQLite: the same
counts, stored supporters, rejected lines and log lines.

Each test runs the importer on both databases side by side: a fresh SQLite file, and the
PostgreSQL database of CONVEYOR_DATABASE_URL (its tables emptied first). Without a PostgreSQL URL
the tests are skipped."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask

from webapp import create_app
from webapp.config import database_url
from webapp.engine.context import RunContext
from webapp.engine.runs import new_run
from webapp.extensions import db
from webapp.jobtypes import importer
from webapp.jobtypes.importer import Importer
from webapp.jobtypes.pg_copy import StagedUpsert, UnchangedCheck
from webapp.models import Job, RunLogLine, RunRejection, Supporter, User
from webapp.models.base import utcnow
from webapp.models.users import Role
from webapp.rules.states import RunState

POSTGRES = database_url(os.environ.get("CONVEYOR_DATABASE_URL") or "")
pytestmark = pytest.mark.skipif(
    not POSTGRES.startswith("postgresql"), reason="needs CONVEYOR_DATABASE_URL of a PostgreSQL database"
)
SKIPPED = ("id", "created_at", "updated_at", "import_digest")  # (SQLite keeps no digest)
COLUMNS = [c.name for c in Supporter.__table__.columns if c.name not in SKIPPED]


def _app(tmp_path: Path, url: str) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "VAR_DIR": str(tmp_path / "var"),
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": "redis://127.0.0.1:9/0",  # never reached: the importer runs in-process
            "SECRET_KEY": "test-secret",
            "BOUNCE_TOKEN": "test-bounce-token",
            "IMPORT_BATCH_SIZE": 3,
        }
    )


@pytest.fixture
def apps(tmp_path, migrated_database) -> dict[str, Flask]:
    """The app on a fresh SQLite file and on the emptied PostgreSQL database (its schema built
    by the migrations, with the trigger that forgets a changed supporter's digest)."""
    apps = {
        "sqlite": _app(tmp_path / "sqlite", f"sqlite:///{tmp_path / 'test.db'}"),
        "postgresql": _app(tmp_path / "postgresql", POSTGRES),
    }
    for name, app in apps.items():
        with app.app_context():
            db.create_all()  # (nothing to do when the migrations built the schema)
            if name == "postgresql":
                tables = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
                db.session.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.session.add(User(email="user@example.org", name="User", role=Role.USER, password_hash="!"))
            db.session.commit()
    yield apps
    for app in apps.values():
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def run_import(app: Flask, path: Path, text: str, mapping: list[str]) -> dict[str, Any]:
    """Import `text` with `mapping` through the Importer on `app`'s database; what it did."""
    path.write_text(text, encoding="utf-8")
    with app.app_context():
        user = db.session.execute(sa.select(User)).scalar_one()
        params = {"path": str(path), "filename": path.name, "encoding": "utf-8", "delimiter": ","}
        job = Job(
            owner_id=user.id,
            job_type="user_data_import",
            name="Import",
            params={**params, "columns": mapping, "mapping": mapping},
        )
        db.session.add(job)
        db.session.flush()
        run = new_run(job, user, RunState.PROCESSING, trigger="manual")
        db.session.commit()
        Importer(RunContext(run), job.params, total=text.count("\n") - 1).run()
        db.session.expire_all()
        return {
            "run_id": run.id,
            "counts": run.counts,
            "done": run.progress_done,
            "rejected": [
                (r.line, r.reason)
                for r in RunRejection.query.filter_by(run_id=run.id).order_by(RunRejection.line)
            ],
            "log": [
                line.message for line in RunLogLine.query.filter_by(run_id=run.id).order_by(RunLogLine.id)
            ],
        }


def stored(app: Flask, run_ids: list[int]) -> list[tuple]:
    """Every supporter by email: its columns (last_run_id as the number of the import that last
    saw it), and whether it changed after it was created."""
    with app.app_context():
        rows = []
        for supporter in Supporter.query.order_by(Supporter.email):
            values = {name: getattr(supporter, name) for name in COLUMNS}
            values["last_run_id"] = run_ids.index(values["last_run_id"]) + 1
            rows.append((*values.values(), supporter.updated_at > supporter.created_at))
        return rows


def on_both(apps: dict[str, Flask], tmp_path: Path, files: list[tuple[str, list[str]]]) -> list[dict]:
    """Run the same imports in turn on both databases; assert they did the same; return what
    the imports did (on PostgreSQL)."""
    done: dict[str, list[dict]] = {}
    for name, app in apps.items():
        done[name] = [
            run_import(app, tmp_path / f"{name}-{i}.csv", text, mapping)
            for i, (text, mapping) in enumerate(files)
        ]
    for sqlite_run, postgres_run in zip(done["sqlite"], done["postgresql"], strict=True):
        for key in ("counts", "done", "rejected", "log"):
            assert postgres_run[key] == sqlite_run[key], key
    run_ids = {name: [run["run_id"] for run in runs] for name, runs in done.items()}
    assert stored(apps["postgresql"], run_ids["postgresql"]) == stored(apps["sqlite"], run_ids["sqlite"])
    return done["postgresql"]


ALL = ["email", "first_name", "last_name", "city", "state", "zip", "phone", "opted_in", "donation_total"]
FIRST = (
    "email,first_name,last_name,city,state,zip,phone,opted_in,donation_total\n"
    "ann@example.org,Ann,Lee,Boston,MA,02134,(617) 555-0101,yes,12.5\n"
    "bob@example.org,Bob,Ray,Austin,TX,73301,(512) 555-0102,no,3\n"
    "cy@example.org,Cy,Ng,Denver,CO,80202,,y,\n"
    "dee@example.org,Dee,Fox,Miami,FL,33101,(305) 555-0104,n,100.00\n"
)
SECOND = (
    "email,first_name,last_name,city,state,zip,phone,opted_in,donation_total\n"
    "ANN@example.org,Ann,Lee,Boston,MA,02134,(617) 555-0101,yes,12.50\n"  # unchanged (case, 12.50)
    "bob@example.org,Bob,Ray,Dallas,TX,75201,(512) 555-0102,no,3\n"  # changed: city and zip
    "cy@example.org,,,,,,,,\n"  # blank cells keep what is stored: unchanged
    "eve@example.org,Eve,Cho,Seattle,WA,98101,,true,7\n"  # new
    "eve@example.org,Evelyn,Cho,Seattle,WA,98101,,true,7\n"  # the same slice: skipped
    "fay@example.org,Fay,Ito,Tucson,AZ,1234,,no,1\n"  # rejected: the ZIP
    "not-an-email,Gus,Ono,Tucson,AZ,85701,,no,1\n"  # rejected: the email
    "dee@example.org,Dee,Fox,Miami,FL,33101,(305) 555-0104,yes,100\n"  # changed: opted_in
    "hal@example.org,Hal,Ash,Austin,TX,73301,,no,$1200\n"  # new
    "bob@example.org,Robert,Ray,Dallas,TX,75201,(512) 555-0102,no,3\n"  # again, a later slice
    "ivy@example.org,Ivy,Orr,Boston,MA,02134,,maybe,2\n"  # rejected: opted_in
    "ann@example.org,Ann,Lee,Boston,MA,02134,(617) 555-0101,1,12.5\n"  # again, unchanged
)


def test_new_changed_unchanged_duplicate_and_rejected_lines_count_and_store_alike(apps, tmp_path):
    first, second = on_both(apps, tmp_path, [(FIRST, ALL), (SECOND, ALL)])
    assert first["counts"]["created"] == 4
    assert second["counts"] == {
        "checked": 12,
        "created": 2,
        "updated": 3,
        "unchanged": 3,
        "skipped": 1,
        "rejected": 3,
    }
    assert any("ann@example.org appeared earlier in the file" in line for line in second["log"])


def test_a_reimport_counts_every_row_unchanged_alike(apps, tmp_path):
    first, again = on_both(apps, tmp_path, [(FIRST, ALL), (FIRST, ALL)])
    assert (again["counts"]["created"], again["counts"]["updated"], again["counts"]["unchanged"]) == (0, 0, 4)


def test_an_import_of_some_fields_updates_only_those_alike(apps, tmp_path):
    some = (
        "email,city,opted_in\nann@example.org,Salem,\nbob@example.org,Austin,yes\nzed@example.org,Reno,no\n"
    )
    only_email = "email\nann@example.org\nnew@example.org\n"
    *_, city, email = on_both(
        apps, tmp_path, [(FIRST, ALL), (some, ["email", "city", "opted_in"]), (only_email, ["email"])]
    )
    assert (city["counts"]["created"], city["counts"]["updated"]) == (1, 2)
    assert (email["counts"]["created"], email["counts"]["unchanged"]) == (1, 1)


def test_values_copy_cannot_read_plainly_are_stored_alike(apps, tmp_path):
    text = (
        "email,first_name,address1,city\n"
        'ann@example.org,"A\\nn","12 Main St\tApt 4","line one\nline two"\n'
        'bob@example.org,\\N,"back\\slash, comma","quote "" inside"\n'
        "cy@example.org,Zoë,\\.,\\\n"
    )
    first, again = on_both(apps, tmp_path, [(text, ["email", "first_name", "address1", "city"])] * 2)
    assert first["counts"]["created"] == 3 and again["counts"]["unchanged"] == 3
    with apps["postgresql"].app_context():
        assert Supporter.query.filter_by(email="bob@example.org").one().first_name == "\\N"


def test_several_slices_a_batch_with_stored_and_new_emails_mixed_alike(apps, tmp_path, monkeypatch):
    # slices of 7 in batches of 20: the writer thread overlaps slices, commits fall mid-slice
    monkeypatch.setattr(importer, "READ_SIZE", 7)
    for app in apps.values():
        app.config["IMPORT_BATCH_SIZE"] = 20
    header = "email,first_name,donation_total\n"
    first = header + "".join(f"p{i}@example.org,P{i},{i}\n" for i in range(0, 120, 2))
    mixed = header + "".join(
        f"p{i}@example.org,{'Q' if i % 3 == 0 else 'P'}{i},{i}\n" for i in [*range(120), 7, 8, 9]
    )
    runs = on_both(
        apps,
        tmp_path,
        [(first, ["email", "first_name", "donation_total"])]
        + [(mixed, ["email", "first_name", "donation_total"])] * 2,
    )
    assert runs[1]["counts"]["created"] == 60
    assert runs[1]["done"] == 123


@pytest.mark.parametrize("plain_inserts", [False, True])
def test_an_email_another_import_stores_meanwhile_is_merged_not_a_failure(apps, plain_inserts):
    # run 1 stores ann while run 2's statement waits on it. Upserting, run 2 cannot see ann in
    # its snapshot and its insert meets ann's key: ann is merged by a second pass (an update of
    # run 2); inserting all in a savepoint, run 2 meets ann's key, undoes it and upserts
    with apps["postgresql"].app_context():
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as other, psycopg.connect(url) as ours:
        other.execute(
            "INSERT INTO supporter (email, city, opted_in, last_run_id, created_at, updated_at) "
            "VALUES ('ann@example.org', 'Boston', false, 1, now(), now())"
        )
        committer = threading.Timer(0.5, other.commit)
        committer.start()
        started = time.monotonic()
        upsert = StagedUpsert(["city"], 2, default_opted_in=True, plain_inserts=plain_inserts, digests=False)
        staged = upsert.stage([2, 3], ["ann@example.org", "bob@example.org"], [["Salem", "Reno"]], utcnow())
        written = upsert.write(ours, staged)
        committer.join()
        assert time.monotonic() - started >= 0.4  # it did wait for the other import
        assert (written.created, written.updated, written.unchanged, written.again) == (1, 1, 0, [])
        ours.commit()
        rows = ours.execute("SELECT email, city, last_run_id FROM supporter ORDER BY email").fetchall()
    assert rows == [("ann@example.org", "Salem", 2), ("bob@example.org", "Reno", 2)]


def test_a_new_supporter_without_opted_in_is_refused_alike(apps, tmp_path):
    # opted_in cannot be empty: a stored supporter keeps theirs (above), a new one fails the run
    text = "email,opted_in\nann@example.org,yes\nbob@example.org,\n"
    for name, app in apps.items():
        with pytest.raises(sa.exc.IntegrityError):
            run_import(app, tmp_path / f"{name}.csv", text, ["email", "opted_in"])


def test_new_emails_after_slices_of_stored_ones_are_created_alike(apps, tmp_path, monkeypatch):
    # a re-import with new people at its end: slices of stored emails only, then mixed ones
    monkeypatch.setattr(importer, "READ_SIZE", 7)
    for app in apps.values():
        app.config["IMPORT_BATCH_SIZE"] = 14
    header = "email,city\n"
    stored = header + "".join(f"p{i}@example.org,Boston\n" for i in range(30))
    more = header + "".join(f"p{i}@example.org,{'Austin' if i % 4 else 'Boston'}\n" for i in range(40))
    _, again = on_both(apps, tmp_path, [(stored, ["email", "city"]), (more, ["email", "city"])])
    assert (again["counts"]["created"], again["counts"]["updated"]) == (10, 22)


def test_an_email_in_two_slices_of_one_batch_is_written_in_turn_alike(apps, tmp_path, monkeypatch):
    # a batch is written as one when its slices share no email; here slices of 3 in batches of
    # 9 share some: those batches are written slice by slice, the later row winning as on SQLite
    monkeypatch.setattr(importer, "READ_SIZE", 3)
    for app in apps.values():
        app.config["IMPORT_BATCH_SIZE"] = 9
    header = "email,city\n"
    cities = ["Boston", "Austin", "Reno", "Salem"]
    emails = [0, 1, 2, 3, 1, 4, 5, 2, 6, 7, 8, 9, 10, 11, 7, 12, 0, 13]
    first = header + "".join(f"p{n}@example.org,{cities[i % 4]}\n" for i, n in enumerate(emails))
    again = header + "".join(f"p{n}@example.org,{cities[n % 4]}\n" for n in reversed(emails))
    runs = on_both(apps, tmp_path, [(first, ["email", "city"]), (again, ["email", "city"])])
    assert runs[0]["counts"]["created"] == 14
    assert sum("appeared earlier in the file" in line for line in runs[0]["log"]) == 4
    assert runs[1]["counts"]["created"] == 0


def _parsed_by_run(monkeypatch) -> dict[int, int]:
    """How many records each PostgreSQL import run validated (Importer.parse_batch)."""
    parsed: dict[int, int] = {}
    original = Importer.parse_batch

    def counting(self: Importer, batch: Any, digests: Any = None) -> Any:
        if importer.dialect() == "postgresql":
            parsed[self.run_id] = parsed.get(self.run_id, 0) + len(batch)
        return original(self, batch, digests)

    monkeypatch.setattr(Importer, "parse_batch", counting)
    return parsed


def test_a_reimport_validates_only_the_records_that_changed_and_counts_alike(apps, tmp_path, monkeypatch):
    # each supporter keeps a digest of the record it was stored from: the same record again is
    # only touched (last_run_id), by the database, with no validation
    parsed = _parsed_by_run(monkeypatch)
    changed = FIRST.replace("Denver", "Aurora")
    fewer = ["email", "first_name", "last_name", "city", "state", "zip", "phone", "opted_in", ""]
    runs = on_both(apps, tmp_path, [(FIRST, ALL), (FIRST, ALL), (changed, ALL), (changed, fewer)])
    assert [parsed.get(run["run_id"], 0) for run in runs] == [4, 0, 1, 4]  # another mapping: all
    assert [run["counts"]["unchanged"] for run in runs] == [0, 4, 3, 4]
    assert runs[2]["counts"]["updated"] == 1
    with apps["postgresql"].app_context():
        supporters = Supporter.query.all()
        assert {supporter.last_run_id for supporter in supporters} == {runs[3]["run_id"]}
        assert None not in {supporter.import_digest for supporter in supporters}


def test_records_met_again_in_a_reimport_are_logged_and_win_alike(apps, tmp_path, monkeypatch):
    # SECOND has ann and bob twice, in different batches: in its re-import the later record of
    # each is met again and logged as on SQLite, even where the earlier one was only touched
    parsed = _parsed_by_run(monkeypatch)
    *_, again = on_both(apps, tmp_path, [(FIRST, ALL), (SECOND, ALL), (SECOND, ALL)])
    assert sum("appeared earlier in the file" in line for line in again["log"]) == 2
    assert parsed[again["run_id"]] < 12  # (some records were passed by unvalidated)


def test_a_supporter_changed_since_its_import_is_validated_and_written_again(apps, tmp_path, monkeypatch):
    # a change by anything but an import (an edit, an unsubscribe, a transaction import) makes
    # PostgreSQL forget the digest: the next import validates that record and restores its city
    parsed = _parsed_by_run(monkeypatch)
    results = {}
    for name, app in apps.items():
        run_import(app, tmp_path / f"{name}-1.csv", FIRST, ALL)
        with app.app_context():
            moved = "UPDATE supporter SET city = 'Elsewhere' WHERE email = 'cy@example.org'"
            db.session.execute(sa.text(moved))
            db.session.commit()
            if name == "postgresql":
                assert Supporter.query.filter_by(email="cy@example.org").one().import_digest is None
        results[name] = run_import(app, tmp_path / f"{name}-2.csv", FIRST, ALL)
        with app.app_context():
            assert Supporter.query.filter_by(email="cy@example.org").one().city == "Denver"
    counts = results["postgresql"]["counts"]
    assert counts == results["sqlite"]["counts"]
    assert (counts["updated"], counts["unchanged"]) == (1, 3)
    assert parsed[results["postgresql"]["run_id"]] == 1


def test_the_trigger_forgets_a_digest_only_when_the_data_changes(apps):
    with apps["postgresql"].app_context():
        db.session.execute(
            sa.text(
                "INSERT INTO supporter (email, city, opted_in, last_run_id, import_digest, created_at, "
                "updated_at) VALUES ('ann@example.org', 'Boston', true, 1, 42, now(), now())"
            )
        )

        def digest_after(change: str) -> int | None:
            db.session.execute(sa.text(f"UPDATE supporter SET {change} WHERE email = 'ann@example.org'"))
            return db.session.execute(sa.text("SELECT import_digest FROM supporter")).scalar()

        assert digest_after("last_run_id = 2, updated_at = now()") == 42  # a touch keeps it
        assert digest_after("city = 'Salem', import_digest = 7") == 7  # an import's own write
        assert digest_after("city = 'Salem'") == 7  # the same value: nothing changed
        assert digest_after("opted_in = false") is None  # an unsubscribe forgets it
        db.session.rollback()


def test_records_whose_fields_hold_the_digest_separator_are_validated_alike(apps, tmp_path, monkeypatch):
    # "a\x1fb","c" and "a","b\x1fc" join alike: such a record is never passed by on its digest
    parsed = _parsed_by_run(monkeypatch)
    text = 'email,first_name,city\nann@example.org,"A\x1fn",Boston\nbob@example.org,Bob,"Re\x1fno"\n'
    _, again = on_both(apps, tmp_path, [(text, ["email", "first_name", "city"])] * 2)
    assert again["counts"]["unchanged"] == 2 and parsed[again["run_id"]] == 2


def test_two_imports_checking_the_same_supporters_take_them_in_one_order(apps):
    # ann is unchanged for run 2 and changed for run 3, bob the other way round. Each check
    # holds every stored supporter of its batch, in email order: run 3 waits for run 2 from its
    # first row on, and run 2 writes bob without waiting for run 3 (no deadlock, no failure)
    with apps["postgresql"].app_context():
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as setup:
        setup.execute(
            "INSERT INTO supporter (email, city, opted_in, last_run_id, import_digest, created_at, "
            "updated_at) VALUES ('ann@example.org', 'Boston', true, 1, 11, now(), now()), "
            "('bob@example.org', 'Austin', true, 1, 22, now(), now())"
        )
    with psycopg.connect(url) as first, psycopg.connect(url) as second:
        checked = UnchangedCheck(2).touch(
            first, UnchangedCheck.text([0, 1], ["ann@example.org", "bob@example.org"], ["11", "99"]), 2
        )
        assert (checked.touched, checked.unmatched, checked.again) == (1, [1], set())
        other: dict[str, Any] = {}

        def check_second() -> None:
            text = UnchangedCheck.text([0, 1], ["ann@example.org", "bob@example.org"], ["77", "22"])
            other["checked"] = UnchangedCheck(3).touch(second, text, 2)

        waiting = threading.Thread(target=check_second)
        waiting.start()
        time.sleep(0.3)
        assert waiting.is_alive()  # run 3 waits on ann, holding nothing run 2 needs
        upsert = StagedUpsert(["city"], 2, default_opted_in=True, plain_inserts=True, digests=True)
        written = upsert.write(
            first, upsert.stage([2], ["bob@example.org"], [["Reno"]], utcnow(), digests=["99"])
        )
        assert (written.updated, written.unchanged) == (1, 0)
        first.commit()
        waiting.join(timeout=10)
        # bob now holds run 2's record: neither is unchanged for run 3
        assert other["checked"].touched == 0 and other["checked"].unmatched == [0, 1]
        second.commit()
        rows = second.execute("SELECT email, city, last_run_id, import_digest FROM supporter ORDER BY email")
        # (run 3 held both rows, changing neither: their writes would have set its run)
        assert rows.fetchall() == [("ann@example.org", "Boston", 2, 11), ("bob@example.org", "Reno", 2, 99)]


def test_a_stored_supporter_whose_new_record_is_rejected_is_not_touched_alike(apps, tmp_path):
    # the check holds cy's row while it validates cy's new record, a bad ZIP: rejected, cy keeps
    # the run that last imported it (Supporter Delete and rollbacks go by it), as on SQLite
    bad_zip = FIRST.replace("Denver,CO,80202", "Denver,CO,8020")
    *_, rejected = on_both(apps, tmp_path, [(FIRST, ALL), (bad_zip, ALL)])
    assert rejected["counts"]["rejected"] == 1 and rejected["counts"]["unchanged"] == 3
    with apps["postgresql"].app_context():
        assert Supporter.query.filter_by(email="cy@example.org").one().last_run_id != rejected["run_id"]
