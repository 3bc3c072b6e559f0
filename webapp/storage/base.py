"""The storage interface every backend fulfils, and the entries its listings give."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Protocol


class StorageUnavailable(OSError):
    """The storage itself failed (object storage unreachable or refusing): nothing about the
    file, which may well be there. Screens answer it with a 503 and a plain sentence."""


@dataclass(frozen=True)
class Entry:
    """A stored file as a listing gives it."""

    key: str
    modified: float  # Unix time it was last written
    size: int

    @property
    def name(self) -> str:
        return self.key.split("/", 1)[1]


class Storage(Protocol):
    """What every backend does."""

    def save(self, key: str, data: IO[bytes]) -> None:
        """Write `data` (read to its end) as the file `key`, replacing it; readers never see
        half of it."""

    def store(self, key: str, path: str) -> None:
        """Move the finished local file `path` into storage as `key` (it leaves `path`)."""

    def fetch(self, key: str, path: str) -> None:
        """Move the file `key` out of storage to the local file `path` (the opposite of store)."""

    def open(self, key: str) -> IO[bytes]:
        """The file `key` for reading, as a stream (close it)."""

    def size(self, key: str) -> int:
        """The file's size in bytes."""

    def delete(self, key: str) -> None:
        """Delete the file `key`; a file already gone is no error."""

    def entries(self, area: str) -> Iterator[Entry]:
        """The files of `area` (in no particular order)."""

    def local_copy(self, key: str) -> AbstractContextManager[str]:
        """The file `key` as a path on this machine for the duration of the `with` block (the
        file itself on a local disk, else a temporary copy deleted afterwards)."""

    def path(self, key: str) -> str | None:
        """The file's path on this machine when the backend keeps files on a local disk, else None."""

    def where(self, key: str) -> str:
        """Where the file `key` (or the area `key`) is, as a path or URL for logs and caches."""
