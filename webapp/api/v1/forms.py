"""The screens' own WTForms forms, filled from a JSON body: a body meets exactly the checks its
page's form makes, and each problem is named in a 422."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from webapp.api.v1.core import fail


def form_data(values: dict[str, Any]) -> MultiDict[str, str]:
    """JSON values as the page's form would post them: a list is the field repeated, a ticked
    checkbox is "y", and an unticked one (False) or a value left out (None) is not sent."""
    data: MultiDict[str, str] = MultiDict()
    for name, value in values.items():
        if value is None or value is False:
            continue
        for one in value if isinstance(value, list) else [value]:
            data.add(name, "y" if one is True else str(one))
    return data


def refuse_if_invalid(form: FlaskForm, what: str) -> None:
    """A 422 naming each problem the (validated) form found: "the <what> was not saved: …"."""
    problems = {name: list(errors) for name, errors in form.errors.items() if name != "csrf_token" and errors}
    if problems:
        said = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in problems.items())
        raise fail(422, f"the {what} was not saved: {said}", problems=problems)


def validated(form: FlaskForm, what: str) -> None:
    """Check the form as its page does; a 422 naming each problem."""
    form.validate()
    refuse_if_invalid(form, what)
