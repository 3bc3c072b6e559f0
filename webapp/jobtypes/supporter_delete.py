"""Supporter Delete: supporters deleted on request, from an uploaded CSV of emails or a saved
filter, in batches; the result file lists every email deleted or not found.

A deleted supporter's personal data goes from supporter, recipient (the rows of past sends are
kept for the campaigns' counts, without email, merge data, error or bounce reasons; opens,
clicks and bounces then belong to nobody) and the suppression list; their transactions and
receipts stay on the books (money received, receipts issued: tax records) with no supporter and
no email on the receipts; only a keyed hash of the email is kept
(models.people.ErasedEmail), so that an import rejects the address unless told to re-add it.

Who may delete whom: admins and super admins any supporter; a user only the supporters they
imported — those that one of their import runs added (models.people.added_by). The job's owner
counts, with the role they have when the run executes.

A Supporter Delete job runs once: its confirmation (the count of supporters typed back) starts
its only run, and it is never listed on the Jobs page nor run again (saved inactive)."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import ColumnElement, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from webapp.csvfiles import iter_record_batches, neutralise
from webapp.emails import is_email
from webapp.errors import JobError, RunStopped
from webapp.extensions import db
from webapp.jobtypes.base import JobType
from webapp.mailing.audience import AudienceError, describe_rule, rule_conditions
from webapp.models.base import utcnow
from webapp.models.campaigns import Bounce, Recipient, RecipientStatus, SavedFilter, Suppression
from webapp.models.money import Receipt, SupporterChange, Transaction
from webapp.models.people import EmailHasher, ErasedEmail, Supporter, added_by, email_key
from webapp.models.runs import Run
from webapp.models.users import User
from webapp.rules.clock import plural
from webapp.storage import StorageUnavailable, current_storage, located

if TYPE_CHECKING:
    from webapp.engine.context import RunContext
    from webapp.models.jobs import Job
    from webapp.storage import Storage

RESULT = "deleted.csv"
LOOKUP_SLICE = 10_000  # emails per IN (...) while previewing
SAMPLE_SIZE = 10
# emails one delete's file may list: its preview reads the whole file on each look (~2 s for
# this many); a larger request is split into several deletes, or made by a saved filter
MAX_EMAILS = 200_000
SOURCES = {"csv": "Emails in a CSV file", "filter": "Supporters matching a saved filter"}
NOT_SENT = "not sent: the supporter was deleted on request"
EMAIL_HEADERS = {"email", "e-mail", "email address", "e-mail address", "emails"}


def email_column(header: list[str]) -> int | None:
    """The position of the column of emails in a header row, or None."""
    names = [name.strip().lower().replace("_", " ") for name in header]
    for index, name in enumerate(names):
        if name in EMAIL_HEADERS:
            return index
    return None


def scope(owner: User) -> list[ColumnElement[bool]]:
    """The conditions that narrow supporters to those `owner` may delete."""
    if owner.is_admin:
        return []
    # added by one of their imports: not merely imported again by them (any user's import of an
    # email writes its last_run_id, and would have made another user's supporter theirs)
    return [added_by().in_(select(Run.id).where(Run.owner_id == owner.id))]


@dataclass
class Preview:
    """How many supporters a delete would delete now, and a few of them."""

    count: int
    sample: list[tuple[str, str]]  # (email, name)
    listed: int | None = None  # emails in the file (CSV source)
    invalid: int = 0  # of them, not email addresses


def _named(rows: Any) -> list[tuple[str, str]]:
    return [(email, " ".join(filter(None, (first, last)))) for email, first, last in rows]


def filter_conditions(params: dict[str, Any]) -> list[ColumnElement[bool]]:
    """The conditions of the saved filter a delete was made from, as they were then (kept in
    its parameters: editing or deleting the filter later changes nothing of what the delete
    previews, confirms and deletes); a delete made before they were kept reads the filter as it
    is now. A plain JobError when they are gone or cannot be applied."""
    rule, name = params.get("rule"), params.get("filter_name", "")
    if rule is None:
        saved = db.session.get(SavedFilter, params["filter_id"])
        if saved is None:
            raise JobError("its saved filter was deleted; nothing was deleted.")
        rule, name = saved.rule, saved.name
    try:
        return rule_conditions(rule)
    except AudienceError as problem:
        raise JobError(f"its saved filter “{name}” cannot be applied: {problem}.") from None


def preview_filter(params: dict[str, Any], owner: User) -> Preview:
    """The supporters a delete made from a saved filter would delete now."""
    where = [*filter_conditions(params), *scope(owner)]
    count = db.session.execute(select(func.count()).select_from(Supporter).where(*where)).scalar_one()
    sample = db.session.execute(
        select(Supporter.email, Supporter.first_name, Supporter.last_name)
        .where(*where)
        .order_by(Supporter.id)
        .limit(SAMPLE_SIZE)
    ).all()
    return Preview(count, _named(sample))


def file_emails(path: str, params: dict[str, Any], skip: int = 0, size: int = LOOKUP_SLICE) -> Iterator[list]:
    """The file's records in batches, as [(line, email or None when it is not one, as given)]."""
    column = params["email_column"]
    skip += 1 if params.get("has_header", True) else 0
    for batch in iter_record_batches(path, params["encoding"], params["delimiter"], size, skip=skip):
        found = []
        for line, values in batch:
            given = values[column].strip() if column < len(values) else ""
            found.append((line, given.lower() if is_email(given) else None, given))
        yield found


