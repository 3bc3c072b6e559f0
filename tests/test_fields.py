"""Import field validation: whole-column conversion agrees with value-by-value conversion."""

import pytest

from webapp.jobtypes import fields

# per field: values a column takes whole; valid values it leaves to the converter one by one
# (not in their stored form); invalid values
SAMPLES = {
    "first_name": (["Ann", "", "O'Brien", "x" * 120, "Zoë"], [], ["x" * 121]),
    "state": (["ma", "NY", ""], [], ["M", "MAS", "1A", "ñy"]),
    "zip": (["02134", "02134-1234", ""], [], ["2134", "021345", "02134-12", "０２１３４"]),
    "phone": (["(617) 555-0101", "555-0101", "", "+1 617.555.0101", "1" * 25], [],
              ["555-01", "617-555-0101 x9", "1" * 26]),
    "opted_in": (["yes", "No", "", "Y", "TRUE", "0", "opted in", "x"], [], ["maybe", "nope"]),
    "donation_total": (["12.50", "-0.50", "", "0.00", "1200.00"],
                       ["12.5", "1,200.00", "$3", "00.50"], ["abc", "12345678901.00"]),
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
