"""The API's operations and the OpenAPI 3.1 document made from them: each endpoint is declared
once, with the pydantic models that validate its request and describe its answers, and the
document is built from those same declarations (so it cannot drift from what is served)."""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

from flask import Response, request
from pydantic import BaseModel, RootModel, ValidationError
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from webapp.api.v1.core import READING, ApiError, bp
from webapp.api.v1.schemas import ErrorAnswer
from webapp.request_args import MAX_ID

REF = "#/components/schemas/{model}"
FILE = "file"  # an answer that is a file (text/csv), not JSON
PDF = "pdf"  # a PDF file (a receipt)
RESULT = "result"  # a run's result file: a CSV, or a ZIP (a receipt run's PDFs)
FILES: dict[str, tuple[str, tuple[str, ...]]] = {  # its description, its media types
    FILE: ("A CSV file", ("text/csv",)),
    PDF: ("A PDF file", ("application/pdf",)),
    RESULT: ("The result file: a CSV, or a ZIP for a receipt run", ("text/csv", "application/zip")),
}
# every error an operation may answer, with what it means (the body is always ErrorAnswer)
ERRORS = {
    400: "The request is malformed (a bad query value or body)",
    401: "No usable API token was sent",
    403: "The token may not do this (read-only, or not an admin)",
    404: "No such object, or not yours to see",
    409: "The object's state does not allow this now",
    410: "Gone: deleted after the retention period",
    413: "The body is larger than allowed",
    415: "The body is of a type this endpoint does not take",
    422: "The body is well-formed but its values are not valid",
    429: "Too many requests for this token: wait Retry-After seconds",
    503: "A service Conveyor needs (the queue, the file store) is not answering",
}
ALWAYS = (400, 401, 429)  # 400: a NUL in any query value or body (webapp.guards), on every route


@dataclass(frozen=True)
class Operation:
    """One endpoint: where it is, what it takes and what it answers."""

    method: str
    rule: str  # Flask's rule, below /api/v1
    endpoint: str
    tag: str
    summary: str
    description: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    answers: dict[int, type[BaseModel] | str]
    errors: tuple[int, ...]
    body_types: tuple[str, ...] = field(default=("application/json",))
    headers: tuple[tuple[str, str], ...] = ()  # optional request headers it reads: (name, meaning)


OPERATIONS: list[Operation] = []


def operation(
    method: str,
    rule: str,
    *,
    tag: str,
    answers: dict[int, type[BaseModel] | str],
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    errors: tuple[int, ...] = (),
    body_types: tuple[str, ...] = ("application/json",),
    headers: dict[str, str] | None = None,
    found: Callable[..., object] | None = None,
) -> Callable:
    """Declare and route an endpoint. A JSON `body` model is validated before the view runs (a
    422 naming each problem) and given to it as `body`; a `query` model likewise as `query`.
    `found` looks up what the address names first (called with its path values), so that a
    wrong or another user's id is its 404 (or 403) whatever the body holds.
    The view returns a model (sent with the first status of `answers`), a (model, status) pair,
    or a Response of its own (a file)."""

    def declare(view: Callable) -> Callable:
        doc = inspect.getdoc(view) or ""
        summary, _, description = doc.partition("\n\n")
        documented = tuple(
            sorted(
                {
                    *errors,
                    *ALWAYS,
                    *((422,) if body or query else ()),
                    *((403,) if method.upper() not in READING else ()),  # a read-only token
                }
            )
        )

        @functools.wraps(view)
        def served(**kwargs: Any):
            if found is not None:
                found(**kwargs)
            if body is not None and "application/json" in body_types:
                kwargs["body"] = _validated(body, _json_body())
            if query is not None:
                kwargs["query"] = _validated(query, _query_values(query))
            return _answer(view(**kwargs), next(iter(answers)))

        bp.add_url_rule(rule, view.__name__, served, methods=[method])
        OPERATIONS.append(
            Operation(
                method=method.lower(),
                rule=rule,
                endpoint=f"{bp.name}.{view.__name__}",
                tag=tag,
                summary=summary.replace("\n", " "),
                description=description,
                body=body,
                query=query,
                answers=answers,
                errors=documented,
                body_types=body_types,
                headers=tuple((headers or {}).items()),
            )
        )
        return served

    return declare


def _json_body() -> Any:
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)"
        )
    try:
        return json.loads(request.get_data(cache=True))
    except RecursionError:
        raise ApiError(400, "malformed_json", "the body nests too deeply to be read") from None
    except ValueError:  # (not JSON, not UTF-8, or a number too long to read)
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None


def _query_values(model: type[BaseModel]) -> dict[str, Any]:
    """The query string as `model` takes it: every value of a list field (`map=…&map=…`), the
    first of any other."""
    values: dict[str, Any] = request.args.to_dict()
    for name, declared in model.model_fields.items():
        if name in request.args and list in (
            get_origin(declared.annotation),
            *map(get_origin, get_args(declared.annotation)),
        ):
            values[name] = request.args.getlist(name)
    return values


