"""Uploaded import files in storage (uploads/<token>.csv): a CSV plus a JSON record while it waits
for its column mapping, so the mapping step works on any web server; once mapped the job owns
the CSV (the record goes), and deleting the job deletes it. The retention sweep deletes uploads
never mapped within UPLOAD_TTL_HOURS."""

from __future__ import annotations

import io
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import current_app, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from webapp.csvfiles import CsvProblem, inspect_csv, utf8_text
from webapp.engine.retention import upload_files_in_use
from webapp.extensions import db
from webapp.models.jobs import Job
from webapp.storage import Storage, StorageUnavailable, current_storage, located
from webapp.web import upload_limit_text


@dataclass
class Upload:
    """A saved upload and what its inspection found."""

    token: str
    owner_id: int
    name: str
    filename: str
    encoding: str
    delimiter: str = ","
    header: list[str] = field(default_factory=list)
    preview: list[list[str]] = field(default_factory=list)
    rows: int | None = None  # data records; None for an upload saved before they were counted
    looks_utf8: bool = False  # chosen as Latin-1, but its letters read as UTF-8 (a warning)

    @property
    def key(self) -> str:
        return _key(self.token, "csv")

    def params(self, mapping: list[str]) -> dict[str, Any]:
        """The import job's parameters once the columns are mapped."""
        params: dict[str, Any] = {
            "path": self.key,  # the storage key (a job saved before storage: a local path)
            "filename": self.filename,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "columns": self.header,
            "mapping": mapping,
        }
        if self.rows is not None:
            params["total_rows"] = self.rows  # counted at upload: the run need not count again
        return params


def _key(token: str, ext: str) -> str:
    return f"uploads/{token}.{ext}"


def save_upload(file: FileStorage, owner_id: int, name: str, encoding: str) -> Upload:
    """Check the file end to end on this machine, then store it and remember it; refused files
    leave nothing behind."""
    upload = Upload(
        token=secrets.token_urlsafe(16),
        owner_id=owner_id,
        name=name,
        filename=os.path.basename(file.filename or "upload.csv"),
        encoding=encoding,
    )
    storage = current_storage()
    partial = os.path.join(current_app.config["UPLOADS_DIR"], f"{upload.token}.csv.part")
    try:
        file.save(partial)
        info = inspect_csv(partial, encoding)
        upload.looks_utf8 = encoding == "latin-1" and utf8_text(partial)
        storage.store(upload.key, partial)
    except BaseException:
        _remove(partial)
        raise
    upload.delimiter, upload.header, upload.preview = info.delimiter, info.header, info.preview
    upload.rows = info.rows
    storage.save(_key(upload.token, "json"), io.BytesIO(json.dumps(asdict(upload)).encode()))
    return upload


def load_upload(token: str, owner_id: int) -> Upload | None:
    """The user's pending upload, or None (another user's token is treated as unknown)."""
    if not token.replace("-", "").replace("_", "").isalnum():
        return None
    try:
        with current_storage().open(_key(token, "json")) as meta:
            upload = Upload(**json.load(meta))
    except StorageUnavailable:
        raise  # said as such (a 503), not as an unknown upload
    except (OSError, ValueError, TypeError):
        return None
    return upload if upload.owner_id == owner_id else None


def job_made_from(token: str, owner_id: int, job_type: str = "user_data_import") -> Job | None:
    """The import job (of `job_type`) the user saved from the upload `token` (its record is
    gone then), if any: where a mapping form sent again, or opened again with Back, leads."""
    key = _key(token, "csv")
    recent = db.session.execute(
        select(Job)
        .where(Job.owner_id == owner_id, Job.job_type == job_type)
        .order_by(Job.id.desc())
        .limit(50)
    ).scalars()
    return next((job for job in recent if (job.params or {}).get("path") == key), None)


def forget_upload(upload: Upload) -> None:
    """Drop the pending-upload record once a job owns the file."""
    current_storage().delete(_key(upload.token, "json"))


def discard_job_file(job: Job) -> bool:
    """Delete a deleted job's uploaded file (True), unless another job reads it or a run of this
    one has not finished: the retention sweep deletes it once that run ends. The results of its
    past runs stay until the normal result retention, like every run's."""
    found = _own_upload((job.params or {}).get("path"))
    if found is None:
        return False
    storage, key = found
    if os.path.basename(key) in upload_files_in_use():
        return False
    try:
        storage.delete(key)
    except StorageUnavailable:  # the job is deleted all the same: the upload sweep takes the file
        current_app.logger.warning("%s not deleted now: the storage did not answer", storage.where(key))
        return False
    return True


def _own_upload(location: object) -> tuple[Storage, str] | None:
    """The storage and key of an import job's file when it is one of our uploads (a key under
    uploads/, or, for a job saved before storage, a file of the local uploads folder); None for
    any other file, which is never ours to delete."""
    if not isinstance(location, str):
        return None
    if os.path.isabs(location):
        folder = os.path.realpath(current_app.config["UPLOADS_DIR"])
        if os.path.dirname(os.path.realpath(location)) != folder:
            return None
    elif not location.startswith("uploads/"):
        return None
    return located(current_storage(), location)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


STORAGE_DOWN = (
    "The file storage did not answer, so the file was not saved. Try again in a moment, "
    "and tell an admin if it keeps happening."
)


def upload_step(form: Any, template: str, mapping_endpoint: str) -> Any:
    """Step 1 of an import (of supporters, of transactions): the CSV checked end to end and
    kept, then on to its mapping page; the form again with what was wrong, else."""
    if form.validate_on_submit():
        try:
            upload = save_upload(form.file.data, current_user.id, form.name.data.strip(), form.encoding.data)
        except CsvProblem as problem:
            form.file.errors.append(str(problem))
        except StorageUnavailable:
            form.file.errors.append(STORAGE_DOWN)
            return render_template(template, form=form), 503
        else:
            return redirect(url_for(mapping_endpoint, token=upload.token))
    return render_template(template, form=form)


def upload_too_large(form: Any, template: str) -> Any:
    """An upload over the limit: the (empty) form again with a clear message; nothing was kept."""
    form.file.errors = [
        f"The file is larger than the upload limit of {upload_limit_text()}. Nothing was saved."
    ]
    return render_template(template, form=form), 413
