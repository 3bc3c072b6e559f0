"""Campaign templates render within bounds: huge numbers, repeated text, long loops, oversize
output and include/extends/import each end quickly in a plain RenderError, on save and preview
as much as in a send; ordinary templates render as before."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from webapp.extensions import db
from webapp.mailing.render import SAMPLE_SUPPORTER, CompiledCampaign, RenderError, render_problems
from webapp.models import Campaign, Job

QUICK = 5.0  # seconds: generous for a loaded machine; the old code took 30 s and more, or hung

BOUNDED = [
    ("{{ 3**100000000 }}", "it computes a number that is too large"),
    ("{{ 'a'*20000000 }}", "it repeats text beyond 1 MB"),
    (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "it loops or calls more than 100,000 times",
    ),
    ("{{ 'x'.ljust(10**9) }}", "it pads text beyond 1 MB"),
    ("{% for i in range(2000) %}{{ 'y' * 1000 }}{% endfor %}", "its output passes 1 MB"),
    ("{% include 'footer.html' %}", "include, extends and import are not available"),
    ("{% extends 'layout.html' %}", "include, extends and import are not available"),
    ("{% import 'macros.html' as m %}", "include, extends and import are not available"),
    ("{% from 'macros.html' import button %}", "include, extends and import are not available"),
    ("{{ 'x'|center(1000000000) }}", "it pads text beyond 1 MB"),
    ("{{ '%1000000000s' % 'x' }}", "it pads text beyond 1 MB"),
    ("{{ '{:>1000000000}'.format('x') }}", "it pads text beyond 1 MB"),
    (
        "{% set ns = namespace(text='x') %}{% for i in range(40) %}"
        "{% set ns.text = ns.text ~ ns.text %}{% endfor %}{{ ns.text|length }}",
        "it builds text or lists beyond 1 MB",
    ),
    (
        "{% set text = 'x' * 100000 %}{% for a in text %}{% for b in text %}{% endfor %}{% endfor %}",
        "it loops or calls more than 100,000 times",
    ),
    ("{{ [" + "1, " * 60000 + "1] }}", "more than 5,000 names, values and operators"),
]


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    """What `action` returned (or raised) and how many seconds it took."""
    started = time.monotonic()
    try:
        outcome = action()
    except Exception as exc:  # the outcome under test
        outcome = exc
    return outcome, time.monotonic() - started


def render_text(body: str) -> str:
    """The plain-text part of a campaign whose text body is `body`, for the sample supporter."""
    campaign = CompiledCampaign(
        from_address="Park Friends <news@park.example>",
        subject="Hello {{ first_name }}",
        html_body="",
        text_body=body,
    )
    message = campaign.render(SAMPLE_SUPPORTER).as_email()
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def stored_campaign(user, **fields) -> Campaign:
    """A draft campaign written straight to the database, as an older version might have."""
    job = Job(owner_id=user.id, job_type="email_campaign", name="Appeal", params={})
    values = {
        "name": "Appeal",
        "from_address": "Park Friends <news@park.example>",
        "subject": "Hello {{ first_name }}",
        "html_body": "",
        "text_body": "Dear {{ first_name }}",
        "audience": "opted_in",
    }
    campaign = Campaign(owner_id=user.id, job=job, **{**values, **fields})
    db.session.add_all([job, campaign])
    db.session.commit()
    return campaign


@pytest.mark.parametrize(("body", "reason"), BOUNDED)
def test_a_template_past_a_bound_fails_quickly_with_a_plain_reason(body, reason):
    outcome, seconds = timed(lambda: render_text(body))
    assert isinstance(outcome, RenderError), outcome
    assert reason in str(outcome) and outcome.part == "text_body"
    assert str(outcome).startswith("the template cannot be rendered (text_body: ")
    assert seconds < QUICK


def test_compiling_a_huge_constant_expression_does_not_fold_it():
    started = time.monotonic()
    campaign = CompiledCampaign(
        from_address="news@park.example",
        subject="Hi",
        html_body="<p>{{ 3**100000000 }}{{ 'a'*20000000 }}</p>",
        text_body="{{ ('x'|center(999999))|length }}" * 50,
    )
    assert time.monotonic() - started < QUICK
    with pytest.raises(RenderError, match="html_body: it computes a number that is too large"):
        campaign.render(SAMPLE_SUPPORTER)


def test_an_ordinary_template_with_merge_fields_loops_and_filters_still_renders():
    text = render_text(
        "Dear {{ first_name|upper }} {{ last_name }},\n"
        "{% for i in range(3) %}{{ loop.index }}{% endfor %} "
        "{{ [city, state]|join(', ') }} {{ '%.2f'|format(12.5) }} {{ '{:>4}'.format('x') }} "
        "{{ 'ab' * 2 }} {{ 2**10 }} {{ first_name ~ '!' }} {{ 'a-b'.replace('-', '+') }}\n"
        "{% set ns = namespace(total=0) %}{% for n in [1, 2, 3] %}"
        "{% set ns.total = ns.total + n %}{% endfor %}{{ ns.total }}"
    )
    assert text.startswith("Dear ALEX Sample,\n123 Springfield, IL 12.50    x abab 1024 Alex! a+b\n6")


@pytest.mark.parametrize("printed", ["self", "range", "dict", "lipsum", "cycler(1, 2)", "namespace()"])
def test_the_templates_own_objects_are_refused_when_printed(printed):
    """They pass the merge-field check (they may be used); printed, every recipient got
    "<TemplateReference None>" or the like."""
    problems = render_problems("Hi", f"<p>Hi {{{{ first_name }}}}</p>{{{{ {printed} }}}}", "Hi")
    assert problems["html_body"].startswith("the template cannot be rendered: {{ … }} prints a value")


def test_text_just_under_the_bounds_still_renders():
    text = render_text("{{ ('x' * 900000)|length }} {% for i in range(99000) %}{% endfor %}done")
    assert text.startswith("900000 done")


def test_supporter_data_is_never_run_as_template_code_under_the_bounds():
    campaign = CompiledCampaign(
        from_address="news@park.example",
        subject="Hi {{ first_name }}",
        html_body="<p>{{ first_name }}</p>",
        text_body="{{ first_name }}",
    )
    data = {**SAMPLE_SUPPORTER, "first_name": "<b>{{ 3**100000000 }}</b>"}
    message, seconds = timed(lambda: campaign.render(data).as_email())
    assert seconds < QUICK
    assert "&lt;b&gt;{{ 3**100000000 }}&lt;/b&gt;" in message.get_body(("html",)).get_content()


@pytest.mark.parametrize(
    ("field", "body", "reason"),
    [
        ("text_body", "{{ 'a'*20000000 }}", "it repeats text beyond 1 MB"),
        ("text_body", "{{ 3**100000000 }}", "it computes a number that is too large"),
        (
            "html_body",
            "<p>{% include 'footer.html' %}</p>",
            "include, extends and import are not available in campaign templates",
        ),
        ("subject", "Hi {{ 'x'.ljust(10**9) }}", "it pads text beyond 1 MB"),
    ],
)
def test_saving_a_template_past_a_bound_shows_the_reason_and_saves_nothing(
    client, auth, users, field, body, reason
):
    auth.login("user@example.org")
    form = {
        "name": "Appeal",
        "from_address": "news@park.example",
        "subject": "Hello",
        "text_body": "Dear {{ first_name }}",
        "html_body": "",
        "audience": "opted_in",
        field: body,
    }
    response, seconds = timed(lambda: client.post("/campaigns/new", data=form))
    assert response.status_code == 200 and seconds < QUICK
    assert reason in response.get_data(as_text=True)
    assert Campaign.query.count() == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{{ 3**100000000 }}", "it computes a number that is too large"),
        ("{{ 'a'*20000000 }}", "it repeats text beyond 1 MB"),
        ("{% include 'footer.html' %}", "include, extends and import are not available"),
    ],
)
def test_preview_of_a_stored_template_past_a_bound_answers_with_the_reason(client, auth, users, body, reason):
    campaign = stored_campaign(users["user"], text_body=body)
    auth.login("user@example.org")
    response, seconds = timed(lambda: client.get(f"/campaigns/{campaign.id}/preview"))
    assert response.status_code == 200 and seconds < QUICK
    assert reason in response.get_data(as_text=True)
