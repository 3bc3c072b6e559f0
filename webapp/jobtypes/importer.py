"""The batch loop of User Data Import: CSV records validated column by column, then upserted
into supporters by email, a commit per batch with its counts and checkpoint."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from itertools import compress, repeat
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webapp import emails as email_rules
from webapp.csvfiles import RecordBatch, iter_record_batches
from webapp.jobtypes import fields, pg_copy
from webapp.jobtypes.bulk import (
    WriteBehind,
    dialect,
    driver_connection,
    execute,
    executemany,
    fetchall,
    placeholders,
    rare_collections,
    sqlite_bulk_writes,
    timestamp,
)
from webapp.jobtypes.pg_copy import (
    EMAIL_CHARS,
    SAVEPOINTS,
    Checked,
    RecordDigests,
    Staged,
    StagedUpsert,
    UnchangedCheck,
    Written,
)
from webapp.models.base import utcnow
from webapp.models.people import CREATOR_KEPT, EmailHasher, Supporter, email_key
from webapp.rules import countries
from webapp.rules.clock import to_local
from webapp.rules.countries import DEFAULT

if TYPE_CHECKING:
    from webapp.engine.context import RunContext

DUPLICATE_LOG_LIMIT = 100
LOOKUP_SLICE = 10_000  # bound values per IN (...) query: SQLite allows at most 32,766
PAGE_CACHE_KIB = 8 * 1024  # on SQLite: the default 2 MB misses too much of a large email index;
# measured at 1M rows, 8 MB beats both 2 MB and 24 MB (a larger cache also makes the peak RSS grow)
READ_SIZE = 5_000  # records validated and written at a time
CHECKPOINT_PAGES = 10_000  # on SQLite: a WAL of up to ~40 MB between checkpoints while importing


@dataclass
class Parsed:
    """A batch's records after validation: the valid ones column by column, in file order."""

    lines: list[int]
    emails: list[str]
    columns: list[list[Any]]  # a list per mapped field: its values (None = leave as stored)
    invalid: list[tuple[int, fields.Invalid]]  # (line, problem)
    digests: list[str] | None = None  # per valid record, of the record as read (RecordDigests)

    def drop(self, indexes: set[int], reasons: list[str]) -> None:
        """Reject the records at these positions (in order), each with its reason."""
        positions = sorted(indexes)
        self.invalid += [
            (self.lines[i], fields.Invalid(reason)) for i, reason in zip(positions, reasons, strict=True)
        ]
        self.keep([i for i in range(len(self.emails)) if i not in indexes])

    def keep(self, indexes: list[int]) -> None:
        """Keep only the valid records at these positions."""
        self.lines = [self.lines[i] for i in indexes]
        self.emails = [self.emails[i] for i in indexes]
        self.columns = [[column[i] for i in indexes] for column in self.columns]
        if self.digests is not None:
            self.digests = [self.digests[i] for i in indexes]

    def rows(self) -> Iterator[tuple[int, str, tuple[Any, ...]]]:
        """(line, email, value per mapped field) per valid record."""
        values = zip(*self.columns, strict=True) if self.columns else repeat(())
        return zip(self.lines, self.emails, values, strict=False)


@dataclass
class SliceRead:
    """A slice read on PostgreSQL, until its batch is written: what to write and to log."""

    checked: int
    done: int  # records done once it is written
    invalid: list[tuple[int, fields.Invalid]]
    repeated: list[str]  # notes on the records it skips as repeated
    staged: Staged | None  # None: no valid record
    parsed: Parsed | None  # kept for the erased check (while some supporter was deleted)
    hashes: list[str] | None
    maybe_again: list[str] | None  # (Staged.maybe_again)


def staged_of(parts: list[SliceRead]) -> list[Staged]:
    """What the slices of a batch have to write."""
    return [part.staged for part in parts if part.staged is not None]


