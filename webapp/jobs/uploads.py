"""Uploaded import files under var/uploads/: a CSV plus a JSON record while it waits for its
column mapping; once mapped the job owns the CSV (the record goes), and deleting the job deletes
it. The retention sweep deletes uploads never mapped within UPLOAD_TTL_HOURS."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import current_app
from werkzeug.datastructures import FileStorage

from webapp.csvfiles import inspect_csv
from webapp.engine.retention import upload_files_in_use
from webapp.models.jobs import Job


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

    @property
    def path(self) -> str:
        return _path(self.token, "csv")

    def params(self, mapping: list[str]) -> dict[str, Any]:
        """The import job's parameters once the columns are mapped."""
        params: dict[str, Any] = {
            "path": self.path,
            "filename": self.filename,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "columns": self.header,
            "mapping": mapping,
        }
        if self.rows is not None:
            params["total_rows"] = self.rows  # counted at upload: the run need not count again
        return params


def _path(token: str, ext: str) -> str:
    return os.path.join(current_app.config["UPLOADS_DIR"], f"{token}.{ext}")


def save_upload(file: FileStorage, owner_id: int, name: str, encoding: str) -> Upload:
    """Store the file, check it end to end, and remember it; refused files leave nothing behind."""
    token = secrets.token_urlsafe(16)
    upload = Upload(
        token=token,
        owner_id=owner_id,
        name=name,
        filename=os.path.basename(file.filename or "upload.csv"),
        encoding=encoding,
    )
    partial = upload.path + ".part"
    try:
        file.save(partial)
        info = inspect_csv(partial, encoding)
    except BaseException:
        _remove(partial)
        raise
    os.replace(partial, upload.path)
    upload.delimiter, upload.header, upload.preview = info.delimiter, info.header, info.preview
    upload.rows = info.rows
    with open(_path(token, "json"), "w", encoding="utf-8") as meta:
        json.dump(asdict(upload), meta)
    return upload


def load_upload(token: str, owner_id: int) -> Upload | None:
    """The user's pending upload, or None (another user's token is treated as unknown)."""
    if not token.replace("-", "").replace("_", "").isalnum():
        return None
    try:
        with open(_path(token, "json"), encoding="utf-8") as meta:
            upload = Upload(**json.load(meta))
    except (OSError, ValueError, TypeError):
        return None
    return upload if upload.owner_id == owner_id else None


def forget_upload(upload: Upload) -> None:
    """Drop the pending-upload record once a job owns the file."""
    _remove(_path(upload.token, "json"))


def discard_job_file(job: Job) -> bool:
    """Delete a deleted job's uploaded file (True), unless another job reads it or a run of this
    one has not finished: the retention sweep deletes it once that run ends. The results of its
    past runs stay until the normal result retention, like every run's."""
    path = (job.params or {}).get("path")
    if not isinstance(path, str) or os.path.dirname(os.path.realpath(path)) != os.path.realpath(
        current_app.config["UPLOADS_DIR"]
    ):  # only ever our own files
        return False
    if os.path.basename(path) in upload_files_in_use():
        return False
    _remove(path)
    return True


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
