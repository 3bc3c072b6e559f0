"""Email Bounces: the bounces of one campaign send or of a range of days → a CSV result file, streamed."""

from __future__ import annotations

import csv
import os
from contextlib import suppress
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select

from webapp.csvfiles import neutralise
from webapp.errors import JobError, RunStopped
from webapp.extensions import db
from webapp.jobtypes.base import JobType
from webapp.models.campaigns import Bounce, Recipient
from webapp.models.runs import Run
from webapp.models.users import User
from webapp.rules.clock import format_day, local_midnight_utc, to_local

if TYPE_CHECKING:
    from webapp.engine.context import RunContext

RESULT = "bounces.csv"
CAMPAIGN_TYPE = "email_campaign"  # the runs that are campaign sends (webapp/jobtypes/email_campaign.py)
COLUMNS = ("Email", "Campaign", "Send", "Request id", "Bounce type", "Reason", "Bounced at")
SOURCES = {
    "send": "One campaign send",
    "range": "Every send, bounces in a date range",
    "recent": "Every send, bounces of the days before each run",
}
# the days before each run a "recent" export covers (a weekly schedule with 7: last week's)
PERIODS = {"1": "The day before", "7": "The 7 days before", "30": "The 30 days before"}


def visible_sends(user: User) -> Select:
    """The campaign sends (runs that reached their request id) `user` may see: their own, every
    user's for a super admin (the rule of webapp.permissions.can_see, which a job type may not
    import)."""
    query = select(Run).where(Run.job_type == CAMPAIGN_TYPE, Run.request_id.is_not(None))
    return query if user.is_super_admin else query.where(Run.owner_id == user.id)


def send_label(run: Run) -> str:
    """A send as the form and the job page name it: '“Spring appeal” send #2 (REQ-…)'."""
    return f"“{run.job_name}” send #{run.number} ({run.request_id})"


def range_bounds(start: str, end: str, tz_name: str) -> tuple[datetime, datetime]:
    """The naive UTC instants a range of account-zone days begins and ends: midnight of `start`
    up to (not including) the midnight after `end`."""
    after = (date.fromisoformat(end) + timedelta(days=1)).isoformat()
    return local_midnight_utc(start, tz_name), local_midnight_utc(after, tz_name)


def recent_days(period: str, moment: datetime, tz_name: str) -> tuple[str, str]:
    """The first and last day (ISO) of the `period` whole days before `moment`'s day in the
    account time zone."""
    today = to_local(moment, tz_name).date()
    return (today - timedelta(days=int(period))).isoformat(), (today - timedelta(days=1)).isoformat()


def _cell(value: str | None) -> str:
    return neutralise(value or "")


