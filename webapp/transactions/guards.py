"""What the money screens (transactions, receipts, rollbacks, reports) check on every request
before their views."""

from __future__ import annotations

from flask import abort, request


def refuse_nul() -> None:
    """Before each request of the money screens: a query value or form field holding a NUL
    character is a 400 with a sentence. PostgreSQL refuses a NUL in any text it is sent (a 500
    otherwise), and no stored value has one. (Registered on the transactions, receipts,
    rollbacks and reports blueprints.)"""
    for values in (request.args, request.form):
        for name, value in values.items(multi=True):
            if "\x00" in value:
                abort(
                    400,
                    description=f"“{name[:40]}” holds a NUL character (0x00), which Conveyor cannot "
                    "store: remove it and send again.",
                )
