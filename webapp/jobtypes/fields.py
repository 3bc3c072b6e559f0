"""Per-field validation for imports: each value converted or refused with a plain reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from webapp.emails import address_pattern, is_email
from webapp.models.people import FIELDS_BY_NAME
from webapp.rules.countries import COUNTRIES, DEFAULT, country_code

# Every pattern here runs on user data, so each is written to take linear time: no two parts of
# it can match the same characters (a class excludes what follows it), so a failed match gives
# back no choice to retry (the email rule, in webapp/emails.py, is written the same way).
# The postal code patterns below match at most 8 characters, so each gives up within them.
_STATE = re.compile(r"^[A-Za-z]{2}$")
# at least 7 digits and only these; each digit starts the next repetition (no digit in the class)
_PHONE = re.compile(r"[\s()+.\-]*(?:\d[\s()+.\-]*){7,}")
_AMOUNT = re.compile(r"-?(?:0|[1-9]\d{0,9})\.\d\d")  # already as _number stores it
# commas only between groups of three digits before any point ("1,234.50"); any other comma
# ("12,50", "1.234,56": a decimal comma) is refused rather than dropped (it made 12,50 twelve
# hundred and fifty)
_GROUPED = re.compile(r"[-+]?\$?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_TRUE = {"1", "y", "yes", "true", "t", "opted in", "x"}
_FALSE = {"0", "n", "no", "false", "f", "opted out", ""}
_MAX_TEXT = {"first_name": 120, "last_name": 120, "address1": 255, "city": 120}
CENT = Decimal("0.01")
TOO_LARGE = Decimal("1e10")
SHOWN_CHARS = 60  # of a refused value in its reason (a reason is stored in 500 characters)
REASON_CHARS = 480  # of a rejected line's problems: the stored 500 less its "line 12,345: "
POSTAL_CHARS = 20  # a postal code of a country without a rule is free text up to the column's size


@dataclass(frozen=True)
class PostalRule:
    """How a country writes its postal codes: `pattern` fullmatches one upper-cased, and its
    groups joined by a space are the stored form (a pattern without groups stores it as is)."""

    name: str  # as a reason says it: "'K1A0B1X' is not a valid Canadian postal code"
    example: str
    pattern: re.Pattern[str]


def _rule(name: str, example: str, pattern: str) -> PostalRule:
    return PostalRule(name, example, re.compile(pattern))


_FIVE_DIGITS = "[0-9]{5}"
_CA_LETTER = "[ABCEGHJ-NPRSTV-Z]"  # never D, F, I, O, Q or U (nor W or Z first)
POSTAL_RULES: dict[str, PostalRule] = {
    "US": _rule("US ZIP code", "12345 or 12345-6789", "[0-9]{5}(?:-[0-9]{4})?"),
    "CA": _rule(
        "Canadian postal code",
        "K1A 0B1",
        f"([ABCEGHJ-NPRSTVXY][0-9]{_CA_LETTER}) ?([0-9]{_CA_LETTER}[0-9])",
    ),
    "GB": _rule("UK postcode", "SW1A 1AA", "(GIR|[A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})"),
    "IE": _rule("Irish Eircode", "D02 X285", "([AC-FHKNPRTV-Y][0-9]{2}|D6W) ?([0-9AC-FHKNPRTV-Y]{4})"),
    "NL": _rule("Dutch postal code", "1234 AB", "([1-9][0-9]{3}) ?([A-Z]{2})"),
    "DE": _rule("German postal code", "10115", _FIVE_DIGITS),
    "FR": _rule("French postal code", "75001", _FIVE_DIGITS),
    "AU": _rule("Australian postcode", "2000", "[0-9]{4}"),
}


class Invalid(ValueError):
    """A value that cannot be stored in its field."""


def _shown(value: str) -> str:
    """A refused value as its reason quotes it: cut short when it is long."""
    if len(value) <= SHOWN_CHARS:
        return value
    return f"{value[: SHOWN_CHARS - 20]}… ({len(value):,} characters)"


def problems_text(problems: list[str]) -> str:
    """A line's problems joined with '; ' within REASON_CHARS: those that do not fit are
    counted ('(+2 more)'), and a first one too long alone is cut with '…'."""
    text = "; ".join(problems)
    if len(text) <= REASON_CHARS:
        return text
    shown, used = 0, -2  # the problems that fit, and their characters with the "; " between
    for problem in problems:  # while the next one and the count of those after it still fit
        after = len(f" (+{len(problems) - shown - 1} more)")
        if used + 2 + len(problem) + after > REASON_CHARS:
            break
        used += 2 + len(problem)
        shown += 1
    if shown:  # fewer than all: together they are longer than REASON_CHARS
        return "; ".join(problems[:shown]) + f" (+{len(problems) - shown} more)"
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0][: REASON_CHARS - len(more) - 1] + "…" + more


def _email(name: str, value: str) -> str:
    if not is_email(value):
        raise Invalid(f"'{_shown(value)}' is not a valid email address")
    return value.lower()


def _text(name: str, value: str) -> str:
    limit = _MAX_TEXT.get(name, 255)
    if len(value) > limit:
        raise Invalid(f"{name} is longer than {limit} characters")
    return value


def postal_code(value: str, country: str) -> str:
    """A postal code checked and stored as its country writes it (free text up to
    POSTAL_CHARS for a country without a rule)."""
    rule = POSTAL_RULES.get(country)
    if rule is None:
        if len(value) > POSTAL_CHARS:
            raise Invalid(
                f"'{_shown(value)}' is too long for a postal code (at most {POSTAL_CHARS} characters)"
            )
        return value
    match = rule.pattern.fullmatch(value.upper())
    if match is None:
        raise Invalid(f"'{_shown(value)}' is not a valid {rule.name} (like {rule.example})")
    return " ".join(match.groups()) if match.re.groups else value


def _zip(name: str, value: str) -> str:
    return postal_code(value, DEFAULT)


def _country(name: str, value: str) -> str:
    code = country_code(value)
    if code is None:
        raise Invalid(f"'{_shown(value)}' is not a country: use its 2-letter code (like US, GB or CA)")
    return code


def _state(name: str, value: str) -> str:
    if not _STATE.match(value):
        raise Invalid(f"{name} must be a 2-letter code")
    return value.upper()


def _phone(name: str, value: str) -> str:
    if not (7 <= len(value) <= 25 and _PHONE.fullmatch(value)):
        raise Invalid(f"'{_shown(value)}' is not a phone number")
    return value


def _number(name: str, value: str) -> str:
    """An amount as stored, in cents ("1,234.5" → "1234.50"); refused rather than guessed at: a
    decimal comma, or more decimals than a cent (rounding would change the amount)."""
    if _AMOUNT.fullmatch(value):
        return value
    if "," in value:
        if not _GROUPED.fullmatch(value):
            raise Invalid(
                f"'{_shown(value)}' is not a number for {name}: write decimals with a point "
                "(12.50); a comma may only separate thousands (1,234.50)"
            )
        value = value.replace(",", "")
    try:
        number = Decimal(value.replace("$", "", 1) if value.lstrip("+-").startswith("$") else value)
    except InvalidOperation:
        raise Invalid(f"'{_shown(value)}' is not a number for {name}") from None
    if not number.is_finite():
        raise Invalid(f"'{_shown(value)}' is not a number for {name}")
    if abs(number) >= TOO_LARGE:
        raise Invalid(f"'{_shown(value)}' is too large for {name} (at most {TOO_LARGE - CENT:,})")
    if number != number.quantize(CENT):
        raise Invalid(f"'{_shown(value)}' has more than two decimals for {name} (amounts are kept in cents)")
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
    "country": _country,
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
# a rule's stored form: its pattern with the one space it writes (the groups change nothing)
_POSTAL_COLUMNS = {
    country: _column_pattern(f"(?:{rule.pattern.pattern.replace(' ?', ' ')})?")
    for country, rule in POSTAL_RULES.items()
}
_STATE_COLUMN = _column_pattern(r"(?:[A-Za-z]{2})?")
_PHONE_COLUMN = _column_pattern(r"(?:(?=[^\x00]{7,25}(?:\x00|\Z))[\s()+.\-]*(?:\d[\s()+.\-]*){7,})?")
_AMOUNT_COLUMN = _column_pattern(r"(?:-?(?:0|[1-9]\d{0,9})\.\d\d)?")
_COUNTRY_VALUES = COUNTRIES.keys() | {""}
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


def postal_code_column(values: list[str], country: str) -> list[Any] | None:
    """A column of postal codes of one country as postal_code converts them (None where
    empty), or None when some value needs postal_code."""
    pattern = _POSTAL_COLUMNS.get(country)
    if pattern is None:
        if max(map(len, values), default=0) > POSTAL_CHARS:
            return None
    elif _joined(pattern, values) is None:
        return None
    return [value or None for value in values]


def postal_codes(values: list[str | None], countries: list[str]) -> list[Any] | None:
    """Postal codes (None where empty) each checked for its row's country, or None when one
    is invalid."""
    if len(set(countries)) == 1:
        whole = postal_code_column([value or "" for value in values], countries[0])
        if whole is not None:
            return whole
    try:
        return [
            None if value is None else postal_code(value, country)
            for value, country in zip(values, countries, strict=True)
        ]
    except Invalid:
        return None


def _country_column(name: str, values: list[str]) -> list[Any] | None:
    if not _COUNTRY_VALUES.issuperset(values):
        return None
    return [value or None for value in values]


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
    "zip": lambda name, values: postal_code_column(values, DEFAULT),
    "country": _country_column,
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
