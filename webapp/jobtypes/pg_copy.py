"""An import's writes on PostgreSQL. A batch of validated records, in COPY's text format and in
email order, is COPYed straight into supporter while its emails are all new (a first import),
else into a temporary staging table from which one statement upserts supporter.

What it buys: a few round trips a batch instead of one a row (psycopg's executemany, ~9k rows/s);
bench/import_bench.py --postgres measures it against a plain COPY of the same rows. In email
order, each batch's entries go into the email index side by side (~15% less work for the
server than in file order), so a first import's supporter ids follow the file batch by batch,
in email order within a batch.

The upsert keeps the rules of Importer.upsert: a new email is inserted, a stored one updated
when a value changes (an empty cell keeps what is stored) and otherwise only touched
(last_run_id), an email stored earlier by this same run is reported back so that the importer
logs it, and another import storing one of these emails meanwhile is never a unique-key failure:
that row is merged on a second pass."""

from __future__ import annotations

import hashlib
import re
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from typing import Any

import psycopg
import xxhash
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from webapp.models.people import FIELDS_BY_NAME, Supporter

STAGE = "conveyor_import_stage"
CHECK = "conveyor_import_check"
EMAIL_CHARS = 255  # as supporter.email holds (a longer one is no stored email)
DIGEST_TRIGGER = "supporter_forget_import_digest"  # (migration 4c7d1e9a2b63)
PASSES = 5  # statements per write at most: a second one only when another import raced us
SAVEPOINTS = 32  # at most in one transaction: over 64 subtransactions slow every session down
NULL = "\\N"  # COPY's text format: an empty value, and the escapes of the four it cannot hold
_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_BOOLS = {True: "t", False: "f", None: NULL}


def _texts(values: list[Any]) -> list[str]:
    """A column of text values (None = empty) as COPY's text format writes them."""
    try:
        joined = "".join(values)  # the common case: no value is empty
    except TypeError:
        present = [value for value in values if value is not None]
        if _SPECIAL.search("".join(present)):
            present = [value.translate(_ESCAPES) for value in present]
        texts = iter(present)
        return [NULL if value is None else next(texts) for value in values]
    return [value.translate(_ESCAPES) for value in values] if _SPECIAL.search(joined) else values


@dataclass
class Staged:
    """Records (unique emails) in COPY's text format, in email order: the mapped fields of each.
    `lines` and `emails` are in file order; `maybe_again`: those of the emails this run may
    have written before, looked up as they are written (None: any of them may have been)."""

    records: list[str]
    lines: list[int]
    emails: list[str]
    now: datetime  # its created_at / updated_at
    complete: bool  # no record leaves a column that cannot be empty empty
    maybe_again: list[str] | None = None
    _text: str | None = field(default=None, repr=False)

    def text(self) -> str:
        """The records as COPY reads them (made once)."""
        if self._text is None:
            self._text = "\n".join(self.records) + "\n"
        return self._text

    @classmethod
    def joined(cls, parts: list[Staged]) -> Staged | None:
        """A batch's slices as one write, in email order, with the newest `now` of them and its
        text made (by the thread that validates, while the writer writes the batch before);
        None when an email is in two of them: then each is written in turn, as on SQLite."""
        if len(parts) == 1:
            parts[0].text()
            return parts[0]
        emails = [email for part in parts for email in part.emails]
        if len(set(emails)) != len(emails):
            return None
        records = [record for part in parts for record in part.records]
        records.sort()  # (each part is sorted already: this merges them)
        one = cls(
            records=records,
            lines=[line for part in parts for line in part.lines],
            emails=emails,
            now=max(part.now for part in parts),
            complete=all(part.complete for part in parts),
            maybe_again=(
                None
                if any(part.maybe_again is None for part in parts)
                else [email for part in parts for email in part.maybe_again or ()]
            ),
        )
        one.text()
        return one


