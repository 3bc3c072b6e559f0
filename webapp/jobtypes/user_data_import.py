"""User Data Import: a CSV of supporters upserted by email, streamed in batches."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from typing import TYPE_CHECKING, Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from webapp.csvfiles import DELIMITER_NAMES, RecordBatch, iter_record_batches, iter_records
from webapp.extensions import db
from webapp.formutil import choices
from webapp.jobtypes import fields
from webapp.jobtypes.base import JobType
from webapp.jobtypes.bulk import (
    execute,
    executemany,
    fetchall,
    placeholders,
    rare_collections,
    sqlite_bulk_writes,
    timestamp,
)
from webapp.models.base import utcnow
from webapp.models.people import FIELDS_BY_NAME, SUPPORTER_FIELDS
from webapp.models.runs import RunRejection

if TYPE_CHECKING:
    from webapp.engine.context import RunContext

DUPLICATE_LOG_LIMIT = 100
LOOKUP_SLICE = 10_000  # bound values per IN (...) query: SQLite allows at most 32,766
PAGE_CACHE_KIB = 8 * 1024  # on SQLite: the default 2 MB misses too much of a large email index;
# measured at 1M rows, 8 MB beats both 2 MB and 24 MB (a larger cache also makes the peak RSS grow)
READ_SIZE = 5_000  # records validated and written at a time
CHECKPOINT_PAGES = 10_000  # on SQLite: a WAL of up to ~40 MB between checkpoints while importing
HEADER_ALIASES = {
    "e-mail": "email", "email address": "email", "first": "first_name", "firstname": "first_name",
    "last": "last_name", "lastname": "last_name", "surname": "last_name", "address": "address1",
    "street": "address1", "zip code": "zip", "zipcode": "zip", "postal code": "zip",
    "postcode": "zip", "telephone": "phone", "phone number": "phone", "opt in": "opted_in",
    "optin": "opted_in", "opt-in": "opted_in", "total donations": "donation_total",
}


class ImportUploadForm(FlaskForm):
    """Step 1: name the import and upload its file."""

    name = StringField("Job name", validators=[DataRequired(), Length(max=200)])
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file to upload.")])
    encoding = SelectField(
        "Encoding",
        choices=choices([("utf-8", "UTF-8 (with or without BOM)"),
                         ("latin-1", "Latin-1 (older Excel)")]),
        default="utf-8",
    )


def guess_field(column: str) -> str:
    """The supporter field a CSV header most likely means, or '' to ignore it."""
    key = column.strip().lower().replace("_", " ")
    for field in SUPPORTER_FIELDS:
        if key in (field.name.replace("_", " "), field.label.lower()):
            return field.name
    return HEADER_ALIASES.get(key, "")


def mapping_problems(mapping: list[str]) -> list[str]:
    """What is wrong with a column mapping (email mapped once, no field twice)."""
    chosen = [name for name in mapping if name]
    problems = []
    if "email" not in chosen:
        problems.append("Map one column to Email: supporters are matched by email.")
    twice = sorted({name for name in chosen if chosen.count(name) > 1})
    for name in twice:
        problems.append(f"{FIELDS_BY_NAME[name].label} is mapped to more than one column.")
    return problems


class UserDataImport(JobType):
    """CSV → supporters, upsert by email (case-insensitive); bad rows rejected, never fatal."""

    key = "user_data_import"
    label = "User Data Import"
    description = "Upload a CSV of supporters; rows are matched by email and created or updated."
    noun_past = "imported"

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        mapping = params.get("mapping", [])
        columns = params.get("columns", [])
        mapped = ", ".join(
            f"{col} → {FIELDS_BY_NAME[f].label}" for col, f in zip(columns, mapping, strict=False) if f
        )
        return [
            ("File", params.get("filename", "")),
            ("Encoding", params.get("encoding", "utf-8")),
            ("Delimiter", DELIMITER_NAMES.get(params.get("delimiter", ","), "comma")),
            ("Columns", mapped),
        ]

    def run(self, ctx: RunContext) -> None:
        params = ctx.params
        total = params.get("total_rows")
        if total is None:  # a job saved before uploads were counted
            total = count_data_records(ctx, params)
        ctx.begin_processing(total)
        _Importer(ctx, params, total).run()
        write_report(ctx)

    def summary(self, run) -> str:
        base = super().summary(run)
        if not run.rejected:
            return base
        rows = "row was" if run.rejected == 1 else "rows were"
        return f"{base} {run.rejected:,} {rows} rejected: see the rejected lines."


def count_data_records(ctx: RunContext, params: dict[str, Any]) -> int:
    """Count the file's records, header excepted, honouring Stop every 100,000 records."""
    records = 0
    for records, _record in enumerate(
            iter_records(params["path"], params["encoding"], params["delimiter"]), start=1):
        if records % 100_000 == 0:
            ctx.check_control()
    return max(records - 1, 0)


