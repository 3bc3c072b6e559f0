"""User Data Import: a CSV of supporters upserted by email, streamed in batches."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, Any, ClassVar

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from webapp.csvfiles import DELIMITER_NAMES, check_bytes, check_columns, iter_records
from webapp.extensions import db
from webapp.formutil import choices
from webapp.jobtypes.base import JobType
from webapp.jobtypes.importer import Importer
from webapp.models.people import FIELDS_BY_NAME, SUPPORTER_FIELDS
from webapp.models.runs import RunRejection
from webapp.models.settings import AccountSettings
from webapp.rules.countries import COUNTRIES
from webapp.storage import located

if TYPE_CHECKING:
    from webapp.engine.context import RunContext

HEADER_ALIASES = {
    "e-mail": "email",
    "email address": "email",
    "first": "first_name",
    "firstname": "first_name",
    "last": "last_name",
    "lastname": "last_name",
    "surname": "last_name",
    "address": "address1",
    "street": "address1",
    "zip code": "zip",
    "zipcode": "zip",
    "postal code": "zip",
    "postcode": "zip",
    "post code": "zip",
    "country code": "country",
    "telephone": "phone",
    "phone number": "phone",
    "opt in": "opted_in",
    "optin": "opted_in",
    "opt-in": "opted_in",
    "total donations": "donation_total",
}


class ImportUploadForm(FlaskForm):
    """Step 1: name the import and upload its file."""

    name = StringField("Job name", validators=[DataRequired(), Length(max=200)])
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file to upload.")])
    encoding = SelectField(
        "Encoding",
        choices=choices([("utf-8", "UTF-8 (with or without BOM)"), ("latin-1", "Latin-1 (older Excel)")]),
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
    result_kind = "CSV"  # the import report
    new_endpoint: ClassVar[str | None] = "jobs.new_import"
    new_label = "New import"

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
            (
                "Previously deleted supporters",
                "re-added" if params.get("readd_deleted") else "rejected (deleted on request)",
            ),
        ]

    def run(self, ctx: RunContext) -> None:
        storage, key = located(ctx.storage, ctx.params["path"])
        # the upload as a file of this worker's machine for the run (the Importer reads a path):
        # with object storage, a copy downloaded for the run (again on a resume) and deleted after
        with storage.local_copy(key) as path:
            self._import(ctx, {**ctx.params, "path": path})
        write_report(ctx)

    def _import(self, ctx: RunContext, params: dict[str, Any]) -> None:
        """Import the upload from params["path"], a file of this machine."""
        # what the upload step refuses, refused again before anything is written (a file that
        # reached the run some other way): a plain CsvProblem naming the line fails the run
        check_columns(len(params["mapping"]))
        check_bytes(params["path"], params["encoding"])
        total = params.get("total_rows")
        if total is None:  # a job saved before uploads were counted
            total = count_data_records(ctx, params)
        ctx.begin_processing(total)
        country = AccountSettings.postal_country()
        if "zip" in params["mapping"]:
            default = f"{COUNTRIES.get(country, country)} (the account's default country)"
            ctx.log(
                f"Postal codes are checked for the country in each row's Country column, else for {default}."
                if "country" in params["mapping"]
                else f"Postal codes are checked for {default}."
            )
        Importer(ctx, params, total, default_country=country).run()

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
        iter_records(params["path"], params["encoding"], params["delimiter"]), start=1
    ):
        if records % 100_000 == 0:
            ctx.check_control()
    return max(records - 1, 0)


def write_report(ctx: RunContext) -> None:
    """The import's result file: every rejected line with its reason (CSV)."""
    with open(ctx.scratch_path("import-report.csv"), "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "reason"])
        query = (
            db.select(RunRejection.line, RunRejection.reason)
            .where(RunRejection.run_id == ctx.run.id)
            .order_by(RunRejection.line)
        )
        for line, reason in db.session.execute(query).yield_per(5000):
            writer.writerow([line, reason])
    ctx.keep_result("import-report.csv", f"{ctx.run.job_name} - import report #{ctx.run.number}.csv")