class Importer:
    """One import run's batch loop."""

    def __init__(
        self, ctx: RunContext, params: dict[str, Any], total: int, default_country: str = DEFAULT
    ) -> None:
        self.ctx, self.params, self.total = ctx, params, total
        self.run_id = ctx.run.id
        mapping: list[str] = params["mapping"]
        self.columns = [
            (i, name, *_converters(name)) for i, name in enumerate(mapping) if name and name != "email"
        ]
        self.email_index = mapping.index("email")
        self.names = [name for _, name, _, _ in self.columns]
        # a postal code is checked once its row's country is known: the row's, else the default
        self.default_country = default_country
        self.zip_at = self.names.index("zip") if "zip" in self.names else None
        self.country_at = self.names.index("country") if "country" in self.names else None
        self.normalisers = [
            (i, normalise)
            for i, name in enumerate(self.names)
            if (normalise := fields.stored_normaliser(name)) is not None
        ]
        self.width = len(mapping)
        self.batch_size = ctx.config["IMPORT_BATCH_SIZE"]
        self.duplicates_logged = 0
        select_cols = ", ".join(["id", "email", "last_run_id", *self.names])
        # ids from the email index first, then the rows by id: fewer scattered reads of the table
        self.lookup_sql = (
            f"SELECT {select_cols} FROM supporter WHERE id IN "
            "(SELECT id FROM supporter WHERE email IN ({}))"
        )
        insert_cols = ["email", *self.names, "last_run_id", "created_at", "updated_at"]
        if "opted_in" not in self.names:
            insert_cols.append("opted_in")
        # another import may store one of these emails between our lookup and our insert:
        # that row is left to the update path, never a unique-key failure (SQLite, PostgreSQL)
        self.insert_sql = (
            f"INSERT INTO supporter ({', '.join(insert_cols)}) "
            f"VALUES ({placeholders(len(insert_cols))}) "
            "ON CONFLICT (email) DO NOTHING"
        )
        sets = ", ".join(f"{name} = ?" for name in [*self.names, "last_run_id", "updated_at"])
        # (an insert leaves created_run_id empty: the first other write keeps who added it)
        self.update_sql = f"UPDATE supporter SET {sets}, {CREATOR_KEPT} WHERE id = ?"
        self.erased = ErasedCheck(ctx, readd=bool(params.get("readd_deleted")))

    def run(self) -> None:
        ctx = self.ctx
        done = ctx.checkpoint.get("records", 0)
        if done:
            ctx.log(f"Resuming after record {done:,}: the records before it were already imported.")
        # a batch (what one commit holds) is written in slices of at most READ_SIZE records:
        # the fewer commits the less of the email index each rewrites, the smaller the slices
        # the less memory, and the faster Python walks them
        slices = -(-self.batch_size // READ_SIZE)
        batches = iter_record_batches(
            self.params["path"],
            self.params["encoding"],
            self.params["delimiter"],
            -(-self.batch_size // slices),
            skip=1 + done,
        )  # the header, then what was imported before
        if dialect() == "postgresql":
            CopyingLoop(self, batches, done).run()
            return
        counts: Counter[str] = Counter()
        with sqlite_bulk_writes(PAGE_CACHE_KIB, CHECKPOINT_PAGES), rare_collections():
            for batch in batches:
                done += len(batch)
                counts.update(self.write_slice(batch))
                del batch  # before the next one is read: the records' memory is reused
                if counts["checked"] >= self.batch_size:
                    ctx.commit_batch(done=done, checkpoint={"records": done}, **counts)
                    counts.clear()
            if counts:
                ctx.commit_batch(done=done, checkpoint={"records": done}, **counts)

    def digest_seed(self) -> bytes:
        """What a record's digest depends on besides the record (RecordDigests): the deployment's
        secret, the rules that validate it, the mapping and the default country. Another
        mapping or a new version of the rules meets no stored digest: each record is validated."""
        parts = [self.ctx.config["SECRET_KEY"], _rules_fingerprint(), self.params["mapping"]]
        return json.dumps([*parts, self.default_country]).encode()

    def commit_written(self, parts: list[SliceRead], written: Written | None, touched: int = 0) -> None:
        """Log what a written batch's slices rejected, skipped and met again, slice by slice in
        file order as on SQLite; commit the batch with its counts (`touched`: the records it
        found unchanged before validation) and checkpoint."""
        counts: Counter[str] = Counter(unchanged=touched)
        again = written.again if written is not None else []
        met = 0
        for part in parts:
            for line, problem in part.invalid:
                self.ctx.reject(line, f"line {line}: {problem}")
            counts.update(self.skipped(part.checked, part.invalid, part.repeated))
            lines = part.staged.lines if part.staged is not None else []
            while met < len(again) and lines and again[met][0] <= lines[-1]:
                line, email = again[met]
                self.note_duplicate(f"line {line}: {email} appeared earlier in the file; this later row wins")
                met += 1
        if written is not None:
            counts.update(created=written.created, updated=written.updated, unchanged=written.unchanged)
        done = parts[-1].done
        self.ctx.commit_batch(done=done, checkpoint={"records": done}, **counts)

    def parse(self, values: list[str]) -> tuple[str, list[Any]]:
        """Validate one record into (email, values per mapped field; None = leave as stored)."""
        if len(values) != self.width:
            if len(values) > self.width:
                raise fields.Invalid(f"has {len(values)} fields but the header has {self.width}")
            values = values + [""] * (self.width - len(values))
        problems: list[tuple[int, str]] = []  # (column, problem): every one the record has
        email = values[self.email_index].strip()
        if not email:
            problems.append((self.email_index, "email is missing"))
        else:
            try:
                email = fields._email("email", email)
            except fields.Invalid as problem:
                problems.append((self.email_index, str(problem)))
        parsed: list[Any] = []
        for index, name, convert, _ in self.columns:
            raw = values[index].strip()
            try:
                parsed.append(convert(name, raw) if raw else None)
            except fields.Invalid as problem:
                problems.append((index, str(problem)))
                parsed.append(None)
        if self.zip_at is not None and parsed[self.zip_at] is not None:
            try:
                parsed[self.zip_at] = fields.postal_code(parsed[self.zip_at], self.country(parsed))
            except fields.Invalid as problem:
                problems.append((self.columns[self.zip_at][0], str(problem)))
        if problems:
            raise fields.Invalid(fields.problems_text([problem for _, problem in sorted(problems)]))
        return email, parsed

    def country(self, values: list[Any]) -> str:
        """The country of a record's postal code: its own (when mapped and valid), else the
        default."""
        own = None if self.country_at is None else values[self.country_at]
        return own or self.default_country

    def parse_batch(self, batch: RecordBatch, digests: list[str] | None = None) -> Parsed:
        """parse() for a whole batch. Columns are converted whole (see
        fields.column_converter_for); a batch with an invalid record, or a record with another
        number of fields than the header, goes through parse() record by record instead (which
        also words the reasons)."""
        if set(map(len, batch.records)) != {self.width}:
            return self.parse_each(batch, digests)
        columns = list(zip(*batch.records, strict=True))
        invalid = False

        def column(index: int, convert_all: Callable, convert: Callable) -> list[Any]:
            nonlocal invalid
            values = list(map(str.strip, columns[index]))
            result = convert_all(values)
            if result is None:
                try:
                    result = [convert(value) if value else None for value in values]
                except fields.Invalid:
                    invalid = True
            return result

        emails = column(self.email_index, fields.email_column, partial(fields._email, "email"))
        if invalid or None in emails:
            return self.parse_each(batch, digests)
        converted = []
        for index, name, convert, convert_all in self.columns:
            converted.append(column(index, partial(convert_all, name), partial(convert, name)))
            if invalid:
                return self.parse_each(batch, digests)
        if self.zip_at is not None:
            countries = (
                [code or self.default_country for code in converted[self.country_at]]
                if self.country_at is not None
                else [self.default_country] * len(converted[self.zip_at])
            )
            codes = fields.postal_codes(converted[self.zip_at], countries)
            if codes is None:
                return self.parse_each(batch, digests)
            converted[self.zip_at] = codes
        return Parsed(list(batch.lines), emails, converted, [], digests)

    def parse_each(self, batch: RecordBatch, digests: list[str] | None = None) -> Parsed:
        """parse() record by record, as parse_batch returns it."""
        lines, emails, rows, invalid, valid = [], [], [], [], []
        for i, (line, values) in enumerate(batch):
            try:
                email, row = self.parse(values)
            except fields.Invalid as problem:
                invalid.append((line, problem))
            else:
                lines.append(line)
                emails.append(email)
                rows.append(row)
                valid.append(i)
        columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in self.columns]
        kept = None if digests is None else [digests[i] for i in valid]
        return Parsed(lines, emails, columns, invalid, kept)

    def write_slice(self, batch: RecordBatch) -> dict[str, int]:
        """Validate and upsert records (in the open transaction); return their counts."""
        parsed = self.parse_batch(batch)
        self.erased.sort_out(parsed, self.erased.hashes(parsed.emails))
        counts = self.sort_out(parsed, len(batch))
        created, updated, unchanged = self.upsert(parsed)
        return {**counts, "created": created, "updated": updated, "unchanged": unchanged}

    def sort_out(self, parsed: Parsed, checked: int) -> dict[str, int]:
        """Reject a slice's invalid records and drop its repeated emails before it is written;
        return its counts so far."""
        for line, problem in parsed.invalid:
            self.ctx.reject(line, f"line {line}: {problem}")
        return self.skipped(checked, parsed.invalid, self.drop_repeated_emails(parsed))

    def skipped(self, checked: int, invalid: list[Any], repeated: list[str]) -> dict[str, int]:
        """Log the records a slice skips as repeated; the slice's counts so far."""
        for note in repeated:
            self.note_duplicate(note)
        return {"checked": checked, "skipped": len(repeated), "rejected": len(invalid)}

    def drop_repeated_emails(self, parsed: Parsed) -> list[str]:
        """Keep the last record of each email in the batch; the notes on the others (one each),
        for note_duplicate."""
        emails = parsed.emails
        if len(set(emails)) == len(emails):
            return []
        last: dict[str, int] = {}
        notes = []
        for i, email in enumerate(emails):
            if email in last:
                notes.append(
                    f"line {parsed.lines[last[email]]}: skipped, {email} appears "
                    f"again on line {parsed.lines[i]} and the later row wins"
                )
            last[email] = i
        parsed.keep(sorted(last.values()))
        return notes

    def upsert(self, parsed: Parsed) -> tuple[int, int, int]:
        """Insert new supporters, update changed ones, touch unchanged ones; return the counts."""
        if not parsed.emails:
            return 0, 0, 0
        existing = self.stored(parsed.emails)
        now = timestamp(utcnow())
        added = (self.run_id, now, now) if "opted_in" in self.names else (self.run_id, now, now, False)
        updates: list[tuple[Any, ...]] = []
        touched: list[int] = []
        if not existing:  # all new: the insert rows straight from the columns
            inserts = list(zip(parsed.emails, *parsed.columns, *map(repeat, added), strict=False))
        else:
            inserts = []
            for line, email, values in parsed.rows():
                stored = existing.get(email)
                if stored is None:
                    inserts.append((email, *values, *added))
                    continue
                if stored[2] == self.run_id:
                    self.note_duplicate(
                        f"line {line}: {email} appeared earlier in the file; this later row wins"
                    )
                self.merge(values, stored, now, updates, touched)
        created = len(inserts)
        if executemany(self.insert_sql, inserts) != created:
            # some emails were stored by another import since the lookup: update its rows
            again = self.stored([row[0] for row in inserts])
            width = len(self.names)
            for row in inserts:
                stored = again.get(row[0])
                if stored is not None and stored[2] != self.run_id:
                    created -= 1
                    self.merge(list(row[1 : 1 + width]), stored, now, updates, touched)
        executemany(self.update_sql, updates)
        for start in range(0, len(touched), LOOKUP_SLICE):
            ids = touched[start : start + LOOKUP_SLICE]
            execute(
                f"UPDATE supporter SET last_run_id = ?, {CREATOR_KEPT} "
                f"WHERE id IN ({placeholders(len(ids))})",
                [self.run_id, *ids],
            )
        return created, len(updates), len(touched)

    def merge(
        self,
        values: Any,
        stored: tuple[Any, ...],
        now: Any,
        updates: list[tuple[Any, ...]],
        touched: list[int],
    ) -> None:
        """A record for a stored supporter: an update when a value changes (empty cells keep
        what is stored), else a touch."""
        current = list(stored[3:])
        for index, normalise in self.normalisers:
            current[index] = normalise(current[index])
        merged = (
            list(values)
            if None not in values
            else [new if new is not None else old for new, old in zip(values, current, strict=True)]
        )
        if merged == current:
            touched.append(stored[0])
        else:
            updates.append((*merged, self.run_id, now, stored[0]))

    def stored(self, emails: list[str]) -> dict[str, tuple[Any, ...]]:
        """The stored supporters among `emails`, by email (looked up in slices of bound values)."""
        found = {}
        for start in range(0, len(emails), LOOKUP_SLICE):
            chunk = emails[start : start + LOOKUP_SLICE]
            for row in fetchall(self.lookup_sql.format(placeholders(len(chunk))), chunk):
                found[row[1]] = row
        return found

    def note_duplicate(self, message: str) -> None:
        """Log a duplicate email (the first hundred; then only a count)."""
        self.duplicates_logged += 1
        if self.duplicates_logged <= DUPLICATE_LOG_LIMIT:
            self.ctx.log(message)
        elif self.duplicates_logged == DUPLICATE_LOG_LIMIT + 1:
            self.ctx.log("More duplicate emails follow; only the first 100 are listed.")


@dataclass
class RawSlice:
    """A slice read on PostgreSQL, not yet validated: its records' digests, and whether they can
    be checked against the stored ones (RecordDigests.of; every record as wide as the header)."""

    batch: RecordBatch
    digests: list[str] | None
    checkable: bool


@dataclass
class CheckRead:
    """A batch read to be checked: its slices, how many of its records the check sends (`text`)
    and the positions of the others."""

    group: list[RawSlice]
    count: int
    unchecked: list[int]
    text: str


class CopyingLoop:
    """The batch loop on PostgreSQL. A writer thread writes a batch (its slices joined, in email
    order, pg_copy.StagedUpsert) while this thread reads, validates and stages the slices of
    the next one. The session and the run's rejections and log are touched only while the
    writer waits: a batch's are logged in file order, as on SQLite, and committed with it.

    While most records of a batch turn out unchanged (and for the first batch), the loop checks
    each batch against the stored digests first (pg_copy.UnchangedCheck): the unchanged
    supporters are touched by the database alone, and only the other records are validated and
    written. The next batch is read while the database checks."""

    def __init__(self, importer: Importer, batches: Iterator[RecordBatch], done: int) -> None:
        self.importer = importer
        digests = UnchangedCheck.available(driver_connection())
        self.upsert = StagedUpsert(
            importer.names,
            importer.run_id,
            default_opted_in="opted_in" not in importer.names,
            # a batch is one write (one savepoint), or a write a slice when an email is in two
            plain_inserts=-(-importer.batch_size // READ_SIZE) <= SAVEPOINTS,
            digests=digests,
        )
        self.check = UnchangedCheck(importer.run_id) if digests else None
        self.digester = RecordDigests(importer.digest_seed()) if digests else None
        self.checking = digests  # the first batch is checked; then each after a mostly unchanged one
        self.unchanged_before = False  # the last batch checked was mostly unchanged
        self.slices = map(self.raw, batches)
        self.ahead: list[RawSlice] = []  # slices read already, to validate whole
        self.ahead_check: CheckRead | None = None  # the batch read while the one before was checked
        self.failure: Exception | None = None  # met while reading ahead: raised when its turn comes
        self.done = done
        self.reading: list[SliceRead] = []  # the slices of the batch being read
        self.read = 0  # records in them
        self.writing: list[tuple[list[SliceRead], int | None]] = []  # the batch being written, if any
        self.writer = WriteBehind()

    def run(self) -> None:
        with rare_collections(), self.writer:
            while True:
                if self.checking:
                    if not self.check_batch():
                        break
                    continue
                try:
                    raw = self.next_slice()  # read while the batch before is written
                except Exception:
                    self.collect()  # as on SQLite, the batches before the unreadable record stay
                    raise
                if raw is None:
                    break
                self.prepare(raw)
                del raw  # before the next one is read: its records' memory is reused
                if self.read >= self.importer.batch_size:
                    whole = self.one_write()
                    self.collect()
                    self.start(whole)
            self.collect()
            if self.reading:
                self.start(self.one_write())
                self.collect()

    def raw(self, batch: RecordBatch) -> RawSlice:
        """A slice as read, with its records' digests when they are stored."""
        if self.digester is None:
            return RawSlice(batch, None, False)
        digests, checkable = self.digester.of(batch.records)
        return RawSlice(batch, digests, checkable and len(batch.records[0]) == self.importer.width)

    def next_slice(self) -> RawSlice | None:
        """The next slice: read ahead already, else from the file (None at its end)."""
        if self.ahead:
            return self.ahead.pop(0)
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        return next(self.slices, None)

    def take(self) -> list[RawSlice]:
        """The slices of the next batch (none at the end of the file)."""
        group: list[RawSlice] = []
        count = 0
        while count < self.importer.batch_size and (raw := self.next_slice()) is not None:
            group.append(raw)
            count += len(raw.batch)
        return group

    def read_check(self) -> CheckRead | None:
        """Read the next batch and make what its check sends (None at the end of the file)."""
        group = self.take()
        if not group:
            return None
        positions, emails, digests, unchecked = self.to_check(group)
        text = UnchangedCheck.text(positions, emails, digests) if positions else ""
        return CheckRead(group, len(positions), unchecked, text)

    def check_batch(self) -> bool:
        """Check a batch against the stored digests, then validate and write the records not
        found unchanged, and commit it; False at the end of the file."""
        read, self.ahead_check = self.ahead_check, None
        try:
            read = read or self.read_check()
        except Exception:
            self.collect()
            raise
        if read is None:
            return False
        self.collect()  # the batch before is committed: this one's touches go with its commit
        assert self.check is not None
        group, unchecked = read.group, read.unchecked
        checked = Checked(0, [], set())
        if read.count:
            self.writer.start(self.check.touch, driver_connection(), read.text, read.count)
            if self.unchanged_before:  # (a first import reads no batch ahead: less memory)
                try:
                    self.ahead_check = self.read_check()  # the next batch, while this one is checked
                except Exception as failure:  # (raised once this batch is committed, as on SQLite)
                    self.failure = failure
            checked = self.writer.result()
        unmatched = sorted([*checked.unmatched, *unchecked])
        offset = 0
        while group:
            raw = group.pop(0)  # (its records' memory is reused as soon as they are validated)
            size = len(raw.batch)
            end = bisect_left(unmatched, offset + size)
            mine = [position - offset for position in unmatched[:end]]
            del unmatched[:end]
            within = range(offset, offset + size)
            self.prepare(
                raw,
                mine,
                # (nothing checked, nothing touched: any email may have been written before)
                again={position - offset for position in checked.again if position in within}
                if read.count
                else None,
                unchecked={position - offset for position in unchecked if position in within},
            )
            offset += size
        self.start(self.one_write(), touched=checked.touched)
        self.collect()
        self.checking = self.unchanged_before = checked.touched * 2 >= offset
        if not self.checking and self.ahead_check is not None:  # the batch read is validated whole
            self.ahead, self.ahead_check = self.ahead_check.group, None
        return True

    def to_check(self, group: list[RawSlice]) -> tuple[list[int], list[str], list[str], list[int]]:
        """The batch's records to check (positions, emails as validation makes them, digests),
        and the positions of the others: each record of an email met twice, and every record
        when one cannot be checked (a record of another width, a field holding the digests'
        separator, an email too long to be stored: its email could not be told apart)."""
        email_of = itemgetter(self.importer.email_index)
        emails: list[str] = []
        digests: list[str] = []
        for raw in group:
            if not raw.checkable or raw.digests is None:
                break
            emails += map(str.lower, map(str.strip, map(email_of, raw.batch.records)))
            digests += raw.digests
        if len(emails) != sum(len(raw.batch) for raw in group) or max(map(len, emails)) > EMAIL_CHARS:
            return [], [], [], list(range(sum(len(raw.batch) for raw in group)))
        positions = list(range(len(emails)))
        unchecked: list[int] = []
        if len(set(emails)) != len(emails):  # the later record wins: the importer sees to it
            times = Counter(emails)
            once = [times[email] == 1 for email in emails]
            unchecked = [position for position, one in zip(positions, once, strict=True) if not one]
            positions = list(compress(positions, once))
            emails = list(compress(emails, once))
            digests = list(compress(digests, once))
        return positions, emails, digests, unchecked

    def prepare(
        self,
        raw: RawSlice,
        positions: list[int] | None = None,
        again: set[int] | None = None,
        unchecked: set[int] | None = None,
    ) -> None:
        """Validate and stage a slice's records for the batch being read: all of them, or those
        at `positions` when the batch was checked. Then `again`: those the check found this run
        wrote already; `unchecked`: those it did not check (for the others it found exactly
        whether this run wrote them)."""
        importer = self.importer
        checked = len(raw.batch)
        batch, digests = raw.batch, raw.digests
        if positions is not None and len(positions) < checked:
            batch = RecordBatch([batch.lines[i] for i in positions], [batch.records[i] for i in positions])
            digests = None if digests is None else [digests[i] for i in positions]
        parsed = importer.parse_batch(batch, digests)
        del batch, digests
        repeated = importer.drop_repeated_emails(parsed)
        hashes = importer.erased.hashes(parsed.emails)
        maybe_again: list[str] | None = None  # (a batch not checked: any email may be met again)
        if again is not None:  # the check found them exactly, but for those it did not check
            lines = raw.batch.lines
            listed = {lines[i] for i in again} | {lines[i] for i in unchecked or ()}
            maybe_again = [
                email for line, email in zip(parsed.lines, parsed.emails, strict=True) if line in listed
            ]
        self.done += checked
        self.read += checked
        self.reading.append(
            SliceRead(
                checked=checked,
                done=self.done,
                invalid=parsed.invalid,
                repeated=repeated,
                staged=self.stage(parsed, maybe_again),
                parsed=parsed if hashes is not None else None,  # kept for the erased check
                hashes=hashes,
                maybe_again=maybe_again,
            )
        )

    def stage(self, parsed: Parsed, maybe_again: list[str] | None) -> Staged | None:
        """A slice's valid records to write (None: there is none)."""
        if not parsed.emails:
            return None
        return self.upsert.stage(
            parsed.lines, parsed.emails, parsed.columns, utcnow(), maybe_again, parsed.digests
        )

    def one_write(self) -> Staged | None:
        """The batch read as one write, made while the batch before is written."""
        staged = staged_of(self.reading)
        return Staged.joined(staged) if staged else None

    def start(self, joined: Staged | None, touched: int | None = None) -> None:
        """Write the batch read (`joined`: its slices as one write, if they can be); the one
        before was collected. `touched`: the records the check found unchanged (None: the
        batch was not checked)."""
        restaged = False
        importer = self.importer
        for part in self.reading:  # (the erased check looks up hashes: the writer is idle)
            if part.parsed is not None and importer.erased.sort_out(part.parsed, part.hashes):
                parsed, restaged = part.parsed, True
                part.staged = self.stage(parsed, part.maybe_again)
                part.invalid = parsed.invalid
            part.parsed = None
        staged = staged_of(self.reading)
        self.writing.append((list(self.reading), touched))
        self.reading.clear()
        self.read = 0
        if staged:
            if restaged:
                joined = Staged.joined(staged)
            self.writer.start(self.upsert.write_all, driver_connection(), staged, joined)
            if joined is not None:  # its text is made: the records are no longer needed
                for written in (*staged, joined):
                    written.records = []

    def collect(self) -> None:
        """Wait for the batch being written; log what it did and commit it. A batch that was
        not checked and found mostly unchanged has the next ones checked."""
        written = self.writer.result()
        if not self.writing:
            return
        parts, touched = self.writing.pop()
        self.importer.commit_written(parts, written, touched or 0)
        if touched is None and written is not None and self.check is not None:
            self.checking = self.unchanged_before = (
                written.unchanged * 2 >= written.created + written.updated + written.unchanged
            )


@cache
def _rules_fingerprint() -> str:
    """The source of the modules whose rules read and validate a record, hashed: a stored
    digest of a record validated under other rules is not met."""
    people = sys.modules[Supporter.__module__]
    modules = (fields, email_rules, countries, pg_copy, people, sys.modules[__name__])
    source = hashlib.sha256()
    for module in modules:
        try:
            source.update(Path(str(module.__file__)).read_bytes())
        except OSError:  # (no source to read: this process meets no stored digest, and is safe)
            source.update(os.urandom(16))
    return source.hexdigest()


class ErasedCheck:
    """Supporters deleted on request stay deleted: a record whose email's keyed hash is kept
    (models.people.ErasedEmail) is rejected as "deleted on <date> on request", unless the import
    job says to re-add them (params["readd_deleted"]), which also forgets that they were deleted.

    A slice's emails are hashed by the thread that validates them and looked up in one query
    while the writer waits; with no deleted supporter at all (checked once, as the run starts)
    nothing is hashed."""

    def __init__(self, ctx: RunContext, *, readd: bool) -> None:
        self.ctx, self.readd = ctx, readd
        anyone = bool(fetchall("SELECT 1 FROM erased_email LIMIT 1", []))
        self.hasher = EmailHasher(email_key(ctx.config["SECRET_KEY"])) if anyone else None
        self.zone = ctx.config["TIMEZONE"]
        if anyone and readd:
            ctx.log("Supporters deleted on request earlier are added again: the job says to re-add them.")

    def hashes(self, emails: list[str]) -> list[str] | None:
        """The keyed hashes of a slice's (normalised) emails; None when none can be deleted."""
        if self.hasher is None or not emails:
            return None
        return self.hasher.many(emails)

    def sort_out(self, parsed: Parsed, hashes: list[str] | None) -> bool:
        """Reject the slice's records of deleted supporters (or forget them, to re-add them);
        True when some were rejected."""
        if hashes is None:
            return False
        deleted: dict[str, datetime] = {}
        for start in range(0, len(hashes), LOOKUP_SLICE):
            chunk = hashes[start : start + LOOKUP_SLICE]
            where = f"email_hash IN ({placeholders(len(chunk))})"
            deleted.update(fetchall(f"SELECT email_hash, deleted_at FROM erased_email WHERE {where}", chunk))
        if not deleted:
            return False
        if self.readd:
            found = list(deleted)
            for start in range(0, len(found), LOOKUP_SLICE):
                chunk = found[start : start + LOOKUP_SLICE]
                execute(f"DELETE FROM erased_email WHERE email_hash IN ({placeholders(len(chunk))})", chunk)
            return False
        at = {i: deleted[h] for i, h in enumerate(hashes) if h in deleted}
        parsed.drop(set(at), [f"deleted on {self.day(at[i])} on request" for i in sorted(at)])
        return True

    def day(self, moment: datetime | str) -> str:
        """'Nov 30, 2026': the day a supporter was deleted, in the account time zone."""
        if isinstance(moment, str):  # SQLite's driver gives the stored text
            moment = datetime.fromisoformat(moment)
        local = to_local(moment, self.zone)
        return f"{local:%b} {local.day}, {local.year}"


def _unchecked(name: str, value: str) -> str:
    return value


def _unchecked_column(name: str, values: list[str]) -> list[Any]:
    return [value or None for value in values]


def _converters(name: str) -> tuple[Callable, Callable]:
    """A field's converters (value, whole column); a postal code is kept as it is, for
    Importer.parse and parse_batch to check for its row's country."""
    if name == "zip":
        return _unchecked, _unchecked_column
    return fields.converter_for(name), fields.column_converter_for(name)
