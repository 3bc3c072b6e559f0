"""The API reference page: the OpenAPI document of /api/v1 (webapp/api/v1/spec.py) shown as a
page a person reads — each endpoint by area, its parameters, body and answers, and the shapes
they refer to — made from the same document scripts download, so the two never differ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import render_template, request
from flask_login import login_required

from webapp.api.v1.spec import document
from webapp.tokens.routes import bp

REF = "#/components/schemas/"


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "integer", "string or null", "list of Run", …
    ref: str | None  # the schema it refers to (a link on the page)
    required: bool
    description: str


def kind_of(schema: dict[str, Any]) -> tuple[str, str | None]:
    """A schema in words, and the named schema it refers to (if any)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF)
        return name, name
    if "anyOf" in schema:
        kinds = [kind_of(option) for option in schema["anyOf"]]
        refs = [ref for _, ref in kinds if ref]
        return " or ".join(kind for kind, _ in kinds), refs[0] if refs else None
    if "enum" in schema:
        return "one of " + ", ".join(str(value) for value in schema["enum"]), None
    if "const" in schema:
        return f"“{schema['const']}”", None
    if schema.get("type") == "array":
        inner, ref = kind_of(schema.get("items", {}))
        return f"list of {inner}", ref
    if schema.get("type") == "object" and "additionalProperties" in schema:
        inner, ref = kind_of(schema["additionalProperties"] or {})
        return f"map of {inner}", ref
    return str(schema.get("type", "any")), None


def fields_of(schema: dict[str, Any]) -> list[Field]:
    required = set(schema.get("required", []))
    found = []
    for name, info in schema.get("properties", {}).items():
        kind, ref = kind_of(info)
        found.append(Field(name, kind, ref, name in required, info.get("description", "")))
    return found


def _answers(spec: dict[str, Any], op: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """An operation's answers: (status, what it means, the shape of its body)."""
    found: list[tuple[str, str, str | None]] = []
    for status, answer in op["responses"].items():
        if "$ref" in answer:  # an error: always the error shape
            meaning = spec["components"]["responses"][answer["$ref"].split("/")[-1]]["description"]
            found.append((status, meaning, "ErrorAnswer"))
        elif "application/json" in (content := answer.get("content", {})):
            found.append((status, answer["description"], kind_of(content["application/json"]["schema"])[1]))
        else:
            found.append((status, "A file: " + ", ".join(content), None))
    return found


@bp.route("/reference")
@login_required
def reference():
    """Every endpoint of the JSON API, by area, and the shapes of its bodies and answers."""
    spec = document(request.host_url)
    areas: dict[str, list[dict[str, Any]]] = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {})
            json_body = body.get("application/json", {}).get("schema")
            areas.setdefault(op["tags"][0], []).append(
                {
                    "method": method.upper(),
                    "path": path,
                    "id": op["operationId"],
                    "summary": op["summary"],
                    "description": op.get("description", ""),
                    "parameters": op.get("parameters", []),
                    "body": kind_of(json_body)[1] if json_body else None,
                    "body_types": [media for media in body if media != "application/json"],
                    "answers": _answers(spec, op),
                }
            )
    shapes = {
        name: (schema.get("description", ""), fields_of(schema))
        for name, schema in sorted(spec["components"]["schemas"].items())
    }
    return render_template("tokens/reference.html", areas=areas, shapes=shapes, kind_of=kind_of)
