"""Per-field validation for imports: each value converted or refused with a plain reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from webapp.emails import address_pattern, is_email
from webapp.models.people import FIELDS_BY_NAME

# Every pattern here runs on user data, so each is written to take linear time: no two parts of
# it can match the same characters (a class excludes what follows it), so a failed match gives
# back no choice to retry (the email rule, in webapp/emails.py, is written the same way).
_ZIP = re.compile(r"^[0-9]{5}(-[0-9]{4})?$")
_STATE = re.compile(r"^[A-Za-z]{2}$")
# at least 7 digits and only these; each digit starts the next repetition (no digit in the class)
_PHONE = re.compile(r"[\s()+.\-]*(?:\d[\s()+.\-]*){7,}")
_AMOUNT = re.compile(r"-?(?:0|[1-9]\d{0,9})\.\d\d")  # already as _number stores it
_TRUE = {"1", "y", "yes", "true", "t", "opted in", "x"}
_FALSE = {"0", "n", "no", "false", "f", "opted out", ""}
_MAX_TEXT = {"first_name": 120, "last_name": 120, "address1": 255, "city": 120}
CENT = Decimal("0.01")
TOO_LARGE = Decimal("1e10")
SHOWN_CHARS = 60  # of a refused value in its reason (a reason is stored in 500 characters)


class Invalid(ValueError):
    """A value that cannot be stored in its field."""


def _shown(value: str) -> str:
    """A refused value as its reason quotes it: cut short when it is long."""
    if len(value) <= SHOWN_CHARS:
        return value
    return f"{value[: SHOWN_CHARS - 20]}… ({len(value):,} characters)"


def _email(name: str, value: str) -> str:
    if not is_email(value):
        raise Invalid(f"'{_shown(value)}' is not a valid email address")
    return value.lower()


def _text(name: str, value: str) -> str:
    limit = _MAX_TEXT.get(name, 255)
    if len(value) > limit:
        raise Invalid(f"{name} is longer than {limit} characters")
    return value


def _zip(name: str, value: str) -> str:
    if not _ZIP.match(value):
        raise Invalid(f"{name} must be 5 digits")
    return value


def _state(name: str, value: str) -> str:
    if not _STATE.match(value):
        raise Invalid(f"{name} must be a 2-letter code")
    return value.upper()


def _phone(name: str, value: str) -> str:
    if not (7 <= len(value) <= 25 and _PHONE.fullmatch(value)):
        raise Invalid(f"'{_shown(value)}' is not a phone number")
    return value


def _number(name: str, value: str) -> str:
    if _AMOUNT.fullmatch(value):
        return value
    try:
        number = Decimal(value.replace(",", "").lstrip("$"))
    except InvalidOperation:
        raise Invalid(f"'{_shown(value)}' is not a number for {name}") from None
    if not number.is_finite() or abs(number) >= TOO_LARGE:
        raise Invalid(f"'{_shown(value)}' is not a number for {name}")
    return str(number.quantize(CENT))


def _bool(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise Invalid(f"'{_shown(value)}' is not yes/no for {name}")


CONVERTERS: dict[str, Callable[[str, str], Any]] = {
    "email": _email,
    "text": _text,
    "zip": _zip,
    "state": _state,
    "phone": _phone,
    "number": _number,
    "bool": _bool,
}


def converter_for(field_name: str) -> Callable[[str, str], Any]:
    """The converter for a supporter field."""
    return CONVERTERS[FIELDS_BY_NAME[field_name].kind]


# Whole columns at once. A batch of an import is converted column by column: the column's
# values joined by a separator are checked by one regex call, and converted with C-level loops,
# whenever every value is already in its stored form. A column with any other value returns
# None and is converted value by value with the converters above, which also word the reasons.
# Each value pattern accepts exactly the empty value plus what its converter returns unchanged.
_SEPARATOR = "\x00"


def _column_pattern(value: str) -> re.Pattern[str]:
    """Fullmatches values joined by _SEPARATOR when each one fullmatches `value` (a pattern
    that never matches the separator itself)."""
    return re.compile(f"(?:{value})(?:{_SEPARATOR}(?:{value}))*", re.DOTALL)


_EMAIL_COLUMN = _column_pattern(address_pattern(also_excluded=_SEPARATOR))  # one regex call
_ZIP_COLUMN = _column_pattern(r"(?:[0-9]{5}(?:-[0-9]{4})?)?")
_STATE_COLUMN = _column_pattern(r"(?:[A-Za-z]{2})?")
_PHONE_COLUMN = _column_pattern(r"(?:(?=[^\x00]{7,25}(?:\x00|\Z))[\s()+.\-]*(?:\d[\s()+.\-]*){7,})?")
_AMOUNT_COLUMN = _column_pattern(r"(?:-?(?:0|[1-9]\d{0,9})\.\d\d)?")
_BOOL_VALUES = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False), "": None}


def _joined(pattern: re.Pattern[str], values: list[str]) -> str | None:
    """The values joined, when the pattern takes them all (and none holds the separator)."""
    joined = _SEPARATOR.join(values)
    if pattern.fullmatch(joined) and joined.count(_SEPARATOR) == len(values) - 1:
        return joined
    return None


def _text_column(name: str, values: list[str]) -> list[Any] | None:
    if max(map(len, values), default=0) > _MAX_TEXT.get(name, 255):
        return None
    return [value or None for value in values]


def _matching_column(pattern: re.Pattern[str]) -> Callable[[str, list[str]], list[Any] | None]:
    def convert(name: str, values: list[str]) -> list[Any] | None:
        if _joined(pattern, values) is None:
            return None
        return [value or None for value in values]

    return convert


def _state_column(name: str, values: list[str]) -> list[Any] | None:
    joined = _joined(_STATE_COLUMN, values)
    if joined is None:
        return None
    return [value or None for value in joined.upper().split(_SEPARATOR)]


def _bool_column(name: str, values: list[str]) -> list[Any] | None:
    lowered = _SEPARATOR.join(values).lower().split(_SEPARATOR)
    if len(lowered) != len(values) or not _BOOL_VALUES.keys() >= set(lowered):
        return None
    return list(map(_BOOL_VALUES.__getitem__, lowered))


def email_column(values: list[str]) -> list[str] | None:
    """A column of stripped email values, lower-cased, or None unless every one is valid."""
    joined = _joined(_EMAIL_COLUMN, values)
    return None if joined is None else joined.lower().split(_SEPARATOR)


COLUMN_CONVERTERS: dict[str, Callable[[str, list[str]], list[Any] | None]] = {
    "text": _text_column,
    "zip": _matching_column(_ZIP_COLUMN),
    "state": _state_column,
    "phone": _matching_column(_PHONE_COLUMN),
    "number": _matching_column(_AMOUNT_COLUMN),
    "bool": _bool_column,
}


def column_converter_for(field_name: str) -> Callable[[str, list[str]], list[Any] | None]:
    """The whole-column converter for a supporter field (email excepted: see email_column):
    stripped values in, converted values out (None where empty), or None when some value needs
    the field's converter."""
    return COLUMN_CONVERTERS[FIELDS_BY_NAME[field_name].kind]


def _stored_number(value: Any) -> str | None:
    if type(value) is float:  # SQLite: a stored amount (< 1e10, to the cent) rounds back exactly
        return f"{value:.2f}"
    return None if value is None else str(Decimal(str(value)).quantize(CENT))


def _stored_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


STORED_NORMALISERS: dict[str, Callable[[Any], Any]] = {
    "number": _stored_number,
    "bool": _stored_bool,
}


def stored_normaliser(field_name: str) -> Callable[[Any], Any] | None:
    """What puts a stored value of this field in the form its converter produces (to tell
    unchanged rows apart), or None when the driver already returns it in that form."""
    return STORED_NORMALISERS.get(FIELDS_BY_NAME[field_name].kind)