def preview_file(path: str, params: dict[str, Any], owner: User) -> Preview:
    """The supporters a file of emails would delete now (each email counted once)."""
    preview = Preview(0, [], listed=0)
    seen: set[str] = set()
    for batch in file_emails(path, params):
        preview.listed = (preview.listed or 0) + len(batch)
        emails = [
            email for email in dict.fromkeys(e for _, e, _ in batch if e is not None) if email not in seen
        ]
        preview.invalid += sum(1 for _, email, given in batch if email is None and given)
        seen.update(emails)
        if not emails:
            continue
        where = [Supporter.email.in_(emails), *scope(owner)]
        preview.count += db.session.execute(
            select(func.count()).select_from(Supporter).where(*where)
        ).scalar_one()
        if len(preview.sample) < SAMPLE_SIZE:
            rows = db.session.execute(
                select(Supporter.email, Supporter.first_name, Supporter.last_name)
                .where(*where)
                .order_by(Supporter.id)
                .limit(SAMPLE_SIZE - len(preview.sample))
            ).all()
            preview.sample += _named(rows)
    return preview


def preview(job: Job) -> Preview:
    """What a Supporter Delete job would delete if it ran now (for its confirmation)."""
    params = job.params
    if params["source"] == "filter":
        return preview_filter(params, job.owner)
    storage, key = located(current_storage(), params["path"])
    with storage.local_copy(key) as path:
        return preview_file(path, params, job.owner)


