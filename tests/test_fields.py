"""Import field validation: whole-column conversion agrees with value-by-value conversion."""

import time
from functools import partial

import pytest

from tests.conftest import no_database
from webapp.jobtypes import fields

pytestmark = no_database

# per field: values a column takes whole; valid values it leaves to the converter one by one
# (not in their stored form); invalid values
SAMPLES = {
    "first_name": (["Ann", "", "O'Brien", "x" * 120, "Zoë"], [], ["x" * 121]),
    "state": (["ma", "NY", ""], [], ["M", "MAS", "1A", "ñy"]),
    "zip": (["02134", "02134-1234", ""], [], ["2134", "021345", "02134-12", "０２１３４", "K1A 0B1"]),
    "country": (
        ["US", "GB", "", "CA"],
        ["ca", "Canada", "UK", "united kingdom", " fr "],
        ["XX", "Narnia", "U"],
    ),
    "phone": (
        ["(617) 555-0101", "555-0101", "", "+1 617.555.0101", "1" * 25],
        [],
        ["555-01", "617-555-0101 x9", "1" * 26],
    ),
    "opted_in": (["yes", "No", "", "Y", "TRUE", "0", "opted in", "x"], [], ["maybe", "nope"]),
    "donation_total": (
        ["12.50", "-0.50", "", "0.00", "1200.00"],
        ["12.5", "1,200.00", "$3", "00.50"],
        ["abc", "12345678901.00"],
    ),
}


def one_by_one(name, values):
    convert = fields.converter_for(name)
    return [convert(name, value) if value else None for value in values]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_column_converts_whole_exactly_as_value_by_value_or_declines(name):
    whole, other_valid, invalid = SAMPLES[name]
    convert_all = fields.column_converter_for(name)
    assert convert_all(name, list(whole)) == one_by_one(name, whole)
    for value in other_valid:
        one_by_one(name, [value])  # valid
        assert convert_all(name, [*whole, value]) is None, value
    for value in invalid:
        with pytest.raises(fields.Invalid):
            one_by_one(name, [value])
        assert convert_all(name, [*whole, value]) is None, value


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_value_holding_the_column_separator_converts_as_it_would_alone(name):
    whole = [value for value in SAMPLES[name][0] if value]
    values = [*whole, whole[0] + "\x00" + whole[1]]
    try:
        expected = one_by_one(name, values)
    except fields.Invalid:
        expected = None
    assert fields.column_converter_for(name)(name, values) == expected


def test_an_email_column_is_lower_cased_whole_or_declined():
    assert fields.email_column(["Ann@Example.org", "b@x.co"]) == ["ann@example.org", "b@x.co"]
    for bad in ("", "not-an-email", "a@b", "a b@c.org", "a@b.org\x00c@d.org"):
        assert fields.email_column(["ann@example.org", bad]) is None, bad


