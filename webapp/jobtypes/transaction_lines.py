"""The lines of a Transaction Data Import's file, parsed a slice at a time, column by column:
each cell converted (a repeated value — a date, a currency, a type — once per run) or replaced by
its Problem, then each line with its values and every problem it has, in the order of its fields.

Accepted: an amount as a number other than zero ("12.50", "1,200", "$5"); a date written
yyyy-mm-dd, optionally followed by a time ("2026-01-05 10:30:00", "2026-01-05T10:30:00Z": a
payment processor's charge time; with an offset from UTC, the day is that instant's in the account
time zone), not after today in the account time zone; a type one-off
(one_off, single), recurring or refund in any case; an ISO 4217 currency code in any case."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from webapp.csvfiles import RecordBatch
from webapp.jobtypes import fields
from webapp.rules.currencies import DEFAULT as DEFAULT_CURRENCY
from webapp.rules.currencies import currency_code

PROFILE = ("first_name", "last_name", "address1", "city", "state", "zip", "country", "phone")
KINDS = {
    "one_off": "one_off",
    "oneoff": "one_off",
    "one off": "one_off",
    "one-off": "one_off",
    "single": "one_off",
    "recurring": "recurring",
    "refund": "refund",
}
KIND_WORDS = {"one_off": "one-off gift", "recurring": "recurring gift", "refund": "refund"}
# a day, maybe with a time ("10:30", "10:30:00", "10:30:00.123") and maybe its offset from UTC
# ("Z", "+02:00", "-0500"): a time with an offset is an instant, whose day is the account's
_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)? ?(Z|[+-]\d{2}:?\d{2})?)?"
)
DATE_FORMAT = "yyyy-mm-dd (like 2026-01-31)"
EARLIEST_GIFT = "1900-01-01"  # (ISO dates compare as text) an earlier one is a typo for its year
TEXT_LIMITS = {"payment_method": 40, "appeal": 80, "transaction_id": 100, "external_id": 100}
TEXT_NAMES = {
    "payment_method": "payment method",
    "appeal": "appeal code",
    "transaction_id": "transaction id",
    "external_id": "external supporter id",
}
# columns of few distinct values: each distinct value of a slice converted once
BY_DISTINCT_VALUE = ("type", "currency", "date", "payment_method", "appeal")


class Problem(str):
    """What is wrong with a cell, in place of its value."""


@dataclass(slots=True)
class Line:
    """One data line of the file as parsed: its values and every problem found with it."""

    line: int
    problems: list[str]
    email: str | None
    external_id: str | None  # the supporter's
    profile: list[Any]  # per mapped profile field; None = blank (keep what is stored)
    amount: str | None  # as stored: "12.50", negative for a refund
    currency: str
    received_on: str | None  # yyyy-mm-dd
    payment_method: str | None
    kind: str
    appeal: str | None
    transaction_id: str | None
    tax_deductible: str | None
    supporter_id: int | None = None
    create: bool = False  # its supporter is new: created from it (the first line naming it)


def _number(name: str, missing: str | None = None) -> Callable[[str], Any]:
    """A number's converter; an empty cell is None, or the Problem `missing`."""
    empty = None if missing is None else Problem(missing)

    def convert(cell: str) -> Any:
        if not cell:
            return empty
        try:
            return fields._number(name, cell)
        except fields.Invalid as problem:
            return Problem(problem)

    return convert


def _text(name: str, missing: str | None = None) -> Callable[[str], Any]:
    """A text's converter; an empty cell is None, or the Problem `missing`."""
    limit = TEXT_LIMITS[name]
    too_long = Problem(f"{TEXT_NAMES[name]} is longer than {limit} characters")
    empty = None if missing is None else Problem(missing)
    return lambda cell: too_long if len(cell) > limit else cell or empty


def _texts(name: str, *, blank: bool = True) -> Callable[[list[str]], list[Any] | None]:
    """A whole column of texts (None where empty), or None when one is too long (or, unless
    `blank`, empty)."""
    limit = TEXT_LIMITS[name]

    def convert(cells: list[str]) -> list[Any] | None:
        if max(map(len, cells), default=0) > limit or (not blank and "" in cells):
            return None
        return [cell or None for cell in cells]

    return convert


def _amounts(cells: list[str]) -> list[Any] | None:
    """A whole column of amounts already as stored ("12.50"), or None."""
    values = fields.COLUMN_CONVERTERS["number"]("amount", cells)
    return None if values is None or None in values else values


def _kind(cell: str) -> Any:
    if not cell:
        return "one_off"
    kind = KINDS.get(cell.lower().replace("_", " "))
    if kind is None:
        return Problem(f"'{fields._shown(cell)}' is not a transaction type: use one-off, recurring or refund")
    return kind


def _email(missing: str | None) -> Callable[[str], Any]:
    """An email's converter (lower-cased); an empty cell is None, or the Problem `missing`."""
    empty = None if missing is None else Problem(missing)

    def convert(cell: str) -> Any:
        if not cell:
            return empty
        try:
            return fields._email("email", cell)
        except fields.Invalid as problem:
            return Problem(problem)

    return convert