def erase(rows: list[tuple[int, str]], key: bytes, run_id: int) -> None:
    """Delete these supporters (id, email) in the open transaction, keeping only the keyed hash
    of each email (again deleted: the later date)."""
    if not rows:
        return
    ids = [supporter_id for supporter_id, _ in rows]
    emails = [email for _, email in rows]
    now = utcnow()
    hashes = EmailHasher(key).many(emails)
    values = [{"email_hash": hashed, "deleted_at": now, "run_id": run_id} for hashed in hashes]
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(ErasedEmail).values(values)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[ErasedEmail.email_hash],
            set_={"deleted_at": statement.excluded.deleted_at, "run_id": statement.excluded.run_id},
        )
    )
    # a bounce's reason is the mail server's text, which often quotes the address
    sent_to = select(Recipient.id).where(Recipient.supporter_id.in_(ids))
    db.session.execute(
        update(Bounce)
        .where(Bounce.recipient_id.in_(sent_to))
        .values(reason="")
        .execution_options(synchronize_session=False)
    )
    # the rows of past sends stay for the campaigns' counts, belonging to nobody (a negative
    # supporter id: never a supporter's, and unique per send as the recipient's own id is); a
    # send still under way never reaches them
    pending = Recipient.status == RecipientStatus.PENDING
    db.session.execute(
        update(Recipient)
        .where(Recipient.supporter_id.in_(ids))
        .values(
            email="",
            data={},
            supporter_id=-Recipient.id,
            status=case((pending, RecipientStatus.FAILED.value), else_=Recipient.status),
            error=case((pending, NOT_SENT), else_=None),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        delete(Suppression).where(Suppression.email.in_(emails)).execution_options(synchronize_session=False)
    )
    # the money stays on the books and the receipts issued stay as issued (tax records), no
    # longer tied to the person: no supporter, and no email on the receipts
    db.session.execute(
        update(Transaction)
        .where(Transaction.supporter_id.in_(ids))
        .values(supporter_id=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Receipt)
        .where(Receipt.supporter_id.in_(ids))
        .values(supporter_id=None, donor_email=None)
        .execution_options(synchronize_session=False)
    )
    # what transaction imports changed on the person (their names, address … before and after)
    db.session.execute(
        delete(SupporterChange)
        .where(SupporterChange.supporter_id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        delete(Supporter).where(Supporter.id.in_(ids)).execution_options(synchronize_session=False)
    )


class ResultFile:
    """The run's result (email, result) written on this machine as it goes, resumable from the
    checkpoint's byte offset, and moved into storage as the run ends (stopped too: each email
    deleted is recorded)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.partial = ctx.scratch_path(RESULT)

    def open(self) -> tuple[Any, Any]:
        """The file and a csv writer, positioned after what the checkpoint counts."""
        ctx, point = self.ctx, self.ctx.checkpoint
        if point.get("bytes"):
            with suppress(FileNotFoundError):
                ctx.storage.fetch(ctx.result_key(f"{RESULT}.part"), self.partial)
            if os.path.exists(self.partial) and os.path.getsize(self.partial) >= point["bytes"]:
                out = open(self.partial, "r+", newline="", encoding="utf-8")
                out.seek(point["bytes"])
                out.truncate()
                return out, csv.writer(out)
            ctx.log(
                "The result file of the batches before is not on this machine: "
                "the result lists only the emails from here on (the run's log has the counts)."
            )
        out = open(self.partial, "w", newline="", encoding="utf-8")
        writer = csv.writer(out)
        writer.writerow(["email", "result"])
        return out, writer

    def keep(self) -> None:
        """Move the file into storage as the run's result."""
        ctx = self.ctx
        ctx.keep_result(RESULT, f"{ctx.run.job_name} - deleted supporters #{ctx.run.number}.csv")

    def keep_partial(self) -> None:
        """Keep the partial file in storage for a retry on whichever worker takes it."""
        if os.path.exists(self.partial):
            with suppress(OSError):
                self.ctx.storage.store(self.ctx.result_key(f"{RESULT}.part"), self.partial)


class SupporterDelete(JobType):
    """Supporters deleted on request, in batches, each deleted email recorded in the result."""

    key = "supporter_delete"
    label = "Supporter Delete"
    description = (
        "Delete supporters on request, from a CSV of emails or a saved filter: you see how many "
        "and type the number to confirm. Only a keyed hash of each email is kept, so that imports "
        "reject the address."
    )
    noun = "supporters"
    noun_past = "deleted"
    result_kind = "CSV"
    runs_on_request = False  # its confirmation starts its one run; no Run now, no schedule
    can_be_step = False
    page_endpoint = "erasure.detail"
    new_endpoint, new_label = "erasure.new", "New supporter delete"
    count_labels: ClassVar[dict[str, str]] = {
        "checked": "Checked",
        "updated": "Deleted",
        "unchanged": "Not found",
        "rejected": "Rejected",
    }

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        if params.get("source") == "filter":
            source = f"Saved filter “{params.get('filter_name', '')}”: {params.get('rule_text', '')}"
        else:
            source = f"Emails in {params.get('filename', '')}"
        confirmed = params.get("confirmed")
        return [
            ("Supporters", source),
            ("Confirmed", plural(confirmed, "supporter") if confirmed is not None else "Not yet"),
        ]

    def summary(self, run: Run) -> str:
        rejected = f", {plural(run.rejected, 'line')} rejected" if run.rejected else ""
        return (
            f"Completed: {plural(run.updated, 'supporter')} deleted, "
            f"{plural(run.unchanged, 'email')} not found{rejected}."
        )

    def run(self, ctx: RunContext) -> None:
        params = ctx.params
        owner = ctx.run.job.owner
        key = email_key(ctx.config["SECRET_KEY"])
        batch_size = ctx.config["DELETE_BATCH_SIZE"]  # supporters deleted in one transaction
        result = ResultFile(ctx)
        out, writer = result.open()
        try:
            with out:
                if params["source"] == "filter":
                    self._by_filter(ctx, owner, key, batch_size, out, writer)
                else:
                    self._by_file(ctx, owner, key, batch_size, out, writer)
        except RunStopped:
            result.keep()  # what was deleted before the stop is recorded all the same
            db.session.commit()
            forget_request(ctx.storage, params)
            raise
        except BaseException:
            result.keep_partial()
            raise
        result.keep()
        if forget_request(ctx.storage, params):
            ctx.log("The uploaded list of emails was deleted.")

    def _by_filter(self, ctx: RunContext, owner: User, key: bytes, size: int, out: Any, writer: Any) -> None:
        """Delete the supporters a saved filter matches, in id order."""
        where = [*filter_conditions(ctx.params), *scope(owner)]
        point = ctx.checkpoint
        last_id, done = point.get("last_id", 0), point.get("done", 0)
        left = db.session.execute(
            select(func.count()).select_from(Supporter).where(Supporter.id > last_id, *where)
        ).scalar_one()
        confirmed = ctx.params.get("confirmed", 0)
        if not done and left > confirmed:
            raise JobError(
                f"{left:,} supporters match the filter now, more than the {confirmed:,} confirmed; "
                "nothing was deleted. Start a new Supporter Delete to confirm the new number."
            )
        ctx.begin_processing(done + left)
        while True:
            rows = db.session.execute(
                select(Supporter.id, Supporter.email)
                .where(Supporter.id > last_id, *where)
                .order_by(Supporter.id)
                .limit(size)
            ).all()
            if not rows:
                break
            erase([(row.id, row.email) for row in rows], key, ctx.run.id)
            writer.writerows([neutralise(row.email), "deleted"] for row in rows)
            out.flush()
            last_id, done = rows[-1].id, done + len(rows)
            ctx.commit_batch(
                done=done,
                checked=len(rows),
                updated=len(rows),
                checkpoint={"last_id": last_id, "done": done, "bytes": out.tell()},
            )

    def _by_file(self, ctx: RunContext, owner: User, key: bytes, size: int, out: Any, writer: Any) -> None:
        """Delete the supporters whose emails the uploaded file lists, in file order."""
        params = ctx.params
        done = ctx.checkpoint.get("records", 0)
        ctx.begin_processing(params.get("total_rows"))
        limits = scope(owner)
        storage, stored_key = located(ctx.storage, params["path"])
        with storage.local_copy(stored_key) as path:
            for batch in file_emails(path, params, skip=done, size=size):
                emails = list(dict.fromkeys(email for _, email, _ in batch if email is not None))
                found = (
                    dict(
                        db.session.execute(
                            select(Supporter.email, Supporter.id).where(Supporter.email.in_(emails), *limits)
                        ).all()
                    )
                    if emails
                    else {}
                )
                if found:
                    erase([(supporter_id, email) for email, supporter_id in found.items()], key, ctx.run.id)
                rejected = 0
                for line, email, given in batch:
                    if email is None and given:  # (an empty cell is no request)
                        ctx.reject(line, f"line {line}: '{given[:80]}' is not an email address")
                        rejected += 1
                writer.writerows(
                    [neutralise(email), "deleted" if email in found else "not found"] for email in emails
                )
                out.flush()
                done += len(batch)
                ctx.commit_batch(
                    done=done,
                    checked=len(batch),
                    updated=len(found),
                    unchanged=len(emails) - len(found),
                    rejected=rejected,
                    checkpoint={"records": done, "bytes": out.tell()},
                )

    def after_cancel(self, run: Run, phase: str) -> None:
        if phase == "before_start" and run.job is not None:
            forget_request(current_storage(), run.job.params)


def forget_request(storage: Storage, params: dict[str, Any]) -> bool:
    """Delete a delete's uploaded list of emails once no run needs it; True if it was."""
    if params.get("source") != "csv" or not params.get("path"):
        return False
    where, key = located(storage, params["path"])
    try:
        where.delete(key)
    except (OSError, StorageUnavailable):
        return False  # the upload sweep deletes it later
    return True


def rule_text(saved: SavedFilter) -> str:
    """A saved filter's rule in words (for the job's page)."""
    return describe_rule(saved.rule)
