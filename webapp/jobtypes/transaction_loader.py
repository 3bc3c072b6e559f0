"""The batch loop of Transaction Data Import: each slice of lines parsed (every problem of a line
kept), checked against the stored transactions and supporters, then written in bulk — supporters
created and updated, what changed recorded in SupporterChange, the transactions inserted — with a
commit per batch carrying its counts and checkpoint.

A line is rejected with all its reasons joined. A transaction id repeated in the file is
rejected on its later lines (the first line with it wins, valid or not, within a slice; across
slices the earlier one is already stored by this run). Another import storing the same
(source, transaction id) between this run's lookup and its insert fails the batch on the unique
key; Retry continues from the checkpoint and rejects the line as already stored.

SupporterChange, one row per (run, supporter), for the rollback: `created` for a supporter this
run created (nothing more is kept: its rollback deletes it; `before` and `after` stay {});
otherwise `before` holds each changed field's stored value from before this run first changed
it and `after` the last value this run wrote. A later batch adds fields to `before` and never
replaces one already there, so a retry or a resume, which sees the values this run already
wrote, leaves the original values alone."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from webapp.csvfiles import RecordBatch, iter_record_batches
from webapp.errors import JobError
from webapp.extensions import db
from webapp.jobtypes import fields
from webapp.jobtypes.bulk import (
    dialect,
    driver_connection,
    executemany,
    fetchall,
    placeholders,
    rare_collections,
    sqlite_bulk_writes,
    timestamp,
)
from webapp.jobtypes.importer import (
    CHECKPOINT_PAGES,
    LOOKUP_SLICE,
    PAGE_CACHE_KIB,
    READ_SIZE,
    ErasedCheck,
    Parsed,
)
from webapp.jobtypes.transaction_lines import Line, LineParser
from webapp.models.base import utcnow
from webapp.models.people import CREATOR_KEPT
from webapp.models.runs import Run
from webapp.rules.clock import to_local
from webapp.rules.countries import DEFAULT as DEFAULT_COUNTRY
from webapp.rules.currencies import DEFAULT as DEFAULT_CURRENCY

if TYPE_CHECKING:
    from webapp.engine.context import RunContext

TRANSACTION_COLUMNS = (
    "supporter_id, amount, currency, received_on, payment_method, kind, appeal, source, "
    "external_id, tax_deductible, run_id, owner_id, created_at"
)
COPY_TRANSACTIONS = f"COPY money_transaction ({TRANSACTION_COLUMNS}) FROM STDIN"


def _json_safe(value: Any) -> Any:
    """A stored value as SupporterChange keeps it (numbers and dates as text, None kept)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _loaded(value: Any) -> dict[str, Any]:
    """A JSON column as the driver returns it (SQLite: text; PostgreSQL: already parsed)."""
    if isinstance(value, str):
        return json.loads(value)
    return dict(value or {})


