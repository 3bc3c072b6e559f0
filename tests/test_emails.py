"""The one email rule: every place that checks an address agrees with webapp.emails.is_email,
and refuses a pathological value in linear time."""

import time

import pytest
from werkzeug.datastructures import MultiDict

from webapp.auth.forms import account_email_problem
from webapp.campaigns.forms import CampaignForm
from webapp.emails import is_email
from webapp.groups.forms import NotifyForm
from webapp.jobs.forms import NotificationsForm
from webapp.jobtypes import fields

TRICKY = [
    ("ann@example.org", True),
    ("admin@conveyor.local", True),
    ("A.B+tag@Sub.Example.ORG", True),
    ("a@b.c", True),
    ("a@b..c", True),
    ("a@b.c.", True),
    ("o'brien@example.ie", True),
    ("a@b", False),
    ("a@b.", False),
    ("a@.b", False),
    ("@b.c", False),
    ("a@", False),
    ("a@b.c@d.e", False),
    ("a b@c.org", False),
    ("a;b@c.org", False),
    ("<a@b.c>", False),
    ("Ann <a@b.c>", False),
    ("not-an-email", False),
    ("zoë@exämple.org", True),
    # invisible characters: the address reads as another one (a twin supporter, a spoofed user)
    ("op1\u200b@example.org", False),
    ("eve\u202e@example.org", False),
    ("ctl\x01x@example.org", False),
    ("a@b\ufeff.org", False),
    ("soft\u00adhyphen@example.org", False),
    ("x\u2066@example.org", False),
]
N = 100_000
PATHOLOGICAL = [
    "a@" + "." * N + "@",
    "a@" + "b." * (N // 2) + "@",
    "a@b" + "." * N + " ",
    "a" * N + "@",
    "@" * N,
]


def every_check(app, address):
    """What each place that checks an address says of it: valid or not."""
    with app.test_request_context():
        notifications = NotificationsForm(
            formdata=MultiDict({"notify_emails": address, "notify_on": "every"})
        )
        notifications.validate()
        group = NotifyForm(formdata=MultiDict({"notify_success": address}))
        group.validate()
        campaign = CampaignForm(formdata=MultiDict({"notify_email": address}))
        campaign.validate()
    try:
        fields.converter_for("email")("email", address)
        imported = True
    except fields.Invalid:
        imported = False
    return {
        "import value": imported,
        "import column": fields.email_column(["x@y.z", address]) is not None,
        "job notifications": not notifications.notify_emails.errors,
        "group notifications": not group.notify_success.errors,
        "campaign notification": not campaign.notify_email.errors,
        "account": account_email_problem(address) is None,
    }


@pytest.mark.parametrize("address,valid", TRICKY)
def test_every_address_check_agrees_with_the_one_rule(app, address, valid):
    assert is_email(address) is valid
    assert every_check(app, address) == dict.fromkeys(every_check(app, "a@b.c"), valid)


def test_an_address_with_a_trailing_new_line_is_not_one_whole():
    assert not is_email("a@b.c\n")  # forms strip and split their input first


@pytest.mark.parametrize("address", PATHOLOGICAL)
def test_every_address_check_refuses_a_pathological_value_in_linear_time(app, address):
    started = time.perf_counter()
    assert not any(every_check(app, address).values())
    assert time.perf_counter() - started < 3
