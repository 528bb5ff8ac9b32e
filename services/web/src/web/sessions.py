"""The server-side sessions' files (Flask-Session over cachelib's ``FileSystemCache``),
read with one ``stat`` when unchanged.

Every page reads its session, and cachelib opens, reads and closes the session's file each
time (through a retry wrapper). :class:`SessionFiles` keeps the bytes of the files it has
read, per process, with the identity of what it read (inode, size and modification time in
nanoseconds, from the open file itself); a later read whose ``stat`` gives the same identity
uses the kept bytes, anything else reads the file again. A session written by any process
(cachelib writes a new file and renames it over the old one: a new inode) or deleted (sign-out,
expiry) is therefore never answered from what was kept. What is kept is the file's bytes, so
every request still gets its own copy of the session (unpickled as before), and the file's
expiry is checked on every read, as cachelib does. At most ``SESSIONS_KEPT`` files are kept.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from typing import Any

from cachelib.file import FileSystemCache

SESSIONS_KEPT = 2048


class SessionFiles(FileSystemCache):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept: dict[str, tuple[tuple[int, int, int], bytes]] = {}
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
        if kept is None or kept[0] != (found.st_ino, found.st_size, found.st_mtime_ns):
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

    def _read(self, filename: str) -> tuple[tuple[int, int, int], bytes] | None:
        try:
            with open(filename, "rb") as f:
                opened = os.fstat(f.fileno())
                data = f.read()
        except OSError:
            return None
        kept = ((opened.st_ino, opened.st_size, opened.st_mtime_ns), data)
        with self._kept_lock:
            if len(self._kept) >= SESSIONS_KEPT:
                self._kept.clear()
            self._kept[filename] = kept
        return kept
