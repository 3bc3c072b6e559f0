"""The jobs area's forms: notification addresses and the column mapping's selects."""

import time

import pytest
from werkzeug.datastructures import MultiDict
from wtforms.widgets import Select

from webapp.jobs.forms import NotificationsForm, mapping_form


@pytest.mark.parametrize(
    "address",
    [
        "a@" + "." * 100_000 + "@",
        "a@" + "b." * 50_000 + "@",
        "a" * 100_000,
    ],
)
def test_a_pathological_notification_address_is_refused_in_linear_time(app, address):
    with app.test_request_context():
        form = NotificationsForm(formdata=MultiDict({"notify_emails": address, "notify_on": "every"}))
        started = time.perf_counter()
        assert not form.validate()
        assert time.perf_counter() - started < 2
    assert any("is not an email address" in error for error in form.notify_emails.errors)


@pytest.mark.parametrize(
    "address,valid",
    [
        ("ann@example.org", True),
        ("a@b..c", True),
        ("a@b.", False),
        ("a@bc", False),
    ],
)
def test_a_notification_address_needs_a_dot_inside_its_domain(app, address, valid):
    with app.test_request_context():
        form = NotificationsForm(formdata=MultiDict({"notify_emails": address, "notify_on": "every"}))
        form.validate()
    assert (not form.notify_emails.errors) is valid


def test_a_mapping_select_renders_exactly_as_a_plain_select_does(app):
    with app.test_request_context():
        form = mapping_form(["E-mail", "colour", "Zip"], ["email", "", "zip"])
        for index in range(3):
            field = form[f"col_{index}"]
            assert field(**{"aria-label": "x"}) == Select()(field, **{"aria-label": "x"})
        assert '<option selected value="zip">Postal code</option>' in form["col_2"]()