@dataclass
class Parsed:
    """A batch's records after validation: the valid ones column by column, in file order."""

    lines: list[int]
    emails: list[str]
    columns: list[list[Any]]  # a list per mapped field: its values (None = leave as stored)
    invalid: list[tuple[int, fields.Invalid]]  # (line, problem)

    def keep(self, indexes: list[int]) -> None:
        """Keep only the valid records at these positions."""
        self.lines = [self.lines[i] for i in indexes]
        self.emails = [self.emails[i] for i in indexes]
        self.columns = [[column[i] for i in indexes] for column in self.columns]

    def rows(self) -> Iterator[tuple[int, str, tuple[Any, ...]]]:
        """(line, email, value per mapped field) per valid record."""
        values = zip(*self.columns, strict=True) if self.columns else repeat(())
        return zip(self.lines, self.emails, values, strict=False)


class _Importer:
    """One import run's batch loop."""

    def __init__(self, ctx: RunContext, params: dict[str, Any], total: int) -> None:
        self.ctx, self.params, self.total = ctx, params, total
        self.run_id = ctx.run.id
        mapping: list[str] = params["mapping"]
        self.columns = [(i, name, fields.converter_for(name), fields.column_converter_for(name))
                        for i, name in enumerate(mapping) if name and name != "email"]
        self.email_index = mapping.index("email")
        self.names = [name for _, name, _, _ in self.columns]
        self.normalisers = [(i, normalise) for i, name in enumerate(self.names)
                            if (normalise := fields.stored_normaliser(name)) is not None]
        self.width = len(mapping)
        self.batch_size = ctx.config["IMPORT_BATCH_SIZE"]
        self.duplicates_logged = 0
        select_cols = ", ".join(["id", "email", "last_run_id", *self.names])
        # ids from the email index first, then the rows by id: fewer scattered reads of the table
        self.lookup_sql = (f"SELECT {select_cols} FROM supporter WHERE id IN "
                           "(SELECT id FROM supporter WHERE email IN ({}))")
        insert_cols = ["email", *self.names, "last_run_id", "created_at", "updated_at"]
        if "opted_in" not in self.names:
            insert_cols.append("opted_in")
        self.insert_sql = (f"INSERT INTO supporter ({', '.join(insert_cols)}) "
                           f"VALUES ({placeholders(len(insert_cols))})")
        sets = ", ".join(f"{name} = ?" for name in [*self.names, "last_run_id", "updated_at"])
        self.update_sql = f"UPDATE supporter SET {sets} WHERE id = ?"

    def run(self) -> None:
        ctx = self.ctx
        done = ctx.checkpoint.get("records", 0)
        if done:
            ctx.log(f"Resuming after record {done:,}: the records before it were already imported.")
        # a batch (what one commit holds) is written in slices of at most READ_SIZE records:
        # the fewer commits the less of the email index each rewrites, the smaller the slices
        # the less memory, and the faster Python walks them
        slices = -(-self.batch_size // READ_SIZE)
        batches = iter_record_batches(self.params["path"], self.params["encoding"],
                                      self.params["delimiter"], -(-self.batch_size // slices),
                                      skip=1 + done)  # the header, then what was imported before
        counts = Counter()
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

    def parse(self, values: list[str]) -> tuple[str, list[Any]]:
        """Validate one record into (email, values per mapped field; None = leave as stored)."""
        if len(values) != self.width:
            if len(values) > self.width:
                raise fields.Invalid(f"has {len(values)} fields but the header has {self.width}")
            values = values + [""] * (self.width - len(values))
        email = values[self.email_index].strip()
        if not email:
            raise fields.Invalid("email is missing")
        parsed = []
        for index, name, convert, _ in self.columns:
            raw = values[index].strip()
            parsed.append(convert(name, raw) if raw else None)
        return fields._email("email", email), parsed

    def parse_batch(self, batch: RecordBatch) -> Parsed:
        """parse() for a whole batch. Columns are converted whole (see
        fields.column_converter_for); a batch with an invalid record, or a record with another
        number of fields than the header, goes through parse() record by record instead (which
        also words the reasons)."""
        if set(map(len, batch.records)) != {self.width}:
            return self.parse_each(batch)
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
            return self.parse_each(batch)
        converted = []
        for index, name, convert, convert_all in self.columns:
            converted.append(column(index, partial(convert_all, name), partial(convert, name)))
            if invalid:
                return self.parse_each(batch)
        return Parsed(list(batch.lines), emails, converted, [])

    def parse_each(self, batch: RecordBatch) -> Parsed:
        """parse() record by record, as parse_batch returns it."""
        lines, emails, rows, invalid = [], [], [], []
        for line, values in batch:
            try:
                email, row = self.parse(values)
            except fields.Invalid as problem:
                invalid.append((line, problem))
            else:
                lines.append(line)
                emails.append(email)
                rows.append(row)
        columns = [list(column) for column in zip(*rows, strict=True)] if rows else [
            [] for _ in self.columns]
        return Parsed(lines, emails, columns, invalid)

    def write_slice(self, batch: RecordBatch) -> dict[str, int]:
        """Validate and upsert records (in the open transaction); return their counts."""
        parsed = self.parse_batch(batch)
        for line, problem in parsed.invalid:
            self.ctx.reject(line, f"line {line}: {problem}")
        skipped = self.drop_repeated_emails(parsed)
        created, updated, unchanged = self.upsert(parsed)
        return {"checked": len(batch), "created": created, "updated": updated,
                "unchanged": unchanged, "skipped": skipped, "rejected": len(parsed.invalid)}

    def drop_repeated_emails(self, parsed: Parsed) -> int:
        """Keep the last record of each email in the batch; log and count the others."""
        emails = parsed.emails
        if len(set(emails)) == len(emails):
            return 0
        last: dict[str, int] = {}
        for i, email in enumerate(emails):
            if email in last:
                self.note_duplicate(f"line {parsed.lines[last[email]]}: skipped, {email} appears "
                                    f"again on line {parsed.lines[i]} and the later row wins")
            last[email] = i
        parsed.keep(sorted(last.values()))
        return len(emails) - len(last)

    def upsert(self, parsed: Parsed) -> tuple[int, int, int]:
        """Insert new supporters, update changed ones, touch unchanged ones; return the counts."""
        if not parsed.emails:
            return 0, 0, 0
        existing = self.stored(parsed.emails)
        now = timestamp(utcnow())
        added = (self.run_id, now, now) if "opted_in" in self.names else (
            self.run_id, now, now, False)
        if not existing:  # all new: the insert rows straight from the columns
            inserts = list(zip(parsed.emails, *parsed.columns, *map(repeat, added), strict=False))
            executemany(self.insert_sql, inserts)
            return len(inserts), 0, 0
        inserts, updates, touched = [], [], []
        for line, email, values in parsed.rows():
            stored = existing.get(email)
            if stored is None:
                inserts.append((email, *values, *added))
                continue
            if stored[2] == self.run_id:
                self.note_duplicate(f"line {line}: {email} appeared earlier in the file; "
                                    "this later row wins")
            current = list(stored[3:])
            for index, normalise in self.normalisers:
                current[index] = normalise(current[index])
            merged = list(values) if None not in values else [
                new if new is not None else old for new, old in zip(values, current, strict=True)]
            if merged == current:
                touched.append(stored[0])
            else:
                updates.append((*merged, self.run_id, now, stored[0]))
        executemany(self.insert_sql, inserts)
        executemany(self.update_sql, updates)
        for start in range(0, len(touched), LOOKUP_SLICE):
            ids = touched[start:start + LOOKUP_SLICE]
            execute(f"UPDATE supporter SET last_run_id = ? WHERE id IN ({placeholders(len(ids))})",
                    [self.run_id, *ids])
        return len(inserts), len(updates), len(touched)

    def stored(self, emails: list[str]) -> dict[str, tuple[Any, ...]]:
        """The stored supporters among `emails`, by email (looked up in slices of bound values)."""
        found = {}
        for start in range(0, len(emails), LOOKUP_SLICE):
            chunk = emails[start:start + LOOKUP_SLICE]
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


def write_report(ctx: RunContext) -> None:
    """The import's result file: every rejected line with its reason (CSV)."""
    path = ctx.result_path("import-report.csv")
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "reason"])
        query = (db.select(RunRejection.line, RunRejection.reason)
                 .where(RunRejection.run_id == ctx.run.id).order_by(RunRejection.line))
        for line, reason in db.session.execute(query).yield_per(5000):
            writer.writerow([line, reason])
    ctx.set_result(path, f"{ctx.run.job_name} - import report #{ctx.run.number}.csv")
