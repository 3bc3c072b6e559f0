"""What every request is checked for before its view (registered app-wide by webapp.web)."""

from __future__ import annotations

from typing import Any

from flask import abort, request
from werkzeug.exceptions import RequestEntityTooLarge

NUL = "\x00"
JSON_LIMIT = 1024 * 1024  # a JSON body is read whole: one larger is a 413 (sent in chunks: on reading)


def _refuse(name: str) -> None:
    abort(
        400,
        description=f"“{name[:40]}” holds a NUL character (0x00), which Conveyor cannot store: "
        "remove it and send again.",
    )


def refuse_nul() -> None:
    """A query value, form field or JSON string holding a NUL character is a 400 with a sentence
    (JSON under /api/v1). PostgreSQL refuses a NUL in any text it is sent (a 500 otherwise),
    and no stored value has one. An upload over the size limit is left to its view, which says
    so on its form."""
    if request.is_json:  # before anything reads the body (see _has_nul_escape)
        request.max_content_length = JSON_LIMIT + 1
    try:
        sent = [request.args, request.form]
    except RequestEntityTooLarge:
        return
    for values in sent:
        for name, value in values.items(multi=True):
            if NUL in value:
                _refuse(name)
    if request.is_json and _has_nul_escape():
        try:
            found = _nul_in(request.get_json(silent=True))
        except RecursionError:
            abort(400, description="The JSON body nests too deeply to be read.")
        if found is not None:
            _refuse(found)


def _has_nul_escape() -> bool:
    """The raw JSON body spells a NUL (only JSON's escape can: a raw one is not valid JSON).
    A body sent in chunks, with no length, is read up to the limit and no further: one that
    reaches past it is a 413."""
    data = request.get_data(cache=True)
    if len(data) > JSON_LIMIT:
        raise RequestEntityTooLarge()
    return b"\\u0000" in data


def _nul_in(value: Any, where: str = "body") -> str | None:
    """The place of the first string (or key) holding a NUL in a parsed JSON value, else None."""
    if isinstance(value, str):
        return where if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _nul_in(key, where) or _nul_in(item, str(key))
            if found is not None:
                return found
    if isinstance(value, list):
        for item in value:
            found = _nul_in(item, where)
            if found is not None:
                return found
    return None