def _validated(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as invalid:
        problems: dict[str, list[str]] = {}
        one_of = issubclass(model, RootModel)  # a union told apart by its type: each problem's
        for error in invalid.errors(include_url=False, include_input=False):  # place starts with it
            loc = error["loc"][1:] if one_of and len(error["loc"]) > 1 else error["loc"]
            where = ".".join(str(part) for part in loc) or "body"
            if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
                where = "type"  # the field that tells the union's members apart
            problems.setdefault(where, []).append(error["msg"])
        said = "; ".join(f"{name}: {' '.join(found)}" for name, found in problems.items())
        raise ApiError(422, "invalid", f"the request was not accepted: {said}", problems=problems) from None


def _answer(answer: Any, status: int) -> Response | tuple[Response, int]:
    if isinstance(answer, Response):
        return answer
    if isinstance(answer, tuple):
        answer, status = answer
    # serialised by pydantic itself (in Rust: several times faster than dumping to dicts and
    # then to JSON, which a page of 50 runs pays on every poll)
    return Response(answer.model_dump_json(), status=status, mimetype="application/json")


def _path(rule: str) -> tuple[str, list[dict]]:
    """A Flask rule as an OpenAPI path, and its path parameters."""
    parameters = []

    def braces(found: re.Match) -> str:
        converter, name = found.group(1), found.group(2)
        schema: dict[str, Any] = {"type": "string"}
        if converter == "int":
            schema = {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_ID,
            }  # ids: 1 up to the database's largest
        elif converter and converter.startswith("any("):
            schema = {"type": "string", "enum": [x.strip() for x in converter[4:-1].split(",")]}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    path = re.sub(r"<(?:([^:<>]+(?:\([^)]*\))?):)?([a-z_]+)>", braces, rule)
    return "/api/v1" + path, parameters


def document(server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared operation."""
    models: set[type[BaseModel]] = {ErrorAnswer}
    for op in OPERATIONS:
        models.update(m for m in (op.body, *op.answers.values()) if isinstance(m, type))
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [(model, "serialization") for model in models]
    pairs += [(op.body, "validation") for op in OPERATIONS if op.body is not None]
    refs, schemas = models_json_schema(list(dict.fromkeys(pairs)), ref_template=REF)

    def ref(model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> dict:
        return refs[(model, mode)]

    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        path, parameters = _path(op.rule)
        if op.query is not None:
            for name, info in op.query.model_json_schema()["properties"].items():
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in op.query.model_json_schema().get("required", []),
                        "description": info.get("description", ""),
                        "schema": {k: v for k, v in info.items() if k not in ("title", "description")},
                    }
                )
        for name, meaning in op.headers:
            parameters.append(
                {
                    "name": name,
                    "in": "header",
                    "required": False,
                    "description": meaning,
                    "schema": {"type": "string"},
                }
            )
        responses: dict[str, Any] = {}
        for status, model in op.answers.items():
            if isinstance(model, str):  # a file: FILES
                described, types = FILES[model]
                content = {kind: {"schema": {"type": "string", "contentMediaType": kind}} for kind in types}
            else:
                described = model.__doc__ or "OK"
                content = {"application/json": {"schema": ref(model)}}
            responses[str(status)] = {"description": described, "content": content}
        for status in op.errors:
            responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
        entry: dict[str, Any] = {
            "operationId": op.endpoint.split(".", 1)[1],
            "tags": [op.tag],
            "summary": op.summary,
            "parameters": parameters,
            "responses": responses,
        }
        if op.description:
            entry["description"] = op.description
        if op.body is not None:
            content = {}
            for media in op.body_types:
                content[media] = (
                    {"schema": ref(op.body, "validation")}
                    if media == "application/json"
                    else {"schema": {"type": "string"}}
                )
            entry["requestBody"] = {"required": True, "content": content}
        elif "application/json" not in op.body_types:  # a body its view reads itself (a CSV file)
            entry["requestBody"] = {
                "required": True,
                "content": {media: {"schema": {"type": "string"}} for media in op.body_types},
            }
        paths.setdefault(path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Conveyor API",
            "version": "1",
            "description": "Everything a person does on Conveyor's screens, for scripts: send "
            "`Authorization: Bearer <token>` with a token made on the API tokens page. A token "
            "sees exactly what its user sees.",
        },
        "servers": [{"url": server_url}],
        "security": [{"token": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas.get("$defs", {}),
            "responses": {
                f"E{status}": {
                    "description": meaning,
                    "content": {"application/json": {"schema": ref(ErrorAnswer)}},
                }
                for status, meaning in ERRORS.items()
            },
        },
    }