# Cells built to make a backtracking pattern try every split: the old email check took 39 s on
# 30,000 characters (minutes on these); each one here must be refused in linear time.
N = 100_000
PATHOLOGICAL = {
    "email": [
        "a@" + "." * N + "@",
        "a@" + "b." * (N // 2) + "@",
        "a@b" + "." * N + " ",
        "a" * N + "@",
        "@" * N,
    ],
    "phone": ["1 " * (N // 2) + "x", "(" * N, "1" * N + "x", "1" * 6 + "-" * N + "x"],
    "zip": ["1" * N + "x", "12345-" * (N // 6)],
    "country": ["C" * N],
    "state": ["A" * N],
    "donation_total": ["1" * N + "x", "1." * (N // 2), "-" * N],
    "opted_in": ["y" * N],
    "first_name": ["x" * N],
}
CASES = [(name, value) for name, values in PATHOLOGICAL.items() for value in values]


def refusal(name, value):
    convert = fields._email if name == "email" else fields.converter_for(name)
    with pytest.raises(fields.Invalid) as refused:
        convert(name, value)
    return str(refused.value)


@pytest.mark.parametrize("name,value", CASES)
def test_a_pathological_cell_is_refused_in_linear_time_with_a_short_reason(name, value):
    started = time.perf_counter()
    reason = refusal(name, value)
    assert time.perf_counter() - started < 2
    assert len(reason) < 200  # a reason is stored in 500 characters


@pytest.mark.parametrize("name,value", CASES)
def test_a_column_holding_a_pathological_cell_is_declined_in_linear_time(name, value):
    good = {
        "email": "ann@example.org",
        "phone": "555-0101",
        "zip": "02134",
        "country": "US",
        "state": "MA",
        "donation_total": "1.00",
        "opted_in": "yes",
        "first_name": "Ann",
    }[name]
    values = [good] * 1000 + [value, value] + [good] * 1000
    convert_all = fields.email_column if name == "email" else partial(fields.column_converter_for(name), name)
    started = time.perf_counter()
    assert convert_all(values) is None
    assert time.perf_counter() - started < 2


def test_a_long_refused_value_is_quoted_cut_short_with_its_length():
    assert refusal("email", "a@" + "." * N + "@") == (
        f"'a@{'.' * 38}… (100,003 characters)' is not a valid email address"
    )
    assert refusal("email", "not-an-email") == "'not-an-email' is not a valid email address"


@pytest.mark.parametrize(
    "value,valid",
    [
        ("a@b.c", True),
        ("a@..c", True),
        ("a@b.c.", True),
        ("a@.b.c", True),
        ("a@b..c", True),
        ("a@b.", False),
        ("a@.b", False),
        ("a@bc", False),
        ("a@b.c@d", False),
        ("a@.", False),
    ],
)
def test_an_email_domain_needs_a_dot_with_a_character_either_side_as_before(value, valid):
    assert fields.is_email(value) is valid
    assert (fields.email_column(["x@y.z", value]) is not None) is valid


# per country: (value as written, as stored) it accepts; values it refuses
POSTAL = {
    "US": (
        [("02134", "02134"), ("02134-1234", "02134-1234")],
        ["2134", "021345", "02134-12", "02134 1234", "ABCDE", "０２１３４"],
    ),
    "CA": (
        [("K1A 0B1", "K1A 0B1"), ("k1a0b1", "K1A 0B1"), ("h2x 1y4", "H2X 1Y4")],
        ["K1A0B1X", "K1A  0B1", "D1A 0B1", "K1A 0O1", "W1A 0B1", "123 456", "K1A-0B1"],
    ),
    "GB": (
        [
            ("SW1A 1AA", "SW1A 1AA"),
            ("sw1a1aa", "SW1A 1AA"),
            ("M1 1AE", "M1 1AE"),
            ("W11AA", "W1 1AA"),
            ("B33 8TH", "B33 8TH"),
            ("CR2 6XH", "CR2 6XH"),
            ("DN55 1PT", "DN55 1PT"),
            ("GIR 0AA", "GIR 0AA"),
        ],
        ["SW1A", "1AA SW1", "SW1A 1A", "SW1A-1AA", "SWAA 1AA", "ABC1 1AA", "SW1A 1AA 1"],
    ),
    "IE": (
        [("D02 X285", "D02 X285"), ("d02x285", "D02 X285"), ("D6W 1234", "D6W 1234")],
        ["D02", "B02 X285"],
    ),
    "NL": ([("1234 AB", "1234 AB"), ("1234ab", "1234 AB")], ["0123 AB", "1234", "12345 AB"]),
    "DE": ([("10115", "10115")], ["1011", "101150", "D-10115"]),
    "FR": ([("75001", "75001")], ["7500", "75 001"]),
    "AU": ([("2000", "2000")], ["200", "20000"]),
}


@pytest.mark.parametrize("country", sorted(POSTAL))
def test_each_country_accepts_its_postal_codes_stored_as_it_writes_them(country):
    accepted, _ = POSTAL[country]
    for value, stored in accepted:
        assert fields.postal_code(value, country) == stored, value
        assert fields.postal_code(stored, country) == stored  # the stored form is accepted as is


@pytest.mark.parametrize("country", sorted(POSTAL))
def test_each_country_refuses_other_postal_codes_naming_the_country(country):
    name = fields.POSTAL_RULES[country].name
    for value in POSTAL[country][1]:
        with pytest.raises(fields.Invalid, match=f"^'{value}' is not a valid {name} \\(like "):
            fields.postal_code(value, country)


def test_a_canadian_code_is_refused_in_the_words_of_the_issue():
    with pytest.raises(fields.Invalid) as refused:
        fields.postal_code("K1A0B1X", "CA")
    assert str(refused.value) == "'K1A0B1X' is not a valid Canadian postal code (like K1A 0B1)"


def test_a_country_without_a_rule_takes_any_postal_code_up_to_the_columns_size():
    assert fields.postal_code("SE-123 45 Stockholm", "SE") == "SE-123 45 Stockholm"  # 19 characters
    with pytest.raises(fields.Invalid, match="too long for a postal code"):
        fields.postal_code("x" * 21, "SE")


@pytest.mark.parametrize("country", [*sorted(POSTAL), "SE"])
def test_a_postal_code_column_converts_whole_exactly_as_value_by_value_or_declines(country):
    accepted, refused = POSTAL.get(country, ([("123 45", "123 45")], ["x" * 21]))
    stored = [value for _, value in accepted] + [""]
    assert fields.postal_code_column(stored, country) == [value or None for value in stored]
    for value, converted in accepted:
        column = fields.postal_codes([*stored[:-1], value], [country] * len(stored))
        assert column == [*stored[:-1], converted]
        if value != converted:
            assert fields.postal_code_column([*stored, value], country) is None
    for value in refused:
        assert fields.postal_code_column([*stored, value], country) is None
        assert fields.postal_codes([*stored[:-1], value], [country] * len(stored)) is None


def test_postal_codes_of_several_countries_are_each_checked_for_their_own():
    values = ["k1a0b1", "sw1a1aa", "02134", None, "123 45"]
    assert fields.postal_codes(values, ["CA", "GB", "US", "US", "SE"]) == [
        "K1A 0B1",
        "SW1A 1AA",
        "02134",
        None,
        "123 45",
    ]
    assert fields.postal_codes(values, ["GB", "GB", "US", "US", "SE"]) is None


@pytest.mark.parametrize("country", sorted(POSTAL))
def test_a_pathological_postal_code_is_refused_in_linear_time(country):
    for value in ["1" * N + "x", "A1" * (N // 2), "SW1A " * (N // 5), "K1A 0B1" + "\x00K1A 0B1" * (N // 8)]:
        started = time.perf_counter()
        with pytest.raises(fields.Invalid) as refused:
            fields.postal_code(value, country)
        assert fields.postal_code_column([*[value] * 2, "x"], country) is None
        assert time.perf_counter() - started < 2
        assert len(str(refused.value)) < 200


def test_a_lines_problems_are_joined_within_the_reason_and_the_rest_counted():
    assert fields.problems_text(["a", "b", "c"]) == "a; b; c"
    long = [f"problem {i} " + "x" * 100 for i in range(10)]
    text = fields.problems_text(long)
    assert len(text) <= fields.REASON_CHARS
    assert text.startswith(long[0] + "; " + long[1]) and text.endswith(" (+6 more)")
    text = fields.problems_text(["y" * 1000, "z"])
    assert len(text) == fields.REASON_CHARS and text.endswith("y… (+1 more)")
