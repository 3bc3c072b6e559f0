"""What the API answers and takes, as pydantic models: they validate request bodies, shape the
answers, and are the OpenAPI document's schemas (webapp/api/v1/spec.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

Id = Field(ge=1, le=2**31 - 1)


class Closed(BaseModel):
    """A body with a name for each field: an unknown field is a 422, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Body(Closed):
    """A JSON body: each value of the type its field says, as sent (true is no id, and "yes"
    confirms nothing): a 422 otherwise."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorDetail(BaseModel):
    """What went wrong: a stable code for a program, a sentence for a person."""

    model_config = ConfigDict(extra="allow")  # e.g. problems (field → messages), retry_after

    code: str = Field(examples=["not_found"])
    message: str


class ErrorAnswer(BaseModel):
    """An error."""

    error: ErrorDetail


class Progress(BaseModel):
    done: int
    total: int | None
    percent: int


class Counts(BaseModel):
    checked: int
    created: int
    updated: int
    unchanged: int
    skipped: int
    rejected: int


class RunOut(BaseModel):
    """A run: its state, progress and counts."""

    id: int
    job_id: int | None = Field(description="null once its job was deleted")
    job_name: str
    type: str = Field(description="the job type's key, e.g. user_data_import")
    type_label: str = Field(description="the monitor's Type column, e.g. User Data Import")
    number: int | None
    state: str
    owner: str = Field(description="the email of the user the run belongs to")
    progress: Progress
    counts: Counts
    error: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    result_available: bool
    parent_run_id: int | None = Field(description="the group run this run is a step of")


class RunActionOut(BaseModel):
    """What an action did, and the run as it is now."""

    message: str
    run: RunOut


class RunPage(BaseModel):
    """A page of runs, newest first, and the addresses of the pages either side (null at an end)."""

    runs: list[RunOut]
    next: str | None
    previous: str | None


class MonitorPage(RunPage):
    """A page of the monitor, and how many rows the monitor has."""

    total: int


class LogLine(BaseModel):
    at: str | None
    level: str
    message: str


class RunLog(BaseModel):
    """A run's log, oldest line first."""

    run_id: int
    lines: list[LogLine]


class Rejection(BaseModel):
    line: int
    reason: str


class RunRejections(BaseModel):
    """Every line a run rejected, in line order."""

    run_id: int
    rejected: list[Rejection]


class Dismissed(BaseModel):
    """The runs taken off the monitor (a group run takes its steps with it)."""

    dismissed: list[int]


class JobOut(BaseModel):
    """A job."""

    id: int
    name: str
    type: str
    type_label: str
    owner: str
    created_at: str | None
    deleted: bool = Field(
        default=False, description="deleted: its page and runs stay readable; it changes and runs no more"
    )
    settings: dict[str, str] = Field(description="what the job's page lists about it")


class JobList(BaseModel):
    """Jobs, by name."""

    jobs: list[JobOut]


class Deleted(BaseModel):
    """The id of what was deleted."""

    deleted: int


class ExportJobIn(Body):
    """A User Data Export job to make."""

    type: Literal["user_data_export"]
    name: str = Field(min_length=1, max_length=200)
    fields: list[str] | None = Field(default=None, description="supporter fields; all when left out")
    filter: str = Field(default="all", description="all, opted_in, or created_since")
    since: str | None = Field(default=None, description="YYYY-MM-DD, with filter created_since")
    bom: bool = True


class BouncesJobIn(Body):
    """An Email Bounces job to make: one campaign send's bounces, a range of days', or those of
    the days before each run."""

    type: Literal["email_bounces"]
    name: str = Field(min_length=1, max_length=200)
    source: Literal["send", "range", "recent"] = "send"
    send: int | None = Field(default=None, ge=1, le=2**31 - 1, description="its run id, with source send")
    start: str | None = Field(default=None, description="YYYY-MM-DD (account time zone), with source range")
    end: str | None = Field(default=None, description="YYYY-MM-DD, the last day, with source range")
    period: Literal["1", "7", "30"] = Field(default="7", description="days before a run, with source recent")
    bom: bool = True


class ReportJobIn(Body):
    """A Netdonor Transaction Report job to make: transactions of fixed days or of days counted
    from each run, filtered."""

    type: Literal["transaction_report"]
    name: str = Field(min_length=1, max_length=200)
    range: Literal["previous_month", "last_7_days", "year_to_date", "fixed"] = "previous_month"
    start: str | None = Field(default=None, description="YYYY-MM-DD, the first day, with range fixed")
    end: str | None = Field(default=None, description="YYYY-MM-DD, the last day, with range fixed")
    appeal: str | None = Field(default=None, max_length=80, description="campaign or appeal code")
    payment_method: str | None = Field(default=None, max_length=40)
    kind: Literal["one_off", "recurring", "refund"] | None = None
    min_amount: str | None = Field(default=None, description="a decimal number, e.g. 25.00")
    bom: bool = True


