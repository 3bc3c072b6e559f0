"""User Data Export: chosen supporter fields and a filter → a CSV result file, streamed."""

from __future__ import annotations

import csv
import os
from contextlib import suppress
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, DateField, RadioField, SelectMultipleField, StringField, widgets
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from webapp.csvfiles import neutralise
from webapp.errors import RunStopped
from webapp.extensions import db
from webapp.formutil import choices
from webapp.jobtypes.base import JobType
from webapp.models.people import FIELDS_BY_NAME, SUPPORTER_FIELDS, Supporter
from webapp.rules.clock import check_plannable, local_midnight_utc

if TYPE_CHECKING:
    from webapp.engine.context import RunContext

RESULT = "export.csv"
FILTERS = {
    "all": "All supporters",
    "opted_in": "Opted-in supporters only",
    "created_since": "Supporters created since a date",
}


class ExportForm(FlaskForm):
    """The export's parameters: name, fields and filter."""

    name = StringField("Job name", validators=[DataRequired(), Length(max=200)])
    fields = SelectMultipleField(
        "Fields",
        choices=choices((f.name, f.label) for f in SUPPORTER_FIELDS),
        default=[f.name for f in SUPPORTER_FIELDS],
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )
    filter = RadioField("Which supporters", choices=choices(FILTERS.items()), default="all")
    since = DateField("Created since", validators=[Optional()])
    bom = BooleanField(
        "Excel-friendly (UTF-8 with BOM)",
        default=True,
        description="Excel then shows accented names (Zoë, José) as they are; "
        "leave it off for a program that wants plain UTF-8.",
    )

    def validate_since(self, field: DateField) -> None:
        if problem := check_plannable(field.data):
            raise ValidationError(problem)

    def validate_fields(self, field: SelectMultipleField) -> None:
        if not field.data:
            raise ValidationError("Choose at least one field to export.")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.filter.data == "created_since" and not self.since.data and not self.since.errors:
            self.since.errors = [
                *self.since.errors,
                "Choose the date supporters must have been created since.",
            ]
            valid = False
        return valid

    def params(self) -> dict[str, Any]:
        """The job parameters this form describes."""
        ordered = [f.name for f in SUPPORTER_FIELDS if f.name in self.fields.data]
        since = self.since.data.isoformat() if self.filter.data == "created_since" else None
        return {"fields": ordered, "filter": self.filter.data, "since": since, "bom": self.bom.data}


def _partial_at_hand(ctx: RunContext, partial: str, size: int) -> bool:
    """Whether this machine has the partial file to continue, `size` bytes at least: the one a
    failed run kept in storage (perhaps from another worker), else one a killed run left here.
    (With the local storage the stored partial is that very file.)"""
    try:
        ctx.storage.fetch(ctx.result_key(f"{RESULT}.part"), partial)
    except FileNotFoundError:
        pass
    return os.path.exists(partial) and os.path.getsize(partial) >= size


def _keep_partial(ctx: RunContext, partial: str) -> None:
    """Move the partial file into storage for the retry, on whichever worker it runs.
    Storage failing too, it stays here (a retry on this machine continues it) and the run fails
    with its own error, not the storage's."""
    if os.path.exists(partial):
        with suppress(OSError):
            ctx.storage.store(ctx.result_key(f"{RESULT}.part"), partial)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal | float):
        return f"{Decimal(str(value)):.2f}"
    return neutralise(str(value))


class UserDataExport(JobType):
    """Supporters → a CSV result file in storage, safe against spreadsheet formula injection.

    The file is written on the worker's machine (ctx.scratch_path) and moved into storage when
    complete. A run that fails moves its partial file into storage too (results/run-<id>-
    export.csv.part), so Retry continues it on whichever worker takes the run; a worker killed
    outright leaves it on its own disk only: a retry there continues it, one elsewhere starts
    the export again."""

    key = "user_data_export"
    label = "User Data Export"
    description = "Export chosen supporter fields to a CSV file you download from the monitor."
    noun = "supporters"
    noun_past = "exported"
    result_kind = "CSV"
    new_endpoint: ClassVar[str | None] = "jobs.new_export"
    new_label = "New export"
    count_labels = {"created": "Exported"}

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        which = FILTERS.get(params.get("filter", "all"), "")
        if params.get("filter") == "created_since":
            which = f"Supporters created since {params.get('since')}"
        labels = ", ".join(FIELDS_BY_NAME[n].label for n in params.get("fields", []))
        # a job saved before the choice existed has no BOM, as then
        encoding = "UTF-8 with BOM (Excel-friendly)" if params.get("bom") else "UTF-8"
        return [("Fields", labels), ("Supporters", which), ("Encoding", encoding)]

    def _conditions(self, params: dict[str, Any], tz_name: str) -> list[Any]:
        kind = params.get("filter", "all")
        if kind == "opted_in":
            return [Supporter.opted_in.is_(True)]
        if kind == "created_since":
            return [Supporter.created_at >= local_midnight_utc(params["since"], tz_name)]
        return []

    def run(self, ctx: RunContext) -> None:
        params = ctx.params
        conditions = self._conditions(params, ctx.config["TIMEZONE"])
        total = db.session.execute(
            select(func.count()).select_from(Supporter).where(*conditions)
        ).scalar_one()
        ctx.begin_processing(total)
        names = params["fields"]
        columns = [getattr(Supporter, n) for n in names]
        partial = ctx.scratch_path(RESULT)
        point = ctx.checkpoint
        last_id, done = point.get("last_id", 0), point.get("rows", 0)
        if done and not _partial_at_hand(ctx, partial, point["bytes"]):
            ctx.log(f"The partial file of {done:,} rows is not here: the export starts again.")
            last_id = done = ctx.run.checked = ctx.run.created = 0
        try:
            self._write(ctx, partial, "r+" if done else "w", names, columns, conditions, last_id, done)
        except RunStopped:
            os.remove(partial)  # a stopped export leaves no half file behind
            ctx.log("The partial export file was discarded.")
            raise
        except BaseException:
            _keep_partial(ctx, partial)
            raise
        ctx.keep_result(RESULT, f"{ctx.run.job_name} - export #{ctx.run.number}.csv")

    def _write(
        self,
        ctx: RunContext,
        partial: str,
        mode: str,
        names: list[str],
        columns: list[Any],
        conditions: list[Any],
        last_id: int,
        done: int,
    ) -> None:
        """Stream supporters into the partial file in keyset batches, committing progress."""
        point = ctx.checkpoint
        with open(partial, mode, newline="", encoding="utf-8") as out:
            if mode == "r+":
                out.seek(point["bytes"])
                out.truncate()
                ctx.log(f"Resuming after {done:,} rows already written.")
            writer = csv.writer(out)
            if not done:
                if ctx.params.get("bom"):
                    out.write("\ufeff")  # Excel reads the file as UTF-8 only when it starts with one
                writer.writerow([FIELDS_BY_NAME[n].label for n in names])
            batch_size = ctx.config["EXPORT_BATCH_SIZE"]
            while True:
                rows = db.session.execute(
                    select(Supporter.id, *columns)
                    .where(Supporter.id > last_id, *conditions)
                    .order_by(Supporter.id)
                    .limit(batch_size)
                ).all()
                if not rows:
                    break
                writer.writerows([_cell(v) for v in row[1:]] for row in rows)
                out.flush()
                last_id, done = rows[-1][0], done + len(rows)
                ctx.commit_batch(
                    done=done,
                    checked=len(rows),
                    created=len(rows),
                    checkpoint={"last_id": last_id, "rows": done, "bytes": out.tell()},
                )
