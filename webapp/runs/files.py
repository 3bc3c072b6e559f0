"""A run's files as they leave Conveyor (its result, its log, its rejected lines), for the run
pages and the JSON API alike: every one taken of another user's run is audited."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

from flask import Response, send_file, stream_with_context
from flask_login import current_user

from webapp import audit
from webapp.models.runs import Run
from webapp.storage import Storage, current_storage, located

RUN_FILES = {"result": "result", "log": "log", "rejections": "rejected lines"}  # kind: words


@dataclass(frozen=True)
class StoredFile:
    """A file in storage, and its size, to send."""

    storage: Storage
    key: str
    size: int

    def response(self, name: str, mimetype: str) -> Response:
        """The file as the attachment `name`: sent from disk when the storage keeps it on this
        machine; else streamed from the storage as it is sent, a block at a time (never whole
        in memory), with its length. Both through send_file, which words Content-Disposition
        for any name (RFC 5987 for one beyond ASCII)."""
        path = self.storage.path(self.key)
        if path is not None:
            return send_file(path, as_attachment=True, download_name=name, mimetype=mimetype)
        response = send_file(
            self.storage.open(self.key),
            as_attachment=True,
            download_name=name,
            mimetype=mimetype,
            conditional=False,
        )
        response.content_length = self.size
        return response


def download_name(name: str) -> str:
    """`name` fit to be a downloaded file's: control and format characters (a line break, a
    right-to-left override that makes "gpj.exe" read "exe.jpg") and path separators become
    spaces, runs of spaces one. A job's name may hold anything its owner typed."""
    kept = "".join(
        " " if char in "/\\" or unicodedata.category(char) in ("Cc", "Cf") else char for char in name
    )
    return " ".join(kept.split()) or "download"


def attachment(response: Response, name: str) -> Response:
    """Mark `response` as the attachment `name` (as send_file words it: RFC 5987 for a name
    beyond ASCII, with an ASCII fallback)."""
    try:
        name.encode("ascii")
        names = {"filename": name}
    except UnicodeEncodeError:
        simple = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
        names = {"filename": simple or "download", "filename*": "UTF-8''" + quote(name, safe="!#$&+-.^_`|~")}
    response.headers.set("Content-Disposition", "attachment", **names)
    return response


def send_run_file(
    run: Run, kind: str, name: str, content: StoredFile | Iterator[str], mimetype: str
) -> Response:
    """Send a file of `run` (`kind`, one of RUN_FILES) as the attachment `name`; `content` is a
    stored file or the lines of a file made as it is sent (which must not read `run`: the
    audit entry's commit has expired it by then). Every file of a run leaves through
    here, so that each one taken of another user's run (by a super admin: nobody else gets past
    run_or_404) is audited as run.<kind>_downloaded_for_owner, naming the file and the owner.
    The owner's own downloads are not audited."""
    name = download_name(name)
    if run.owner_id != current_user.id:
        audit.record(
            f"run.{kind}_downloaded_for_owner",
            run,
            detail=f"Downloaded {name} on behalf of {run.owner.email}: the {RUN_FILES[kind]} of "
            f"{run.reference}",
        )
    if isinstance(content, StoredFile):
        return content.response(name, mimetype)
    return attachment(Response(stream_with_context(content), content_type=mimetype), name)


def result_file(run: Run) -> StoredFile | None:
    """The run's result file as stored, or None when it has none any more (deleted after the
    retention period, or never made). A storage that does not answer raises StorageUnavailable."""
    if not run.result_path or run.result_deleted_at:
        return None
    storage, key = located(current_storage(), run.result_path)
    try:
        return StoredFile(storage, key, storage.size(key))
    except FileNotFoundError:
        return None


RESULT_TYPES = {".zip": "application/zip", ".pdf": "application/pdf"}


def result_mimetype(name: str) -> str:
    """The media type a result file is sent as, by its name: a CSV unless it is a ZIP (receipts)
    or a PDF."""
    return RESULT_TYPES.get(os.path.splitext(name)[1].lower(), "text/csv")


def result_name(run: Run) -> str:
    """The name the result downloads as: the one set with it, else its file's own name."""
    return run.result_name if run.result_name is not None else os.path.basename(run.result_path or "")