class EmailBounces(JobType):
    """Bounces → a CSV result file in storage, formula-safe, one row per bounce received.

    It lists only bounces of sends its owner may see, checked again at every run (the owner's
    rights are those of today, not of the day the job was saved). The file is written on the
    worker's machine and moved into storage when complete; a failed run keeps its partial file
    in storage so Retry continues after the last bounce written, as User Data Export does."""

    key = "email_bounces"
    label = "Email Bounces"
    description = "Export the bounces of a campaign send, or of a range of days, to a CSV file."
    noun = "bounces"
    noun_past = "exported"
    result_kind = "CSV"
    new_endpoint, new_label = "bounces.new", "New bounce export"
    edit_endpoint = "bounces.edit"
    count_labels = {"created": "Exported"}

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        if params.get("source") == "send":
            run = db.session.get(Run, params.get("run_id") or 0)
            which = send_label(run) if run is not None else f"Send of a deleted run #{params.get('run_id')}"
            return [("Bounces of", which)]
        if params.get("source") == "recent":
            period = PERIODS.get(str(params.get("period")), "")
            return [("Bounces of", f"Every send: {period.lower()} each run (days in the account time zone)")]
        try:
            first, last = (format_day(date.fromisoformat(params[k])) for k in ("start", "end"))
        except (KeyError, TypeError, ValueError):
            return [("Bounces of", "No send or date range chosen")]
        return [("Bounces of", f"Every send, bounced {first} – {last} (days in the account time zone)")]

    def _conditions(self, ctx: RunContext) -> list[Any]:
        """Which bounces: of the chosen send or the date range, among the sends the owner may see."""
        params = ctx.params
        owner = db.session.get(User, ctx.run.owner_id)
        if owner is None:
            raise JobError("the job's owner no longer exists")
        visible = [Run.job_type == CAMPAIGN_TYPE]
        if not owner.is_super_admin:
            visible.append(Run.owner_id == owner.id)
        if params.get("source") == "send":
            run_id = params.get("run_id")
            seen = db.session.execute(visible_sends(owner).where(Run.id == run_id)).scalar()
            if seen is None:
                raise JobError(f"the campaign send (run {run_id}) is gone, or is no longer one you may see")
            return [*visible, Bounce.run_id == run_id]
        tz_name = ctx.config["TIMEZONE"]
        first, last = str(params.get("start")), str(params.get("end"))
        if params.get("source") == "recent":
            # the days before the occurrence it is (even when it starts late), or before it was
            # asked for: the same days when a Retry continues it another day
            first, last = recent_days(params["period"], ctx.run.planned_for or ctx.run.created_at, tz_name)
            ctx.log(f"Bounces of {first} to {last} ({tz_name}).")
        start, end = range_bounds(first, last, tz_name)
        return [*visible, Bounce.bounced_at >= start, Bounce.bounced_at < end]

    def run(self, ctx: RunContext) -> None:
        conditions = self._conditions(ctx)
        total = db.session.execute(
            select(func.count()).select_from(Bounce).join(Run, Run.id == Bounce.run_id).where(*conditions)
        ).scalar_one()
        ctx.begin_processing(total)
        partial = ctx.scratch_path(RESULT)
        point = ctx.checkpoint
        last_id, done = point.get("last_id", 0), point.get("rows", 0)
        if done and not self._partial_at_hand(ctx, partial, point["bytes"]):
            ctx.log(f"The partial file of {done:,} rows is not here: the export starts again.")
            last_id = done = ctx.run.checked = ctx.run.created = 0
        try:
            self._write(ctx, partial, conditions, last_id, done)
        except RunStopped:
            os.remove(partial)  # a stopped export leaves no half file behind
            ctx.log("The partial export file was discarded.")
            raise
        except BaseException:
            if os.path.exists(partial):  # for the retry, on whichever worker it runs
                with suppress(OSError):
                    ctx.storage.store(ctx.result_key(f"{RESULT}.part"), partial)
            raise
        ctx.keep_result(RESULT, f"{ctx.run.job_name} - bounces #{ctx.run.number}.csv")

    def _partial_at_hand(self, ctx: RunContext, partial: str, size: int) -> bool:
        """Whether the partial file to continue is here, `size` bytes at least (from storage, where
        a failed run kept it, else the one a killed run left on this machine)."""
        with suppress(FileNotFoundError):
            ctx.storage.fetch(ctx.result_key(f"{RESULT}.part"), partial)
        return os.path.exists(partial) and os.path.getsize(partial) >= size

    def _write(self, ctx: RunContext, partial: str, conditions: list[Any], last_id: int, done: int) -> None:
        """Stream bounces into the partial file in keyset batches (by bounce id), committing progress."""
        tz_name = ctx.config["TIMEZONE"]
        batch_size = ctx.config["EXPORT_BATCH_SIZE"]
        query = (
            select(
                Bounce.id,
                Recipient.email,
                Run.job_name,
                Run.number,
                Run.request_id,
                Bounce.kind,
                Bounce.reason,
                Bounce.bounced_at,
            )
            .join(Recipient, Recipient.id == Bounce.recipient_id)
            .join(Run, Run.id == Bounce.run_id)
            .where(*conditions)
            .order_by(Bounce.id)
            .limit(batch_size)
        )
        with open(partial, "r+" if done else "w", newline="", encoding="utf-8") as out:
            if done:
                out.seek(ctx.checkpoint["bytes"])
                out.truncate()
                ctx.log(f"Resuming after {done:,} rows already written.")
            writer = csv.writer(out)
            if not done:
                if ctx.params.get("bom"):
                    out.write("\ufeff")  # Excel reads the file as UTF-8 only when it starts with one
                writer.writerow(COLUMNS)
            while rows := db.session.execute(query.where(Bounce.id > last_id)).all():
                writer.writerows(
                    [
                        _cell(row.email),
                        _cell(row.job_name),
                        f"#{row.number}",
                        _cell(row.request_id),
                        row.kind.value,
                        _cell(row.reason),
                        to_local(row.bounced_at, tz_name).isoformat(timespec="seconds"),
                    ]
                    for row in rows
                )
                out.flush()
                last_id, done = rows[-1].id, done + len(rows)
                ctx.commit_batch(
                    done=done,
                    checked=len(rows),
                    created=len(rows),
                    checkpoint={"last_id": last_id, "rows": done, "bytes": out.tell()},
                )
