"""Receipt numbers: one sequence for the account, taken from the ReceiptCounter row in the
transaction that inserts the receipts.

A batch first locks the counter (an UPDATE that changes nothing: a row lock on PostgreSQL, the
database's write lock on SQLite, where the driver begins the transaction just before it), then
reads what it will receipt, inserts its receipts numbered from the counter's value and moves
the counter past them, and commits. Batches of parallel runs therefore queue on the lock and
see each other's receipts; a batch rolled back (an error, a killed worker) moves the counter
back with it. No number is skipped or used twice, and no gift is receipted twice by two runs."""

from __future__ import annotations

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models.money import ReceiptCounter

COUNTER_ID = 1


def lock_counter() -> int:
    """Lock the receipt counter until the current transaction ends; the next free number."""
    table = ReceiptCounter.__table__
    statement = (
        update(table)
        .where(table.c.id == COUNTER_ID)
        .values(next_number=table.c.next_number)
        .returning(table.c.next_number)
    )
    number = db.session.execute(statement).scalar()
    if number is not None:
        return number
    try:  # the first receipt ever: make the row (a parallel first batch may make it first)
        with db.session.begin_nested():
            db.session.execute(insert(table).values(id=COUNTER_ID, next_number=1))
    except IntegrityError:
        pass
    return db.session.execute(statement).scalar_one()


def take(first: int, count: int) -> None:
    """Move the locked counter past `count` numbers from `first` (lock_counter's value)."""
    table = ReceiptCounter.__table__
    db.session.execute(update(table).where(table.c.id == COUNTER_ID).values(next_number=first + count))
