"""Files as objects of an S3-compatible bucket (AWS S3, MinIO, Backblaze B2, DigitalOcean
Spaces): `s3://bucket/prefix` names the bucket and the prefix under which the areas go; boto3
reads the endpoint and credentials itself (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, or its config files)."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from webapp.storage.base import Entry, StorageUnavailable

_MISSING = {"404", "NoSuchKey", "NotFound"}


@contextmanager
def _as_os_errors(key: str) -> Iterator[None]:
    """boto3's errors as the interface's: FileNotFoundError for a missing key, else OSError."""
    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), key) from None
        raise StorageUnavailable(f"object storage refused {key}: {error}") from error
    except BotoCoreError as error:
        raise StorageUnavailable(f"object storage unreachable for {key}: {error}") from error


class S3Storage:
    """Keys as objects: `<area>/<name>` is the object `<prefix>/<area>/<name>` of the bucket."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an S3 URL: {url!r} (use s3://bucket/prefix)")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self._client: Any = None
        self._pid = 0

    @property
    def client(self) -> Any:
        """This process's client: one made before a fork would share its connections with the
        forked work horse, so each process makes its own, from a session of its own (boto3's
        default session is not safe to make clients from in several threads, as a campaign's
        outbox senders would)."""
        if self._client is None or self._pid != os.getpid():
            self._client, self._pid = boto3.session.Session().client("s3"), os.getpid()
        return self._client

    def _object(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def save(self, key: str, data: IO[bytes]) -> None:
        with _as_os_errors(key):
            self.client.upload_fileobj(data, self.bucket, self._object(key))

    def store(self, key: str, path: str) -> None:
        with _as_os_errors(key):
            self.client.upload_file(path, self.bucket, self._object(key))
        os.remove(path)

    def fetch(self, key: str, path: str) -> None:
        with _as_os_errors(key):
            self.client.download_file(self.bucket, self._object(key), path)
        self.delete(key)

    def open(self, key: str) -> IO[bytes]:
        with _as_os_errors(key):
            return self.client.get_object(Bucket=self.bucket, Key=self._object(key))["Body"]

    def size(self, key: str) -> int:
        with _as_os_errors(key):
            return self.client.head_object(Bucket=self.bucket, Key=self._object(key))["ContentLength"]

    def delete(self, key: str) -> None:
        with _as_os_errors(key):  # deleting a missing object succeeds
            self.client.delete_object(Bucket=self.bucket, Key=self._object(key))

    def entries(self, area: str) -> Iterator[Entry]:
        start = len(self._object(""))
        with _as_os_errors(area):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._object(f"{area}/")
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield Entry(item["Key"][start:], item["LastModified"].timestamp(), item["Size"])

    @contextmanager
    def local_copy(self, key: str) -> Iterator[str]:
        """A temporary copy under the system's temporary folder (TMPDIR), deleted afterwards."""
        handle, path = tempfile.mkstemp(prefix="conveyor-", suffix=os.path.splitext(key)[1])
        os.close(handle)
        try:
            with _as_os_errors(key):
                self.client.download_file(self.bucket, self._object(key), path)
            yield path
        finally:
            os.remove(path)

    def path(self, key: str) -> str | None:
        return None

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object(key)}"
