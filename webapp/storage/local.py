"""Files in local folders, one per area (var/uploads, var/results, var/outbox by default): what a
single machine needs, and what several need when the folders are one shared mount."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO

from webapp.storage.base import Entry

_BLOCK = 1024 * 1024


class LocalStorage:
    """Keys as files: `<area>/<name>` is `<the area's folder>/<name>`."""

    def __init__(self, folders: Mapping[str, str]) -> None:
        self.folders = dict(folders)

    def _path(self, key: str) -> str:
        """The key's file; a key outside the areas (a folder, `..`) is refused."""
        area, _, name = key.partition("/")
        if area not in self.folders or not name or "/" in name or name in (".", ".."):
            raise ValueError(f"not a storage key: {key!r}")
        return os.path.join(self.folders[area], name)

    def save(self, key: str, data: IO[bytes]) -> None:
        path = self._path(key)
        partial = path + ".part"
        # the owner's only, whatever the umask: a file may hold people's addresses
        with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            shutil.copyfileobj(data, out, _BLOCK)
        os.replace(partial, path)

    def store(self, key: str, path: str) -> None:
        shutil.move(path, self._path(key))  # a rename on one file system

    def fetch(self, key: str, path: str) -> None:
        shutil.move(self._path(key), path)

    def open(self, key: str) -> IO[bytes]:
        return open(self._path(key), "rb")

    def size(self, key: str) -> int:
        return os.path.getsize(self._path(key))

    def delete(self, key: str) -> None:
        try:
            os.remove(self._path(key))
        except FileNotFoundError:
            pass

    def entries(self, area: str) -> Iterator[Entry]:
        with os.scandir(self.folders[area]) as found:
            for entry in found:
                if entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    yield Entry(f"{area}/{entry.name}", stat.st_mtime, stat.st_size)

    @contextmanager
    def local_copy(self, key: str) -> Iterator[str]:
        path = self._path(key)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        yield path

    def path(self, key: str) -> str | None:
        return self._path(key)

    def where(self, key: str) -> str:
        return self.folders[key] if key in self.folders else self._path(key)
