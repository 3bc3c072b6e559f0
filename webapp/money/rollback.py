"""Rollback Transaction Data Import below its screen and job type: what may be rolled back (the refusals),
the claim one rollback holds on an import, the preview, and how a changed field is restored.
The rules themselves are described in webapp/jobtypes/transaction_rollback.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Numeric, delete, exists, func, or_, select

from webapp.errors import JobError
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.campaigns import Recipient
from webapp.models.money import ImportRollback, Receipt, ReceiptItem, SupporterChange, Transaction
from webapp.models.people import Supporter
from webapp.models.runs import Run
from webapp.money.issuing import LIVE
from webapp.rules.clock import plural
from webapp.rules.states import RunState

IMPORT_TYPE = "transaction_import"  # the runs it rolls back (webapp/jobtypes/transaction_import.py)
SAMPLE_SIZE = 10
RECEIPTED_SHOWN = 50
ROLLED_BACK_FROM = (RunState.COMPLETED, RunState.CANCELLED)  # an import that ended this way
ENDED_UNDONE = (RunState.FAILED, RunState.CANCELLED)  # a rollback whose claim may be taken over
KEPT = "kept (changed since)"
RECEIPTED = "a receipted gift must be voided on its receipt first"


@dataclass
class Refusal:
    """Why an import cannot be rolled back now, and the receipted gifts when that is why."""

    reason: str
    receipted: list[tuple[int, str, int]] = field(default_factory=list)  # (id, external id, number)
    receipted_count: int = 0


@dataclass
class Preview:
    """What a rollback would change if it ran now."""

    transactions: int
    created: int  # supporters the import created
    deletable: int  # of them, deleted now (nothing refers to them)
    changed: int  # supporters whose fields the import changed
    sample_transactions: list[Transaction]
    # (email, [(field, before, after, now)]) of the first supporters changed
    sample_changes: list[tuple[str, list[tuple[str, Any, Any, Any]]]]


def import_refusal(run: Run | None) -> str | None:
    """Why `run` is not an import a rollback may undo (its type, state or trigger); None: it is."""
    if run is None or run.job_type != IMPORT_TYPE:
        return "only a Transaction Data Import run can be rolled back."
    if run.trigger == "api":
        return "only dashboard imports can be rolled back: this import was made through the API."
    if run.state not in ROLLED_BACK_FROM:
        return f"only a completed or stopped import can be rolled back; this one is {run.state.value}."
    return None


def claim_of(import_run_id: int) -> ImportRollback | None:
    """The rollback that claimed the import, if any."""
    return db.session.execute(
        select(ImportRollback).where(ImportRollback.import_run_id == import_run_id)
    ).scalar_one_or_none()


def claim_refusal(claim: ImportRollback | None, besides: int | None = None) -> str | None:
    """Why the claim stops another rollback (run `besides` is the one asking): it is done or
    under way; None when there is none, or its run ended undone (failed or cancelled)."""
    if claim is None or claim.rollback_run_id == besides:
        return None
    holder = db.session.get(Run, claim.rollback_run_id)
    if holder is None or holder.state in ENDED_UNDONE:
        return None
    if holder.state is RunState.COMPLETED:
        return f"this import was already rolled back by {holder.label} of “{holder.job_name}”."
    return f"this import is being rolled back by {holder.label} of “{holder.job_name}”."


def _receipted_statement(import_run_id: int, ids: list[int] | None = None):
    """The import's transactions (of `ids`, if given) on a live receipt (issued: neither voided
    nor replaced; a replaced receipt's number is void, and it cannot be voided again)."""
    query = (
        select(Transaction.id, Transaction.external_id, Receipt.number)
        .join(ReceiptItem, ReceiptItem.transaction_id == Transaction.id)
        .join(Receipt, Receipt.id == ReceiptItem.receipt_id)
        .where(Transaction.run_id == import_run_id, Receipt.status == LIVE)
    )
    return query.where(Transaction.id.in_(ids)) if ids is not None else query


def receipted_refusal(import_run_id: int, ids: list[int] | None = None) -> Refusal | None:
    """A refusal listing the import's receipted gifts (the first RECEIPTED_SHOWN); None if none."""
    statement = _receipted_statement(import_run_id, ids)
    found = db.session.execute(statement.order_by(Transaction.id).limit(RECEIPTED_SHOWN)).all()
    if not found:
        return None
    count = db.session.execute(select(func.count()).select_from(statement.subquery())).scalar_one()
    listed = ", ".join(f"transaction {tx_id} on receipt {number}" for tx_id, _, number in found[:5])
    more = f" and {count - 5:,} more" if count > 5 else ""
    return Refusal(
        f"{plural(count, 'transaction')} of this import {'is' if count == 1 else 'are'} on a receipt "
        f"({listed}{more}): {RECEIPTED}.",
        [(row.id, row.external_id or "", row.number) for row in found],
        count,
    )


def refusal(import_run: Run | None, rollback_run_id: int | None = None) -> Refusal | None:
    """Why a rollback of `import_run` (by run `rollback_run_id`, when it asks) may not go on."""
    reason = import_refusal(import_run)
    if reason is None and import_run is not None:
        reason = claim_refusal(claim_of(import_run.id), rollback_run_id)
    if reason is not None:
        return Refusal(reason)
    assert import_run is not None
    return receipted_refusal(import_run.id)


def rolled_back_imports():
    """The import runs a rollback claimed (their changes no longer count as a later change)."""
    return select(ImportRollback.import_run_id)


