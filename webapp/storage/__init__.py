"""Where uploads, results and outbox messages live, so that any web server or worker reaches the
files another one wrote: a local (or shared) folder per area, the default, or S3-compatible object
storage (CONVEYOR_STORAGE_URL=s3://bucket/prefix).

A file is known by a key, `<area>/<name>`: `uploads/<token>.csv`, `results/run-12-export.csv`,
`outbox/<time>-<id>.eml`. Names are plain (no folders). The backend is built once per app from
its config (`storage_for`); this package imports nothing else of the app.

Every method raises FileNotFoundError for a key that is not there (`delete` excepted: a file
already gone is deleted) and StorageUnavailable (an OSError) when the storage itself fails."""

from __future__ import annotations

import os

from flask import Flask, current_app

from webapp.storage.base import Entry, Storage, StorageUnavailable
from webapp.storage.local import LocalStorage

__all__ = [
    "Entry",
    "LocalStorage",
    "Storage",
    "StorageUnavailable",
    "current_storage",
    "located",
    "storage_for",
]
AREAS = ("uploads", "results", "outbox")


def storage_for(app: Flask) -> Storage:
    """The app's storage, built from its config on first use and kept in app.extensions."""
    storage = app.extensions.get("conveyor_storage")
    if storage is None:
        storage = app.extensions["conveyor_storage"] = _build(app.config)
    return storage


def current_storage() -> Storage:
    """The storage of the app handling this request or run."""
    return storage_for(current_app)


def _build(config) -> Storage:
    url = config.get("STORAGE_URL")
    if not url:
        return LocalStorage({area: config[f"{area.upper()}_DIR"] for area in AREAS})
    if url.startswith("s3://"):
        from webapp.storage.s3 import S3Storage  # here: boto3 takes 0.15 s to import

        return S3Storage(url)
    raise ValueError(f"CONVEYOR_STORAGE_URL must be s3://bucket/prefix, not {url!r}")


def located(storage: Storage, location: str) -> tuple[Storage, str]:
    """The storage and key of a file recorded by `location` (Run.result_path, an import job's
    path): a key of `storage`; or, in rows written before there was storage, an absolute path,
    read as a file of this machine."""
    if not os.path.isabs(location):
        return storage, location
    folder, name = os.path.split(location)
    return LocalStorage({"file": folder}), f"file/{name}"
