"""Numbers, ids and choices read from a request, parsed strictly (ASCII digits, bounded): a
malformed or out-of-range value is a 400 with a plain sentence, never a 500 from the database."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import date

from flask import abort, request
from werkzeug.routing import IntegerConverter, Map

MAX_ID = 2**31 - 1  # the largest id PostgreSQL's integer columns store (SQLite's go further)
MAX_PAGE = 1_000_000


class BoundedIntegerConverter(IntegerConverter):
    """`<int:...>` in every URL: ASCII digits up to MAX_ID, so that a huge id or one written in
    other digits (², ٣) is a 404 instead of an overflow in the database."""

    regex = r"[0-9]+"

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = MAX_ID,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits, min, max, signed)


def _quoted(raw: str) -> str:
    return f"“{raw[:40]}…”" if len(raw) > 40 else f"“{raw}”"


def as_int(raw: str, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """`raw` as a whole number from `minimum` to `maximum` (ASCII digits only), else None."""
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(maximum)):
        number = int(raw)
        if minimum <= number <= maximum:
            return number
    return None


def parse_int(raw: str, name: str, *, minimum: int = 0, maximum: int = MAX_ID) -> int:
    """`raw` as a whole number from `minimum` to `maximum`; a 400 naming `name` otherwise."""
    number = as_int(raw, minimum=minimum, maximum=maximum)
    if number is None:
        abort(
            400,
            description=f"“{name}” must be a whole number from {minimum:,} to "
            f"{maximum:,}; {_quoted(raw)} is not.",
        )
    return number


def int_arg(
    name: str,
    default: int | None = None,
    *,
    minimum: int = 0,
    maximum: int = MAX_ID,
    values: Mapping[str, str] | None = None,
) -> int | None:
    """The query value `name` (or from `values`) as a whole number; `default` when absent or
    empty; a 400 when malformed or out of range."""
    raw = (request.args if values is None else values).get(name, "")
    return default if raw == "" else parse_int(raw, name, minimum=minimum, maximum=maximum)


def page_arg(name: str = "page") -> int:
    """The page number asked for: 1 when absent, else from 1 to MAX_PAGE (a 400 otherwise)."""
    return int_arg(name, 1, minimum=1, maximum=MAX_PAGE) or 1


def ids_arg(name: str, limit: int) -> list[int]:
    """Comma-separated ids in the query value `name` (the first `limit`; empty items skipped)."""
    parts = [part for part in request.args.get(name, "").split(",") if part][:limit]
    return [parse_int(part, name) for part in parts]


def choice_arg(name: str, allowed: Collection[str]) -> str:
    """The query value `name` if it is one of `allowed`, "" when absent or empty; a 400 naming
    the allowed values otherwise."""
    raw = request.args.get(name, "")
    if raw and raw not in allowed:
        abort(
            400, description=f"“{name}” must be one of {', '.join(sorted(allowed))}; {_quoted(raw)} is not."
        )
    return raw


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def date_arg(
    name: str, *, earliest: date = date(1970, 1, 1), latest: date = date(2100, 12, 31)
) -> date | None:
    """The query value `name` as a date written YYYY-MM-DD (as <input type="date"> sends it)
    from `earliest` to `latest`; None when absent or empty; a 400 otherwise."""
    raw = request.args.get(name, "")
    if raw == "":
        return None
    try:
        day = date.fromisoformat(raw) if _ISO_DATE.fullmatch(raw) else None
    except ValueError:
        day = None
    if day is None or not earliest <= day <= latest:
        abort(
            400,
            description=f"“{name}” must be a date from {earliest.isoformat()} to "
            f"{latest.isoformat()} written YYYY-MM-DD; {_quoted(raw)} is not.",
        )
    return day
