"""The server-side sessions' files (Flask-Session over cachelib's ``FileSystemCache``),
read with one ``stat`` when unchanged.

Every page reads its session, and cachelib opens, reads and closes the session's file each
time (through a retry wrapper). :class:`SessionFiles` keeps the bytes of the files it has
read, per process, with the identity of what it read (inode, size, modification and change
time in nanoseconds, from the open file itself); a later read whose ``stat`` gives the same
identity uses the kept bytes, anything else reads the file again. A file modified less than
``SETTLED_SECONDS`` ago is always read again: a file system with coarse timestamps (or one
that gives a freed inode straight back) could give a rewrite of the same size the identity
of what was kept within one tick of its clock. Sessions are written only when they change
(sign-in, language, the first form), so a settled file is the usual case. A session written
by any process (cachelib writes a new file and renames it over the old one) or deleted
(sign-out, expiry) is therefore never answered from what was kept. What is kept is the
file's bytes, so every request still gets its own copy of the session (unpickled as
before), and the file's expiry is checked on every read, as cachelib does. At most
``SESSIONS_KEPT`` files are kept.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from typing import Any

from cachelib.file import FileSystemCache

SESSIONS_KEPT = 2048
SETTLED_SECONDS = 2

_Identity = tuple[int, int, int, int]


def _identity(found: os.stat_result) -> _Identity:
    return (found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


class SessionFiles(FileSystemCache):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept: dict[str, tuple[_Identity, bytes]] = {}
        self._kept_lock = threading.Lock()

    def get(self, key: str) -> Any:
        filename = self._get_filename(key)
        try:
            found = os.stat(filename)
        except OSError:  # gone (signed out, expired) or unreadable: as cachelib answers
            with self._kept_lock:
                self._kept.pop(filename, None)
            return super().get(key)
        kept = self._kept.get(filename)
        if (
            kept is None
            or kept[0] != _identity(found)
            or time.time_ns() - found.st_mtime_ns < SETTLED_SECONDS * 1_000_000_000
        ):
            kept = self._read(filename)
            if kept is None:
                return super().get(key)
        data = kept[1]
        if len(data) < 4:
            return super().get(key)
        expires = struct.unpack("I", data[:4])[0]
        if expires == 0 or expires >= time.time():
            return self.serializer.loads(data[4:])
        return None

    def _read(self, filename: str) -> tuple[_Identity, bytes] | None:
        try:
            with open(filename, "rb") as f:
                opened = os.fstat(f.fileno())
                data = f.read()
        except OSError:
            return None
        kept = (_identity(opened), data)
        with self._kept_lock:
            if len(self._kept) >= SESSIONS_KEPT:
                self._kept.clear()
            self._kept[filename] = kept
        return kept