def deletable(import_run_id: int) -> list[Any]:
    """The conditions on Supporter under which a supporter the import created is deleted: nothing
    refers to it now but the import's own transactions (see the module docstring)."""
    undone = rolled_back_imports()
    return [
        ~exists().where(
            Transaction.supporter_id == Supporter.id,
            or_(Transaction.run_id.is_(None), Transaction.run_id != import_run_id),
        ),
        ~exists().where(Receipt.supporter_id == Supporter.id),
        ~exists().where(Recipient.supporter_id == Supporter.id),
        # every import (of supporters or of transactions) writes last_run_id on the supporters
        # it creates or changes: a later one's change is seen here, with no look-up in
        # supporter_change (not indexed by supporter: each index entry would cost the imports)
        or_(
            Supporter.last_run_id.is_(None),
            Supporter.last_run_id == import_run_id,
            Supporter.last_run_id.in_(undone),
        ),
    ]


def _created_by(import_run_id: int):
    return select(SupporterChange.supporter_id).where(
        SupporterChange.run_id == import_run_id, SupporterChange.created.is_(True)
    )


def count_of(statement) -> int:
    """The number of rows a statement selects."""
    return db.session.execute(select(func.count()).select_from(statement.subquery())).scalar_one()


def preview(import_run: Run) -> Preview:
    """What rolling back `import_run` would delete and restore now."""
    run_id = import_run.id
    transactions = select(Transaction.id).where(Transaction.run_id == run_id)
    created = select(Supporter.id).where(Supporter.id.in_(_created_by(run_id)))
    changed = select(SupporterChange.id).where(
        SupporterChange.run_id == run_id, SupporterChange.created.is_(False)
    )
    sample_transactions = list(
        db.session.execute(
            select(Transaction)
            .where(Transaction.run_id == run_id)
            .order_by(Transaction.id)
            .limit(SAMPLE_SIZE)
        ).scalars()
    )
    sample_rows = db.session.execute(
        select(SupporterChange, Supporter)
        .join(Supporter, Supporter.id == SupporterChange.supporter_id)
        .where(SupporterChange.run_id == run_id, SupporterChange.created.is_(False))
        .order_by(SupporterChange.id)
        .limit(SAMPLE_SIZE)
    ).all()
    sample_changes = [
        (
            supporter.email,
            [
                (name, change.before.get(name), change.after.get(name), getattr(supporter, name, None))
                for name in fields_of(change)
            ],
        )
        for change, supporter in sample_rows
    ]
    return Preview(
        transactions=count_of(transactions),
        created=count_of(created),
        deletable=count_of(created.where(*deletable(run_id))),
        changed=count_of(changed),
        sample_transactions=sample_transactions,
        sample_changes=sample_changes,
    )


# -- restoring fields: JSON values (Decimal as str, None kept) against the columns' own types

RESTORABLE = {column.key for column in Supporter.__table__.columns} - {"id", "email", "created_at"}


def fields_of(change: SupporterChange) -> list[str]:
    """The supporter fields a change record names that a rollback may restore, in order."""
    return [name for name in {**change.after, **change.before} if name in RESTORABLE]


def stored(name: str, value: Any) -> Any:
    """A value of a change record as supporter column `name` holds it."""
    if value is None:
        return None
    kind = Supporter.__table__.columns[name].type
    try:
        if isinstance(kind, Numeric):
            return Decimal(str(value))
        if isinstance(kind, Boolean):
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes"}
        if isinstance(kind, DateTime):
            return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if isinstance(kind, Date):
            return value if isinstance(value, date) else date.fromisoformat(str(value))
    except (InvalidOperation, ValueError):
        return value
    return value


def same(name: str, current: Any, recorded: Any) -> bool:
    """Whether a supporter's current value of `name` equals a recorded (JSON) one."""
    return current == stored(name, recorded)


def restore(supporter: Supporter, change: SupporterChange) -> tuple[list[str], list[str]]:
    """Put back the fields `change` recorded where they still hold what the import wrote:
    (fields restored, fields changed since and kept)."""
    restored, kept = [], []
    for name in fields_of(change):
        current = getattr(supporter, name)
        if same(name, current, change.after.get(name)) and not same(name, current, change.before.get(name)):
            setattr(supporter, name, stored(name, change.before.get(name)))
            restored.append(name)
        elif not same(name, current, change.before.get(name)):
            kept.append(name)
    if restored and "updated_at" not in restored:
        supporter.updated_at = utcnow()
    return restored, kept


def hold_claim(import_run_id: int, rollback_run_id: int) -> None:
    """Make sure run `rollback_run_id` holds the import's claim (a retry whose claim was freed
    claims it again); committed. JobError when another rollback holds it."""
    claim = claim_of(import_run_id)
    if claim is not None and claim.rollback_run_id == rollback_run_id:
        return
    if claim is not None:
        raise JobError("Nothing was rolled back: another rollback of this import took it over.")
    db.session.add(ImportRollback(import_run_id=import_run_id, rollback_run_id=rollback_run_id))
    db.session.commit()


def free_claim(rollback_run_id: int) -> None:
    """Give up the claim run `rollback_run_id` holds (not committed)."""
    db.session.execute(
        delete(ImportRollback)
        .where(ImportRollback.rollback_run_id == rollback_run_id)
        .execution_options(synchronize_session=False)
    )


def rollback_of(import_run_id: int) -> Run | None:
    """The rollback run that holds the import's claim, if any."""
    claim = claim_of(import_run_id)
    return db.session.get(Run, claim.rollback_run_id) if claim is not None else None
