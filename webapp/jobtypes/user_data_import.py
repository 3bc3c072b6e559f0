"""User Data Import: a CSV of supporters upserted by email, streamed in batches."""

from __future__ import annotations

import csv
from itertools import islice
from typing import TYPE_CHECKING, Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from webapp.csvfiles import DELIMITER_NAMES, iter_records
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
    sqlite_page_cache,
    timestamp,
)
from webapp.models.base import utcnow
from webapp.models.people import FIELDS_BY_NAME, SUPPORTER_FIELDS
from webapp.models.runs import RunRejection

if TYPE_CHECKING:
    from webapp.engine.context import RunContext

DUPLICATE_LOG_LIMIT = 100
LOOKUP_SLICE = 10_000  # bound values per IN (...) query: SQLite allows at most 32,766
PAGE_CACHE_KIB = 24 * 1024  # on SQLite: the default 2 MB cache misses most of a large email index
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


class _Importer:
    """One import run's batch loop."""

    def __init__(self, ctx: RunContext, params: dict[str, Any], total: int) -> None:
        self.ctx, self.params, self.total = ctx, params, total
        self.run_id = ctx.run.id
        mapping: list[str] = params["mapping"]
        self.columns = [(i, name, fields.converter_for(name)) for i, name in enumerate(mapping)
                        if name and name != "email"]
        self.email_index = mapping.index("email")
        self.names = [name for _, name, _ in self.columns]
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
        records = iter_records(self.params["path"], self.params["encoding"],
                               self.params["delimiter"])
        next(records, None)  # header
        for _ in range(done):
            next(records, None)
        with sqlite_page_cache(PAGE_CACHE_KIB), rare_collections():
            while batch := list(islice(records, self.batch_size)):
                done += len(batch)
                self.write_batch(batch, done)

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
        for index, name, convert in self.columns:
            raw = values[index].strip()
            parsed.append(convert(name, raw) if raw else None)
        return fields._email("email", email), parsed

    def write_batch(self, batch: list[tuple[int, list[str]]], done: int) -> None:
        """Validate, upsert and commit one batch with its counts and checkpoint."""
        ctx = self.ctx
        rows: dict[str, tuple[int, list[Any]]] = {}
        rejected = skipped = 0
        for line, values in batch:
            try:
                email, parsed = self.parse(values)
            except fields.Invalid as problem:
                ctx.reject(line, f"line {line}: {problem}")
                rejected += 1
                continue
            if email in rows:
                skipped += 1
                self.note_duplicate(f"line {rows[email][0]}: skipped, {email} appears again "
                                    f"on line {line} and the later row wins")
            rows[email] = (line, parsed)
        created, updated, unchanged = self.upsert(rows)
        ctx.commit_batch(done=done, checkpoint={"records": done}, checked=len(batch),
                         created=created, updated=updated, unchanged=unchanged,
                         skipped=skipped, rejected=rejected)

    def upsert(self, rows: dict[str, tuple[int, list[Any]]]) -> tuple[int, int, int]:
        """Insert new supporters, update changed ones, touch unchanged ones; return the counts."""
        if not rows:
            return 0, 0, 0
        existing = self.stored(list(rows))
        now = timestamp(utcnow())
        inserts, updates, touched = [], [], []
        default_opt_in = [] if "opted_in" in self.names else [False]
        for email, (line, parsed) in rows.items():
            stored = existing.get(email)
            if stored is None:
                inserts.append((email, *parsed, self.run_id, now, now, *default_opt_in))
                continue
            if stored[2] == self.run_id:
                self.note_duplicate(f"line {line}: {email} appeared earlier in the file; "
                                    "this later row wins")
            current = list(stored[3:])
            for index, normalise in self.normalisers:
                current[index] = normalise(current[index])
            merged = parsed if None not in parsed else [
                new if new is not None else old for new, old in zip(parsed, current, strict=True)]
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