class TransactionLoader:
    """One Transaction Data Import run's batch loop."""

    def __init__(
        self, ctx: RunContext, params: dict[str, Any], default_country: str = DEFAULT_COUNTRY
    ) -> None:
        self.ctx, self.params = ctx, params
        self.run_id, self.owner_id = ctx.run.id, ctx.run.owner_id
        self.source: str = params["source"]
        self.match_by: str = params.get("match_by", "email")
        self.create_unknown = params.get("unknown", "create") == "create"
        self.parser = LineParser(
            params["mapping"],
            match_by=self.match_by,
            default_currency=params.get("default_currency") or DEFAULT_CURRENCY,
            default_country=default_country,
            today=to_local(utcnow(), ctx.config["TIMEZONE"]).date().isoformat(),
            tz_name=ctx.config["TIMEZONE"],
        )
        self.at, self.profile = self.parser.at, self.parser.profile
        self.normalisers = [fields.stored_normaliser(name) for name in self.profile]
        # the supporter columns a line may change: its profile, and its external id when
        # supporters are matched by email (matched by external id, the email is never changed)
        self.written = [*self.profile, *(["external_id"] if self._updates_external_id else [])]
        self.written_normalisers = [*self.normalisers, *([None] if self._updates_external_id else [])]
        self.batch_size = ctx.config["IMPORT_BATCH_SIZE"]
        self.erased = ErasedCheck(ctx, readd=bool(params.get("readd_deleted")))
        self.insert_transaction_sql = (
            f"INSERT INTO money_transaction ({TRANSACTION_COLUMNS}) VALUES ({placeholders(13)})"
        )
        inserted = [
            "email",
            "external_id",
            *self.profile,
            "opted_in",
            "last_run_id",
            "created_at",
            "updated_at",
        ]
        # a supporter stored by another import since the lookup is left alone (and found next)
        self.insert_supporter_sql = (
            f"INSERT INTO supporter ({', '.join(inserted)}) VALUES ({placeholders(len(inserted))}) "
            "ON CONFLICT DO NOTHING"
        )
        sets = ", ".join(f"{name} = ?" for name in [*self.written, "last_run_id", "updated_at"])
        self.update_supporter_sql = f"UPDATE supporter SET {sets}, {CREATOR_KEPT} WHERE id = ?"

    @property
    def _updates_external_id(self) -> bool:
        return self.match_by == "email" and "external_id" in self.at

    # -- the loop ---------------------------------------------------------------------------

    def _imported_before(self) -> Run | None:
        """An earlier run of this job that stored some of its file's gifts."""
        run = self.ctx.run
        return db.session.execute(
            select(Run)
            .where(Run.job_id == run.job_id, Run.id != run.id, Run.created > 0)
            .order_by(Run.id)
            .limit(1)
        ).scalar()

    def run(self) -> None:
        ctx = self.ctx
        done = ctx.checkpoint.get("records", 0)
        if done:
            ctx.log(f"Resuming after line {done:,} of data: the lines before it were already imported.")
        elif "transaction_id" not in self.at:
            if (earlier := self._imported_before()) is not None:
                raise JobError(
                    f"its file was imported by run #{earlier.number} already, and with no column mapped "
                    "to External transaction id nothing tells its gifts from new ones: they would all "
                    "be stored twice. If they really are new gifts, upload the file as a new import."
                )
            ctx.log(
                "No column is mapped to External transaction id: nothing tells a gift imported before "
                "from a new one, so running this job again imports its gifts again."
            )
        slices = -(-self.batch_size // READ_SIZE)
        batches = iter_record_batches(
            self.params["path"],
            self.params["encoding"],
            self.params["delimiter"],
            -(-self.batch_size // slices),
            skip=1 + done,
        )  # the header, then what was imported before
        counts: Counter[str] = Counter()
        with sqlite_bulk_writes(PAGE_CACHE_KIB, CHECKPOINT_PAGES), rare_collections():
            for batch in batches:
                done += len(batch)
                counts.update(self.write_slice(batch))
                del batch
                if counts["checked"] >= self.batch_size:
                    ctx.commit_batch(done=done, checkpoint={"records": done}, **counts)
                    counts.clear()
            if counts:
                ctx.commit_batch(done=done, checkpoint={"records": done}, **counts)

    def write_slice(self, batch: RecordBatch) -> dict[str, int]:
        """Parse, check and write one slice of lines (in the open transaction); its counts."""
        lines = self.parser.parse(batch)
        self.check_erased(lines)
        self.check_transaction_ids(lines)
        stored = self.match_supporters(lines)
        rejected = 0
        for line in lines:
            if line.problems:
                rejected += 1
                self.ctx.reject(line.line, f"line {line.line}: {fields.problems_text(line.problems)}")
        valid = [line for line in lines if not line.problems]
        created, lost = self.create_supporters(valid)
        for line in lost:
            self.ctx.reject(line.line, f"line {line.line}: {line.problems[0]}")
        valid = [line for line in valid if not line.problems]
        updated = self.update_supporters(valid, {row[0]: list(row[4:]) for row in stored.values()})
        self.insert_transactions(valid)
        return {
            "checked": len(lines),
            "created": len(valid),
            "skipped": created,
            "updated": updated,
            "rejected": rejected + len(lost),
        }

    # -- checks against what is stored ------------------------------------------------------

    def check_erased(self, lines: list[Line]) -> None:
        """A line whose email belongs to a supporter deleted on request is rejected, unless the
        job says to re-add them (importer.ErasedCheck, as the supporter import does)."""
        emailed = [index for index, line in enumerate(lines) if line.email is not None]
        if not emailed:
            return
        emails = [lines[index].email or "" for index in emailed]
        parsed = Parsed([lines[index].line for index in emailed], emails, [emailed], [])
        if not self.erased.sort_out(parsed, self.erased.hashes(emails)):
            return
        kept = set(parsed.columns[0])
        for index, (_, problem) in zip(
            (index for index in emailed if index not in kept), parsed.invalid, strict=True
        ):
            lines[index].problems.append(str(problem))

    def check_transaction_ids(self, lines: list[Line]) -> None:
        """A transaction id already stored for the source, or on an earlier line of the file."""
        first: dict[str, int] = {}
        for line in lines:
            if line.transaction_id is None:
                continue
            if line.transaction_id in first:
                line.problems.append(
                    f"transaction id '{fields._shown(line.transaction_id)}' is repeated: "
                    f"line {first[line.transaction_id]} has it too"
                )
            else:
                first[line.transaction_id] = line.line
        stored = dict(
            self._lookup(
                "SELECT external_id, run_id FROM money_transaction WHERE source = ? AND external_id IN ({})",
                list(first),
                [self.source],
            )
        )
        for line in lines:
            if line.transaction_id is None or line.transaction_id not in stored:
                continue
            if first[line.transaction_id] == line.line:
                shown = fields._shown(line.transaction_id)
                if stored[line.transaction_id] == self.run_id:
                    line.problems.append(f"transaction id '{shown}' appears on an earlier line of this file")
                else:
                    line.problems.append(f"transaction id '{shown}' is already stored for {self.source}")

    def match_supporters(self, lines: list[Line]) -> dict[str, tuple[Any, ...]]:
        """Give each line its supporter (or mark it to create one), or the reason it has none;
        the stored supporters found, by key (as `stored` gives them)."""
        key_of = attrgetter("email" if self.match_by == "email" else "external_id")
        keys = set(map(key_of, lines))
        keys.discard(None)
        stored = self.stored(self.match_by, list(keys))
        # who holds the other key already: a new external id or a new supporter's email
        other = "external_id" if self.match_by == "email" else "email"
        claiming = other == "email" or self._updates_external_id
        claimed_values = set(map(attrgetter(other), lines)) if claiming else set()
        claimed_values.discard(None)
        holders = dict(
            self._lookup(f"SELECT {other}, id FROM supporter WHERE {other} IN ({{}})", list(claimed_values))
        )
        claims: dict[str, str] = {}  # the other key's value -> the key of the line that has it
        for line in lines:
            key = key_of(line)
            if key is None:
                continue
            row = stored.get(key)
            if row is not None:
                line.supporter_id = row[0]
            elif not self.create_unknown:
                line.problems.append(
                    f"no supporter has the email {key}"
                    if self.match_by == "email"
                    else f"no supporter has the external id '{fields._shown(key)}'"
                )
                continue
            else:
                line.create = True
                if self.match_by == "external_id" and line.email is None:
                    line.problems.append("email is missing: a new supporter needs one")
            if claiming:
                self._check_claim(line, key, row, holders, claims)
        return stored

    def _check_claim(
        self,
        line: Line,
        key: str,
        row: tuple[Any, ...] | None,
        holders: dict[str, int],
        claims: dict[str, str],
    ) -> None:
        """The line's other key (matched by email: the external id it would set; matched by
        external id: a new supporter's email) must not belong to another supporter."""
        if self.match_by == "email":
            value = line.external_id if self._updates_external_id else None
            if value is None:
                return
            holder = holders.get(value)
            if (holder is not None and (row is None or holder != row[0])) or claims.get(value, key) != key:
                line.problems.append(
                    f"external supporter id '{fields._shown(value)}' belongs to another supporter"
                )
                return
        else:
            value = line.email if line.create else None
            if value is None:
                return
            if value in holders or claims.get(value, key) != key:
                line.problems.append(f"{value} belongs to another supporter (with another external id)")
                return
        if not line.problems:  # a line rejected for another reason claims nothing
            claims[value] = key

    def _key(self, line: Line) -> str | None:
        return line.email if self.match_by == "email" else line.external_id

    def stored(self, column: str, keys: list[str]) -> dict[str, tuple[Any, ...]]:
        """The stored supporters whose `column` is among `keys`, by it: (id, email, external_id,
        last_run_id, the written fields …)."""
        columns = ", ".join(["id", "email", "external_id", "last_run_id", *self.written])
        rows = self._lookup(f"SELECT {columns} FROM supporter WHERE {column} IN ({{}})", keys)
        at = 1 if column == "email" else 2
        return {row[at]: row for row in rows}

    @staticmethod
    def _lookup(sql: str, values: list[Any], before: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """fetchall(sql) for `values` in slices of bound values (its IN list is `{}`)."""
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(values), LOOKUP_SLICE):
            chunk = values[start : start + LOOKUP_SLICE]
            found += fetchall(sql.format(placeholders(len(chunk))), [*(before or []), *chunk])
        return found

    # -- writing ----------------------------------------------------------------------------

    def create_supporters(self, lines: list[Line]) -> tuple[int, list[Line]]:
        """Create the new supporters the lines name (one per key, with the values of all its
        lines, a later non-blank value winning); give each line its supporter id. Returns how
        many were created and the lines whose supporter could not be (another import stored one
        with the same email or external id meanwhile), each with its reason."""
        new: dict[str, list[Any]] = {}
        for line in lines:
            if not line.create:
                continue
            key = self._key(line)
            assert key is not None
            merged = new.get(key)
            if merged is None:
                new[key] = [line.email, line.external_id, *line.profile]
            else:
                for index, value in enumerate([line.email, line.external_id, *line.profile]):
                    if value is not None:
                        merged[index] = value
        if not new:
            return 0, []
        now = timestamp(utcnow())
        before = (
            fetchall("SELECT coalesce(max(id), 0) FROM supporter", [])[0][0]
            if dialect() == "sqlite"
            else None
        )
        executemany(
            self.insert_supporter_sql,
            [(*values, False, self.run_id, now, now) for values in new.values()],
        )
        stored = self.inserted(before, new) if before is not None else {}
        if len(stored) < len(new):
            stored.update(self.stored(self.match_by, [key for key in new if key not in stored]))
        created = [row[0] for key in new if (row := stored.get(key)) is not None and row[3] == self.run_id]
        changes = [(self.run_id, supporter_id, True, "{}", "{}") for supporter_id in created]
        executemany(
            'INSERT INTO supporter_change (run_id, supporter_id, created, "before", "after") '
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, supporter_id) DO NOTHING",
            changes,
        )
        lost = []
        for line in lines:
            if line.create:
                row = stored.get(self._key(line) or "")
                if row is None:
                    line.problems.append(
                        "the supporter could not be created: another import stored one like it"
                    )
                    lost.append(line)
                else:
                    line.supporter_id = row[0]
        return len(changes), lost

    def inserted(self, before: int, new: dict[str, list[Any]]) -> dict[str, tuple[Any, ...]]:
        """On SQLite, the supporters this run just inserted for the keys `new`, read by one range
        read of the ids after `before` (the largest id before the insert) instead of a lookup per
        key; shaped as `stored` gives them (id, email, external_id, last_run_id). A key missing
        here (another import stored it first, or its id is not after `before`) is looked up."""
        at = 1 if self.match_by == "email" else 2
        rows = fetchall("SELECT id, email, external_id, last_run_id FROM supporter WHERE id > ?", [before])
        return {row[at]: row for row in rows if row[3] == self.run_id and row[at] in new}

    def update_supporters(self, lines: list[Line], current: dict[int, list[Any]]) -> int:
        """Write the mapped fields of matched supporters where a value differs (blank cells
        keep what is stored), and what changed into SupporterChange; the number of supporters
        changed for the first time in this run. `current`: the written fields of the matched
        supporters as the slice's lookup read them (in this transaction, before any write)."""
        if not self.written:
            return 0
        matched: dict[int, list[Line]] = {}
        for line in lines:
            if not line.create and line.supporter_id is not None:
                matched.setdefault(line.supporter_id, []).append(line)
        if not matched:
            return 0
        now = timestamp(utcnow())
        updates, changed = [], {}
        normalisers = self.written_normalisers if any(self.written_normalisers) else None
        with_id = self._updates_external_id
        for supporter_id, its_lines in matched.items():
            stored = current.get(supporter_id)
            if stored is None:  # deleted since the lookup: its gifts are kept
                continue
            if normalisers is not None:
                stored = [
                    value if normalise is None else normalise(value)
                    for value, normalise in zip(stored, normalisers, strict=True)
                ]
            merged = list(stored)
            for line in its_lines:
                values = [*line.profile, line.external_id] if with_id else line.profile
                if None not in values:
                    merged[:] = values
                    continue
                for index, value in enumerate(values):
                    if value is not None:
                        merged[index] = value
            if merged != stored:
                updates.append((*merged, self.run_id, now, supporter_id))
                changed[supporter_id] = {
                    name: (_json_safe(old), _json_safe(new))
                    for name, old, new in zip(self.written, stored, merged, strict=True)
                    if old != new
                }
        executemany(self.update_supporter_sql, updates)
        return self.record_changes(changed)

    def record_changes(self, changed: dict[int, dict[str, tuple[Any, Any]]]) -> int:
        """Keep what this batch changed per supporter in SupporterChange (see the module
        docstring); the number of supporters without a row for this run before."""
        if not changed:
            return 0
        known = {
            row[0]: row[1:]
            for row in self._lookup(
                'SELECT supporter_id, id, created, "before", "after" FROM supporter_change '
                "WHERE run_id = ? AND supporter_id IN ({})",
                list(changed),
                [self.run_id],
            )
        }
        inserts, updates = [], []
        for supporter_id, fields_changed in changed.items():
            before = {name: old for name, (old, _) in fields_changed.items()}
            after = {name: new for name, (_, new) in fields_changed.items()}
            row = known.get(supporter_id)
            if row is None:
                inserts.append((self.run_id, supporter_id, False, json.dumps(before), json.dumps(after)))
                continue
            change_id, created, had_before, had_after = row
            if created:  # created by this run: its rollback deletes it, nothing more is kept
                continue
            merged_before = {**before, **_loaded(had_before)}  # the first change wins
            merged_after = {**_loaded(had_after), **after}
            updates.append((json.dumps(merged_before), json.dumps(merged_after), change_id))
        executemany(
            'INSERT INTO supporter_change (run_id, supporter_id, created, "before", "after") '
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, supporter_id) DO NOTHING",
            inserts,
        )
        executemany('UPDATE supporter_change SET "before" = ?, "after" = ? WHERE id = ?', updates)
        return len(inserts)

    def insert_transactions(self, lines: list[Line]) -> None:
        """Insert the valid lines' transactions: one executemany, or on PostgreSQL one COPY (in
        the session's transaction)."""
        now = timestamp(utcnow())
        source, run_id, owner_id = self.source, self.run_id, self.owner_id
        rows = [
            (
                line.supporter_id,
                line.amount,
                line.currency,
                line.received_on,
                line.payment_method,
                line.kind,
                line.appeal,
                source,
                line.transaction_id,
                line.tax_deductible,
                run_id,
                owner_id,
                now,
            )
            for line in lines
        ]
        if not rows:
            return
        if dialect() != "postgresql":
            executemany(self.insert_transaction_sql, rows)
            return
        try:
            with driver_connection().cursor() as cursor, cursor.copy(COPY_TRANSACTIONS) as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as error:
            raise DBAPIError.instance(COPY_TRANSACTIONS, None, error, psycopg.Error) from error