def _field(name: str) -> Callable[[str], Any]:
    convert = fields.converter_for(name)

    def converted(cell: str) -> Any:
        if not cell:
            return None
        try:
            return convert(name, cell)
        except fields.Invalid as problem:
            return Problem(problem)

    return converted


def _cents(amount: str) -> int:
    """A stored amount without its sign ("12.50", as fields._number gives it) in cents."""
    return int(amount.replace(".", "", 1))


def _negated(amount: str) -> str:
    """A stored amount made negative (a refund's)."""
    bare = amount.lstrip("-")
    return bare if bare == "0.00" else f"-{bare}"


class LineParser:
    """Parses the slices of one file, as its job's mapping says."""

    def __init__(
        self,
        mapping: list[str],
        *,
        match_by: str,
        default_currency: str = DEFAULT_CURRENCY,
        default_country: str,
        today: str,
        tz_name: str = "UTC",
    ) -> None:
        self.width = len(mapping)
        self.at = {name: index for index, name in enumerate(mapping) if name}
        self.match_by = match_by
        self.default_currency = default_currency
        self.default_country = default_country
        self.profile = [name for name in PROFILE if name in self.at]
        self.today = today
        self.tz_name = tz_name  # the account's: the day of a time given with its offset
        self.converters: dict[str, Callable[[str], Any]] = {
            "email": _email("email is missing" if match_by == "email" else None),
            "external_id": _text(
                "external_id", "external supporter id is missing" if match_by == "external_id" else None
            ),
            **{name: _field(name) for name in self.profile if name != "zip"},
            "zip": lambda cell: cell or None,  # checked for its line's country (postal_codes)
            "type": _kind,
            "amount": _number("amount", "amount is missing"),
            "currency": self._currency,
            "date": self._date,
            "payment_method": _text("payment_method"),
            "appeal": _text("appeal"),
            "transaction_id": _text("transaction_id"),
            "tax_deductible": _number("the tax-deductible amount"),
        }
        # whole columns at once when every cell is already as stored (None: convert cell by cell)
        self.whole_columns: dict[str, Callable[[list[str]], list[Any] | None]] = {
            "email": fields.email_column,
            "external_id": _texts("external_id", blank=match_by != "external_id"),
            **{
                name: partial(fields.column_converter_for(name), name)
                for name in self.profile
                if name != "zip"
            },
            "amount": _amounts,
            "transaction_id": _texts("transaction_id"),
        }

    def _currency(self, cell: str) -> Any:
        if not cell:
            return self.default_currency
        code = currency_code(cell)
        if code is None:
            return Problem(f"'{fields._shown(cell)}' is not a currency code (ISO 4217, like USD, EUR or GBP)")
        return code

    def _date(self, cell: str) -> Any:
        if not cell:
            return Problem("date is missing")
        match = _DATE.fullmatch(cell)
        try:
            day = self._day(*match.groups()) if match else None
        except ValueError:  # no such day or time (2026-02-30, 25:99)
            day = None
        if day is None:
            return Problem(f"'{fields._shown(cell)}' is not a date: write it as {DATE_FORMAT}")
        if day > self.today:
            return Problem(f"date {day} is in the future")
        if day < EARLIEST_GIFT:
            return Problem(f"date {day} is before {EARLIEST_GIFT}: check the year")
        return day

    def _day(self, *parts: str | None) -> str:
        """The day (yyyy-mm-dd) a matched date means: as written, or for a time with an offset
        from UTC, the day of that instant in the account's time zone (a charge at 03:00Z on
        Jan 1 was made on Dec 31 in New York)."""
        *numbers, offset = parts
        year, month, day, hour, minute, second = (int(number or 0) for number in numbers)
        moment = datetime(year, month, day, hour, minute, second)  # (the day's three are always there)
        if offset is None:
            return moment.date().isoformat()
        if offset == "Z":
            zone = UTC
        else:
            digits = offset[1:].replace(":", "")
            shift = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            zone = timezone(-shift if offset[0] == "-" else shift)  # ValueError past 24 h
        return moment.replace(tzinfo=zone).astimezone(ZoneInfo(self.tz_name)).date().isoformat()

    def parse(self, batch: RecordBatch) -> list[Line]:
        """The slice's lines, each with its values and every problem it has."""
        records, count = batch.records, len(batch.records)
        problems: list[list[str]] = [[] for _ in range(count)]
        overlong: list[int] = []
        if set(map(len, records)) != {self.width}:
            records = self._fitted(records, overlong)
        columns = list(zip(*records, strict=True)) if count else []

        def column(name: str, default: Any = None) -> list[Any]:
            """The column mapped to `name` converted, its problems noted (`default` when unmapped)."""
            if name not in self.at:
                return [default] * count
            cells = list(map(str.strip, columns[self.at[name]]))
            whole = self.whole_columns.get(name)
            values = whole(cells) if whole is not None else None
            if values is None:
                convert = self.converters[name]
                if name in BY_DISTINCT_VALUE:
                    converted = {cell: convert(cell) for cell in set(cells)}
                    values = list(map(converted.__getitem__, cells))
                else:
                    values = list(map(convert, cells))
                self._note(values, problems)
            return values

        emails, external_ids = column("email"), column("external_id")
        profiles = self._profiles([column(name) for name in self.profile], problems)
        kinds = column("type", "one_off")
        amounts = column("amount")
        self._signs(amounts, kinds, problems)
        currencies = column("currency", self.default_currency)
        days = column("date")
        methods, appeals, ids = column("payment_method"), column("appeal"), column("transaction_id")
        taxes = self._taxes(column("tax_deductible"), amounts, kinds, problems)
        for index in overlong:  # only its length is said: its fields are not where the header says
            problems[index][:] = [f"has {len(batch.records[index])} fields but the header has {self.width}"]
        return list(
            map(
                Line,
                batch.lines,
                problems,
                emails,
                external_ids,
                profiles,
                amounts,
                currencies,
                days,
                methods,
                kinds,
                appeals,
                ids,
                taxes,
            )
        )

    def _fitted(self, records: list[list[str]], overlong: list[int]) -> list[list[str]]:
        """Records padded to the header's width (a short one's missing cells are blank); an
        overlong one blanked and its position noted."""
        fitted = []
        for index, values in enumerate(records):
            if len(values) > self.width:
                overlong.append(index)
                values = [""] * self.width
            elif len(values) < self.width:
                values = values + [""] * (self.width - len(values))
            fitted.append(values)
        return fitted

    @staticmethod
    def _note(values: list[Any], problems: list[list[str]]) -> None:
        """Move the column's problems to their lines (the value becomes None)."""
        if Problem not in map(type, values):  # (the common case, looked at in C)
            return
        for index in [index for index, value in enumerate(values) if type(value) is Problem]:
            problems[index].append(values[index])
            values[index] = None

    def _profiles(self, columns: list[list[Any]], problems: list[list[str]]) -> list[list[Any]]:
        """Each line's profile values, its postal code checked for its country (its own, else
        the account's)."""
        count = len(problems)
        if not columns:
            return [[] for _ in range(count)]
        if "zip" in self.profile:
            zips = columns[self.profile.index("zip")]
            countries = (
                [code or self.default_country for code in columns[self.profile.index("country")]]
                if "country" in self.profile
                else [self.default_country] * count
            )
            checked = fields.postal_codes(list(zips), countries)
            if checked is None:
                checked = []
                for index, (value, country) in enumerate(zip(zips, countries, strict=True)):
                    try:
                        checked.append(None if value is None else fields.postal_code(value, country))
                    except fields.Invalid as problem:
                        problems[index].append(str(problem))
                        checked.append(None)
            columns[self.profile.index("zip")] = checked
        return [list(values) for values in zip(*columns, strict=True)]

    @staticmethod
    def _signs(amounts: list[Any], kinds: list[Any], problems: list[list[str]]) -> None:
        """A gift's amount may not be negative, nor any amount zero; a refund's is stored negative
        whichever sign the file gives it."""
        for index, (amount, kind) in enumerate(zip(amounts, kinds, strict=True)):
            if amount is None:
                continue
            if _cents(amount.lstrip("-")) == 0:
                problems[index].append(f"amount {amount.lstrip('-')} is zero: a gift or refund has an amount")
            elif kind == "refund":
                amounts[index] = _negated(amount)
            elif amount[0] == "-" and kind is not None:
                problems[index].append(
                    f"amount {amount} is negative for a {KIND_WORDS[kind]} (only a refund may be)"
                )

    @staticmethod
    def _taxes(
        taxes: list[Any], amounts: list[Any], kinds: list[Any], problems: list[list[str]]
    ) -> list[Any]:
        """The tax-deductible amounts (a refund's negative), each at most its line's amount."""
        if all(tax is None for tax in taxes):
            return taxes
        kept: list[Any] = []
        for index, (tax, amount, kind) in enumerate(zip(taxes, amounts, kinds, strict=True)):
            if tax is None:
                kept.append(None)
                continue
            bare = tax.lstrip("-")
            if amount is not None and bare != (whole := amount.lstrip("-")) and _cents(bare) > _cents(whole):
                problems[index].append(f"the tax-deductible amount {bare} is larger than the amount {whole}")
                kept.append(None)
            elif tax[0] == "-" and kind is not None and kind != "refund" and _cents(bare):
                problems[index].append(
                    f"the tax-deductible amount {tax} is negative for a {KIND_WORDS[kind]} "
                    "(only a refund's may be)"
                )
                kept.append(None)
            else:
                kept.append(_negated(tax) if kind == "refund" else tax)
        return kept