class _ReceiptPeriod(Body):
    name: str = Field(min_length=1, max_length=200)
    source: Literal["relative", "range"] = "relative"
    period: Literal["yesterday", "previous_week", "previous_month", "previous_quarter", "previous_year"] = (
        Field(default="previous_month", description="days before each run, with source relative")
    )
    start: str | None = Field(default=None, description="YYYY-MM-DD, with source range")
    end: str | None = Field(default=None, description="YYYY-MM-DD, the last day, with source range")


class BatchReceiptsJobIn(_ReceiptPeriod):
    """A Batch Receipt Generator job to make (admins only): a receipt for each eligible gift of
    a period, or of one transaction import run."""

    type: Literal["batch_receipts"]
    source: Literal["relative", "range", "run"] = "relative"  # type: ignore[assignment]
    import_run: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="its run id, with source run"
    )
    email: bool = Field(default=False, description="email each receipt to its donor")


class AnnualReceiptsJobIn(Body):
    """An Annual Receipt Generator job to make (admins only): one receipt per supporter for a
    tax year (a calendar year): the year before each run, or a fixed one."""

    type: Literal["annual_receipts"]
    name: str = Field(min_length=1, max_length=200)
    year_choice: Literal["previous", "fixed"] = "previous"
    year: int | None = Field(default=None, description="with year_choice fixed")
    email: bool = Field(default=False, description="email each receipt to its donor")


class ReceiptInventoryJobIn(_ReceiptPeriod):
    """A Receipt Inventory Generator job to make (admins only): every receipt number issued,
    voided or replaced in a period, as a CSV."""

    type: Literal["receipt_inventory"]


JOB_BODIES = (
    ExportJobIn
    | BouncesJobIn
    | ReportJobIn
    | BatchReceiptsJobIn
    | AnnualReceiptsJobIn
    | ReceiptInventoryJobIn
)


class JobIn(RootModel[Annotated[JOB_BODIES, Field(discriminator="type")]]):
    """A job to make, told apart by its type: an export, a bounce export, a transaction report,
    or a receipt generator (admins only)."""


class JobUpdateIn(Body):
    """What to change on a job (only the fields sent change): its name, who is emailed about
    its runs, and for an export its settings."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    notify_emails: str | None = Field(default=None, max_length=500, description="comma separated")
    notify_on: Literal["every", "failure", "never"] | None = None
    notify_missed: bool | None = None
    notify_long: bool | None = None
    fields: list[str] | None = None
    filter: str | None = None
    since: str | None = None
    bom: bool | None = None


class GroupOut(JobOut):
    """A group: its steps in order and whether it is active."""

    activated: bool
    steps: list[int] = Field(description="the steps' job ids, in order")
    expires_on: str | None = Field(description="YYYY-MM-DD in the account's time zone")


class GroupList(BaseModel):
    """Groups, by name."""

    groups: list[GroupOut]


class ImportQuery(Closed):
    """How to read an import's body (POST /imports): the query string."""

    name: str = Field(
        default="Import through the API", min_length=1, max_length=200, description="the run's job name"
    )
    encoding: Literal["utf-8", "latin-1"] = Field(
        default="utf-8", description="of a CSV body (JSON lines are UTF-8)"
    )
    job_id: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="a saved User Data Import job: its mapping is used",
    )
    map: list[str] | None = Field(
        default=None,
        description="Column:field, once per column to import (repeat the parameter), e.g. "
        "map=E-mail:email&map=Given name:first_name; a field left empty ignores the column. "
        "Without map or job_id each column is mapped as the mapping page guesses it from its name.",
    )
    readd_deleted: bool = Field(
        default=False, description="re-add supporters deleted on request earlier (else they are rejected)"
    )


class ExportServiceIn(Body):
    """An export to run now (POST /exports): a saved export job's settings (job_id), the
    settings themselves, or a saved job's with some of them changed."""

    job_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="a saved User Data Export job")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    fields: list[str] | None = Field(default=None, description="supporter fields; all when left out")
    filter: str | None = Field(default=None, description="all (the default), opted_in, or created_since")
    since: str | None = Field(default=None, description="YYYY-MM-DD, with filter created_since")
    bom: bool | None = Field(default=None, description="start the file with a UTF-8 BOM (default true)")