class RecordDigests:
    """63-bit digests of CSV records as read (xxh3 under a seed from the deployment's secret,
    the import's mapping and the rules that validate it): equal digests, equal records. A
    record's fields are joined by SEPARATOR; only a record with exactly its width's separators
    (checkable) is compared with a stored digest, as then its text holds one list of fields."""

    SEPARATOR = "\x1f"

    def __init__(self, seed: bytes) -> None:
        self.seed = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big")

    def of(self, records: list[list[str]]) -> tuple[list[str], bool]:
        """Each record's digest, as text (~0.4 µs a record, C-level loops), and whether every
        record of them is checkable."""
        joined = list(map(self.SEPARATOR.join, records))
        widths = set(map(len, records))
        separators = "".join(joined).count(self.SEPARATOR)
        checkable = len(widths) == 1 and separators == len(records) * (widths.pop() - 1)
        digests = map(xxhash.xxh3_64_intdigest, map(str.encode, joined), repeat(self.seed))
        return list(map(str, map(int.__rshift__, digests, repeat(1)))), checkable  # (BIGINT is signed)


@dataclass
class Checked:
    """What UnchangedCheck.touch found among a batch's records (positions in the batch)."""

    touched: int  # records stored as they are: their supporters were only touched
    unmatched: list[int]  # the others, to validate and write
    again: set[int]  # of those, the emails this run stored already (a line before wins no more)


class UnchangedCheck:
    """A batch's records against the digests their supporters keep (Supporter.import_digest):
    a supporter whose stored record is the same as the one read is only touched (last_run_id),
    as an unchanged one is after validation, and the record is not validated again. A re-import
    of an unchanged file then does about half of Python's work a record.

    The check updates every stored supporter of the batch in email order, a changed one without
    changing it: the batch's write then only updates rows its transaction holds already, and
    two imports sharing supporters take them in one order (neither waits for the other in a
    circle). A supporter this run wrote already is left alone: its record is unmatched, and
    reported `again`, exactly (the statement looks at each unmatched email)."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        # (email as supporter.email is, or PostgreSQL's planner reads all of supporter for a batch)
        email = Supporter.__table__.c.email.type.compile(dialect=postgresql.dialect())
        self.prepare_sql = (
            f"CREATE TEMP TABLE IF NOT EXISTS {CHECK} (email {email}, pos integer, import_digest bigint) "
            "ON COMMIT DELETE ROWS"
        )
        self.copy_sql = f"COPY {CHECK} (email, pos, import_digest) FROM STDIN"
        # what it found, with as little work as it can: the records it did not touch (new
        # emails, and those this run wrote already) are looked for only when there are some
        self.touch_sql = (
            "WITH touched AS ("
            # (a changed one keeps its last_run_id, which its write sets, unless its record
            # turns out invalid: as on SQLite, a supporter is never touched by a rejected line)
            "UPDATE supporter o SET last_run_id = CASE WHEN o.import_digest IS NOT DISTINCT FROM "
            "c.import_digest THEN %(run)s ELSE o.last_run_id END, "
            "created_run_id = CASE WHEN o.import_digest IS NOT DISTINCT FROM c.import_digest "
            f"THEN COALESCE(o.created_run_id, o.last_run_id) ELSE o.created_run_id END FROM {CHECK} c "
            "WHERE o.email = c.email AND o.last_run_id IS DISTINCT FROM %(run)s "
            "RETURNING c.pos, o.import_digest IS NOT DISTINCT FROM c.import_digest AS same), "
            f"untouched AS MATERIALIZED (SELECT c.pos, c.email FROM {CHECK} c "
            "WHERE NOT EXISTS (SELECT FROM touched t WHERE t.pos = c.pos)), "
            "counted AS (SELECT count(*) FILTER (WHERE same) AS same, count(*) AS touched, "
            "array_agg(pos) FILTER (WHERE NOT same) AS changed FROM touched) "
            "SELECT same, changed, "
            "CASE WHEN touched < %(count)s THEN (SELECT array_agg(pos) FROM untouched) END, "
            # (the statement's snapshot: last_run_id as it was before the touch above)
            "CASE WHEN touched < %(count)s THEN (SELECT array_agg(u.pos) FROM untouched u "
            "JOIN supporter o ON o.email = u.email WHERE o.last_run_id = %(run)s) END "
            "FROM counted"
        )
        self.prepared: weakref.WeakSet[Any] = weakref.WeakSet()

    @staticmethod
    def available(connection: Any) -> bool:
        """Whether the database forgets a digest when a supporter changes otherwise (its schema
        came from the migrations): without that no digest may be trusted, nor written."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT FROM pg_trigger "
                "WHERE tgname = %s AND tgrelid = 'supporter'::regclass)",
                (DIGEST_TRIGGER,),
            )
            return bool(cursor.fetchone()[0])

    @staticmethod
    def text(positions: list[int], emails: list[str], digests: list[str]) -> str:
        """The records to check, in COPY's text format and in email order: email as read
        (stripped, lower-cased, as validation makes it; at most EMAIL_CHARS long), position,
        digest. In email order, the index is read page after page, and two imports lock the
        supporters they share in the same order (neither waits for the other in a circle)."""
        fields = (_texts(emails), map(str, positions), digests)
        return "\n".join(sorted(map("\t".join, zip(*fields, strict=True)))) + "\n"

    def touch(self, connection: Any, text: str, count: int) -> Checked:
        """Touch the supporters whose stored record is the one read (in the open transaction)."""
        params = {"run": self.run_id, "count": count}
        try:
            with connection.cursor() as cursor:
                if connection not in self.prepared:
                    cursor.execute(self.prepare_sql)
                    self.prepared.add(connection)
                with cursor.copy(self.copy_sql) as copy:
                    copy.write(text)
                cursor.execute(self.touch_sql, params)
                touched, changed, untouched, again = cursor.fetchone()
        except psycopg.Error as error:
            raise DBAPIError.instance(None, params, error, psycopg.Error) from error
        unmatched = sorted([*(changed or ()), *(untouched or ())])
        if touched + len(unmatched) != count:
            raise RuntimeError("the unchanged check lost records")  # (never: each is one or the other)
        return Checked(touched, unmatched, set(again or ()))


