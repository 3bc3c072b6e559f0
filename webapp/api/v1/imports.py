"""Imports by the API (the Import Service): a CSV or JSON-lines body becomes an Import Service run.

The body is streamed to the file store under the upload limit and checked as the upload page
checks a file (encoding, header row, data rows, email mapped); each request is a hidden job of
its own (webapp/jobtypes/import_service.py) whose run answers the request. An Idempotency-Key
header makes a repeated POST answer its first run instead of starting another (`started_once`,
shared with exports)."""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app, request
from flask_login import current_user
from werkzeug.datastructures import FileStorage

from webapp import audit
from webapp.api.v1.core import fail
from webapp.api.v1.idempotency import ONCE, started_once
from webapp.api.v1.schemas import ImportQuery, RunOut
from webapp.api.v1.spec import operation
from webapp.csvfiles import LINE_LIMIT, CsvProblem
from webapp.engine.runs import start_run
from webapp.extensions import db
from webapp.jobs.uploads import Upload, forget_upload, save_upload
from webapp.jobtypes.import_service import ImportService
from webapp.jobtypes.user_data_import import UserDataImport, guess_field, mapping_problems
from webapp.models.jobs import Job
from webapp.models.people import FIELDS_BY_NAME, SUPPORTER_FIELDS
from webapp.models.runs import Run
from webapp.permissions import job_or_404
from webapp.storage import StorageUnavailable, current_storage

TAG = "Imports and exports"
CSV, NDJSON = "text/csv", "application/x-ndjson"


@operation(
    "POST",
    "/imports",
    tag=TAG,
    answers={202: RunOut},
    query=ImportQuery,
    errors=(400, 403, 404, 409, 413, 415, 503),
    body_types=(CSV, NDJSON),
    headers=ONCE,
)
def create_import(query: ImportQuery):
    """Import supporters from the body (a CSV file, or JSON lines) as an Import Service run.

    A CSV body (`Content-Type: text/csv`) is checked as the upload page checks a file; its
    columns are mapped by `map` (`Column:field`, repeated), else by the saved import job
    `job_id`'s mapping, else as the mapping page guesses them; Email must be mapped. JSON lines
    (`application/x-ndjson`): one object per line whose keys are supporter fields (email,
    first_name, …); a record on the body's line n is line n + 1 of the import (line 1 is the
    header made of the keys). Answers 202 with the queued run: poll it, read its rejected
    lines, stop or retry it as any run. Too large a body is a 413, an unreadable one a 400, an
    unknown field or column a 422. With an `Idempotency-Key` header, the same key sent again
    within a day answers the first run (with `Idempotent-Replayed: true`) and starts nothing."""
    return started_once("imports", lambda: _import(query))


def _import(query: ImportQuery) -> Run:
    """Check the request, store its body as an upload and start its Import Service run."""
    kind = request.mimetype
    if kind not in (CSV, NDJSON):
        raise fail(415, f"send the body as CSV ({CSV}) or JSON lines ({NDJSON})")
    if not query.name.strip():
        raise fail(422, "name: give the import a name (or leave name out)", problems={"name": ["empty"]})
    pairs = map_pairs(request.args.getlist("map"), FIELDS_BY_NAME)
    saved = _saved_import(query.job_id) if query.job_id else None
    if kind == NDJSON and (pairs or saved):
        raise fail(422, "the keys of JSON lines are the fields: map and job_id are for a CSV body")
    upload = _stored_body(kind, query)
    try:
        mapping = list(upload.header) if kind == NDJSON else _mapping(upload.header, pairs, saved)
    except BaseException:
        discard(upload)
        raise
    readd = query.readd_deleted or bool(saved and saved.params.get("readd_deleted"))
    params: dict[str, Any] = {
        **upload.params(mapping),
        "readd_deleted": readd,
        "sent_as": "ndjson" if kind == NDJSON else "csv",
    }
    if saved:
        params["mapping_from_job_id"] = saved.id
    job = Job(owner_id=current_user.id, job_type=ImportService.key, name=query.name.strip(), params=params)
    db.session.add(job)
    db.session.commit()
    forget_upload(upload)
    run = start_run(job, current_user, trigger="api")
    audit.record("run.started", run, detail=f"Import Service {run.label}: {upload.rows:,} records sent (API)")
    return run


def map_pairs(
    values: list[str], fields: Iterable[str], what: str = "supporter field", example: str = "E-mail:email"
) -> list[tuple[str, str]]:
    """The `map` parameters as (column, field) pairs; a 422 naming a malformed one or a field
    not among `fields` (`what` names them in the message; `example` shows the form)."""
    known = list(fields)
    pairs = []
    for value in values:
        column, colon, name = value.rpartition(":")
        column, name = column.strip(), name.strip()
        if not colon or not column:
            raise fail(422, f"map={value[:100]!r} is not Column:field (e.g. map={example})")
        if name and name not in known:
            raise fail(422, f"map: {name[:100]!r} is no {what} (the fields: {', '.join(known)})")
        pairs.append((column, name))
    return pairs


def _saved_import(job_id: int) -> Job:
    """A saved User Data Import job the token's user may see (another user's is a 404)."""
    found = job_or_404(job_id)
    if not found.active:
        raise fail(404, "this job was deleted")
    if found.job_type != UserDataImport.key:
        raise fail(422, f"job {job_id} is not a User Data Import job: its mapping cannot be used")
    return found


def _mapping(header: list[str], pairs: list[tuple[str, str]], saved: Job | None) -> list[str]:
    """The field of each of the body's columns ('' ignores it); a 422 for a column the header
    lacks or a mapping the mapping page would refuse."""
    by_column: dict[str, str] = {}
    if saved:
        columns, fields = saved.params.get("columns", []), saved.params.get("mapping", [])
        by_column = {column: name for column, name in zip(columns, fields, strict=False) if name}
    by_column.update(pairs)
    missing = [column for column, _ in pairs if column not in header]
    if missing:
        shown = ", ".join(repr(column[:100]) for column in missing[:10])
        raise fail(422, f"map names columns the body's header does not have: {shown}")
    if by_column or saved:
        mapping = [by_column.get(column, "") for column in header]
    else:
        mapping = [guess_field(column) for column in header]
    problems = mapping_problems(mapping)
    if problems:
        said = " ".join(problems)
        raise fail(422, f"the columns cannot be imported so: {said}", problems={"map": problems})
    return mapping


def _stored_body(kind: str, query: ImportQuery) -> Upload:
    """The body, streamed to the file store and checked as the upload page checks a file: a
    400 saying what is wrong with it, a 413 when it is larger than the upload limit."""
    try:
        if kind == CSV:
            body = FileStorage(stream=request.stream, filename="api-import.csv")
            return save_upload(body, current_user.id, query.name, query.encoding)
        with _ndjson_as_csv() as converted:
            return save_upload(converted, current_user.id, query.name, "utf-8")
    except CsvProblem as problem:
        raise fail(400, f"the body cannot be imported: {problem}") from None
    except StorageUnavailable:
        raise fail(503, "the file store did not answer, so nothing was saved: try again shortly") from None


@contextmanager
def _ndjson_as_csv() -> Iterator[FileStorage]:
    """The JSON-lines body as a CSV file whose header is the keys used, in the fields' order:
    the body is streamed to a local file, checked line by line (a 400 or 422 naming the line),
    then written out as CSV; both local files go afterwards."""
    base = os.path.join(current_app.config["UPLOADS_DIR"], f"api-{secrets.token_hex(8)}")
    body, converted = f"{base}.ndjson.part", f"{base}.csv.part"
    try:
        with open(body, "wb") as raw:
            shutil.copyfileobj(request.stream, raw, 1024 * 1024)
        keys = _keys_used(body)
        with open(converted, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(keys)
            for found in _json_lines(body):
                if found is None:
                    out.write("\r\n")  # a blank line stays one, so the line numbers hold
                else:
                    writer.writerow([_cell(found[1].get(key)) for key in keys])
        with open(converted, "rb") as file:
            yield FileStorage(stream=file, filename="api-import.ndjson")
    finally:
        for path in (body, converted):
            if os.path.exists(path):
                os.remove(path)


def _json_lines(path: str) -> Iterator[tuple[int, dict[str, Any]] | None]:
    """Each line's number and object, or None for a blank line (CsvProblem, a 400, for a line
    that is no JSON object)."""
    with open(path, "rb") as lines:
        for number, line in enumerate(iter(lambda: lines.readline(LINE_LIMIT + 1), b""), start=1):
            if len(line) > LINE_LIMIT:
                raise CsvProblem(f"Line {number:,} is longer than {LINE_LIMIT // 1024**2} MB.")
            if not line.strip():
                yield None
                continue
            try:
                record = json.loads(line.decode("utf-8-sig" if number == 1 else "utf-8"))
            except UnicodeDecodeError:
                raise CsvProblem(f"Line {number:,} is not valid UTF-8.") from None
            except RecursionError:
                raise CsvProblem(f"Line {number:,} nests too deeply to be read.") from None
            except ValueError:
                raise CsvProblem(f"Line {number:,} is not valid JSON.") from None
            if not isinstance(record, dict):
                raise CsvProblem(f"Line {number:,} is not a JSON object.")
            yield number, record


def _keys_used(path: str) -> list[str]:
    """The fields the lines use, in the fields' order; a 422 for an unknown key or a value
    that is no text, number, true/false or null."""
    used: set[str] = set()
    for found in _json_lines(path):
        if found is None:
            continue
        number, record = found
        unknown = sorted(record.keys() - FIELDS_BY_NAME.keys())
        if unknown:
            known = ", ".join(FIELDS_BY_NAME)
            raise fail(
                422, f"line {number:,}: {unknown[0][:100]!r} is no supporter field (the fields: {known})"
            )
        for key, value in record.items():
            if isinstance(value, dict | list):
                raise fail(
                    422, f"line {number:,}: the value of {key} is not text, a number, true/false or null"
                )
        used.update(record)
    if not used:
        raise CsvProblem("The body holds no JSON object.")
    if "email" not in used:
        raise fail(422, "no line has an email: each supporter is found by theirs")
    return [field.name for field in SUPPORTER_FIELDS if field.name in used]


def _cell(value: object) -> str:
    """A JSON value as the CSV cell an importer reads (null: empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def discard(upload: Upload) -> None:
    """Delete a stored upload the request did not use."""
    storage = current_storage()
    for key in (upload.key, upload.key.removesuffix(".csv") + ".json"):
        try:
            storage.delete(key)
        except (OSError, StorageUnavailable):
            current_app.logger.warning("%s not deleted: the upload sweep takes it", storage.where(key))