@dataclass
class Written:
    """What one write did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    again: list[tuple[int, str]] = field(default_factory=list)  # (line, email) stored earlier by this run


class StagedUpsert:
    """Write staged records: COPY them into supporter when their emails are all new, else COPY
    them into the staging table and upsert supporter from there."""

    def __init__(
        self, names: list[str], run_id: int, *, default_opted_in: bool, plain_inserts: bool, digests: bool
    ) -> None:
        """`plain_inserts`: a slice of new emails only may be COPYed in a savepoint (a
        subtransaction: leave it False when a transaction holds more than SAVEPOINTS slices).
        `digests`: each record comes with its RecordDigests digest, stored with it."""
        self.run_id = run_id
        self.plain_inserts = plain_inserts
        table = Supporter.__table__
        dialect = postgresql.dialect()
        fields = ["email", *(["import_digest"] if digests else []), *names]
        added = ["last_run_id", "created_at", "updated_at"]
        self.default_opted_in = default_opted_in
        if default_opted_in:
            added.append("opted_in")
        # a temporary table of the connection (whichever pooled one the write gets), one per
        # set of fields, made once per connection and run: no catalog rows written and deleted
        # again for every batch, and no round trip for it (each one waits for Python's GIL in
        # the writer thread: ~6 ms). ON COMMIT DELETE ROWS empties it in place at each commit;
        # DELETE empties it between the writes of one transaction
        stage_columns = ", ".join(f"{name} {table.c[name].type.compile(dialect=dialect)}" for name in fields)
        stage = f"{STAGE}_{hashlib.sha1(stage_columns.encode()).hexdigest()[:10]}"
        self.prepare_sql = f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({stage_columns}) ON COMMIT DELETE ROWS"
        self.empty_sql = f"DELETE FROM {stage}"
        # the connections the table was made on, by this run: a transaction of the run that
        # rolled back (and took the table with it) ends the run
        self.prepared: weakref.WeakSet[Any] = weakref.WeakSet()
        self.copy_stage_sql = f"COPY {stage} ({', '.join(fields)}) FROM STDIN"
        # a write whose emails are all new (every batch of a first import) goes straight into
        # supporter, in a savepoint: the first stored email it meets undoes it and the write is
        # upserted instead. Half the server's work of an INSERT … ON CONFLICT from the staging
        # table, which looks each email up first and confirms each row it inserts
        self.copy_supporter_sql = f"COPY supporter ({', '.join(fields + added)}) FROM STDIN"
        # columns that cannot be empty (opted_in): a record leaving one empty is an update, or
        # else a failure as on SQLite; it never meets a stored row's key as an insert
        # (PostgreSQL refuses the empty value before it looks at the key)
        self.required = [i for i, name in enumerate(names) if not table.c[name].nullable]
        self.bools = {i for i, name in enumerate(names) if FIELDS_BY_NAME[name].kind == "bool"}

        merged = [f"COALESCE(s.{name}, o.{name})" for name in names]
        # as Importer.merge decides: the merged values against the stored ones
        changed = (
            f"ROW({', '.join(merged)}) IS DISTINCT FROM ROW({', '.join('o.' + name for name in names)})"
            if names
            else "false"
        )
        sets = [f"{name} = {value}" for name, value in zip(names, merged, strict=True)]
        sets += ["import_digest = s.import_digest"] if digests else []
        sets += [
            "last_run_id = %(run)s",
            "created_run_id = COALESCE(o.created_run_id, o.last_run_id)",
            f"updated_at = CASE WHEN {changed} THEN %(now)s ELSE o.updated_at END",
        ]

        values = [f"s.{name}" for name in fields] + ["%(run)s", "%(now)s", "%(now)s", "false"][: len(added)]

        def insert(where: str = "") -> str:
            return (
                f"INSERT INTO supporter ({', '.join(fields + added)}) SELECT {', '.join(values)} "
                f"FROM {stage} s {where} ON CONFLICT (email) DO NOTHING"
            )

        def update(where: str = "", emails: bool = True) -> str:
            # o.<name> in SET is the stored value; a row another import changes meanwhile is
            # merged with its new version (PostgreSQL re-checks it). A changed row takes this
            # write's updated_at: RETURNING (the new row) tells changed ones apart by it
            return (
                f"UPDATE supporter o SET {', '.join(sets)} "
                f"FROM {stage} s WHERE o.email = s.email {where} "
                f"RETURNING {'o.email, ' if emails else ''}o.updated_at = %(now)s AS changed"
            )

        # and the emails this run stored already, as the statement found them: among those
        # listed (Staged.maybe_again), or among all the records
        listed = (
            "SELECT array_agg(email) FROM supporter WHERE email = ANY(%(maybe)s) AND last_run_id = %(run)s"
        )
        every = (
            f"SELECT array_agg(o.email) FROM {stage} m JOIN supporter o ON o.email = m.email "
            "WHERE o.last_run_id = %(run)s"
        )

        def counts(met: str) -> str:
            return (
                "SELECT (SELECT count(*) FROM inserted), count(*) FILTER (WHERE changed), "
                f"count(*) FILTER (WHERE NOT changed), ({met}) FROM updated"
            )

        not_updated = "WHERE NOT EXISTS (SELECT FROM updated u WHERE u.email = s.email)"
        # the upsert: one statement, two orders. The sub-statements of a WITH see the table as
        # it was before the statement, so neither touches a row the other wrote, and the second
        # only looks at the records the first did not store. A slice of mostly new emails
        # inserts first (no lookup for them), one of mostly stored emails updates first (no
        # attempted insert for them)
        complete = " AND ".join(f"s.{names[i]} IS NOT NULL" for i in self.required)
        insert_first = (
            f"WITH inserted AS ({insert(f'WHERE {complete}' if complete else '')} RETURNING email), "
            f"updated AS ({update('AND NOT EXISTS (SELECT FROM inserted i WHERE i.email = s.email)')}) "
        )
        update_first = f"WITH updated AS ({update()}), inserted AS ({insert(not_updated)} RETURNING 1) "
        # a write of stored emails only: no insert at all, unless the update leaves some
        # records out (then the pass below inserts them)
        update_only = f"WITH updated AS ({update(emails=False)}), inserted AS (SELECT WHERE false) "
        # each as it looks up the emails met again: listed ones (False), all (True)
        self.insert_first_sql = {False: insert_first + counts(listed), True: insert_first + counts(every)}
        self.update_first_sql = {False: update_first + counts(listed), True: update_first + counts(every)}
        self.update_only_sql = {False: update_only + counts(listed), True: update_only + counts(every)}
        # the records the passes before left out: those another import stored after the
        # statement's snapshot; every row this run wrote already has its id
        self.again_sql = (
            f"WITH updated AS ({update('AND o.last_run_id IS DISTINCT FROM %(run)s')}), "
            f"inserted AS ({insert(not_updated)} RETURNING 1) {counts(listed)}"
        )
        self.created = (1, 1)  # of the last write: (new emails, records)

    def stage(
        self,
        lines: list[int],
        emails: list[str],
        columns: list[list[Any]],
        now: datetime,
        maybe_again: list[str] | None = None,
        digests: list[str] | None = None,
    ) -> Staged:
        """A slice of records (unique emails) in COPY's text format, in email order (with their
        digests when the upsert stores them). Done by the thread that validates them: the
        writer thread then needs Python's GIL only briefly."""
        fields = [
            _texts(emails),
            *([digests] if digests is not None else []),
            *(
                [_BOOLS[value] for value in column] if i in self.bools else _texts(column)
                for i, column in enumerate(columns)
            ),
        ]
        # (each record starts with its email and a tab, below any character an email has)
        return Staged(
            records=sorted(map("\t".join, zip(*fields, strict=True))),
            lines=lines,
            emails=emails,
            now=now,
            complete=not any(None in columns[i] for i in self.required),
            maybe_again=maybe_again,
        )

    def write_all(self, connection: Any, parts: list[Staged], joined: Staged | None) -> Written:
        """Write a batch's staged slices: `joined` (Staged.joined of them) when there is one,
        else each slice in turn. What they did, together."""
        if joined is not None:
            return self.write(connection, joined)
        written = Written()
        for i, part in enumerate(parts):
            done = self.write(connection, part, first=i == 0)
            written.created += done.created
            written.updated += done.updated
            written.unchanged += done.unchanged
            written.again += done.again
        return written

    def write(self, connection: Any, staged: Staged, *, first: bool = True) -> Written:
        """Write staged records through `connection` (psycopg's, in the session's open
        transaction; `first`: its first write); return what it did. A database error is raised
        as SQLAlchemy raises it (the runner words its kind)."""
        params = {"run": self.run_id, "now": staged.now}
        records = len(staged.emails)
        written = Written()
        try:
            with connection.cursor() as cursor:
                all_new = self.created[0] == self.created[1]
                if self.plain_inserts and all_new and staged.complete and self.copy_all(cursor, staged):
                    written.created = records
                else:
                    if connection not in self.prepared:
                        cursor.execute(self.prepare_sql)
                        self.prepared.add(connection)
                    elif not first:
                        cursor.execute(self.empty_sql)
                    with cursor.copy(self.copy_stage_sql) as copy:
                        copy.write(staged.text())
                    self.upsert(cursor, params, staged, written)
        except psycopg.Error as error:
            raise DBAPIError.instance(None, params, error, psycopg.Error) from error
        self.created = (written.created, records)
        return written

    def copy_all(self, cursor: Any, staged: Staged) -> bool:
        """COPY every record into supporter; False (and nothing stored) when one is already."""
        cursor.execute(f"SAVEPOINT {STAGE}")
        try:
            with cursor.copy(self.copy_supporter_sql) as copy:
                # (a value's own line breaks are escaped: each one ends a record)
                copy.write(staged.text().replace("\n", self.added(staged.now) + "\n"))
        except psycopg.errors.UniqueViolation:
            cursor.execute(f"ROLLBACK TO SAVEPOINT {STAGE}; RELEASE SAVEPOINT {STAGE}")
            return False
        cursor.execute(f"RELEASE SAVEPOINT {STAGE}")
        return True

    def added(self, now: datetime) -> str:
        """What a new supporter adds to its record: last_run_id, created_at, updated_at (and
        opted_in when the import does not set it), in COPY's text format."""
        moment = f"{now:%Y-%m-%d %H:%M:%S.%f}"
        return f"\t{self.run_id}\t{moment}\t{moment}" + ("\tf" if self.default_opted_in else "")

    def upsert(self, cursor: Any, params: dict[str, Any], staged: Staged, written: Written) -> None:
        """Insert the new emails, update the stored ones; a pass again for those another
        import stored meanwhile."""
        records = len(staged.emails)
        created, last = self.created  # as the last write went
        if created == 0:
            statements = self.update_only_sql
        else:
            statements = self.insert_first_sql if created * 2 >= last else self.update_first_sql
        statement = statements[staged.maybe_again is None]
        params = {**params, "maybe": staged.maybe_again or []}
        for _ in range(PASSES):
            cursor.execute(statement, params)
            created, updated, unchanged, again = cursor.fetchone()
            written.created += created
            written.updated += updated
            written.unchanged += unchanged
            if again:
                met = set(again)
                pairs = zip(staged.lines, staged.emails, strict=True)
                written.again = [(line, email) for line, email in pairs if email in met]
            params["maybe"] = []  # (the passes after it see this run's own writes)
            if written.created + written.updated + written.unchanged == records:
                return
            statement = self.again_sql
        lines = staged.lines
        raise RuntimeError(f"supporters kept changing while lines {lines[0]}–{lines[-1]} were imported")
