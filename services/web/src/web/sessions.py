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

:class:`RevocableSessions` is Flask-Session's cachelib interface over these files, with
revocation: a session id that was signed out (or that sign-in regenerated away from) is
revoked for the rest of the session's lifetime. Revoking writes a mark under the id in the
same store (so every worker and every pod on the store sees it), lasting as long as the
session had left (at least ``REVOKED_AT_LEAST_SECONDS``, longer than any request runs), and
then deletes the session. A request that opened the session before it was revoked and
changes it afterwards (the language, the CSRF signature, recent patients, a token refresh)
writes nothing and sets no cookie: its save looks for the mark first, and looks again after
writing, and deletes what it wrote when a revocation came in between (the mark is written
before the session is deleted, so one of the two looks sees it). A stored session under a
revoked id is never opened either. The mark is read with ``has`` (a fresh open of its file,
never the bytes kept above), and its key (``revoked:`` before the session's key) cannot be
reached from a cookie, as every session key starts with the key prefix.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import threading
import time
from typing import Any

from cachelib.file import FileSystemCache
from flask import Flask, Request, Response, current_app
from flask.sessions import SessionMixin
from flask_session.cachelib import CacheLibSession, CacheLibSessionInterface

log = logging.getLogger("web.sessions")

SESSIONS_KEPT = 2048
SETTLED_SECONDS = 2
REVOKED_PREFIX = "revoked:"
REVOKED_AT_LEAST_SECONDS = 600

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

    def expires_at(self, key: str) -> int | None:
        """When the entry under ``key`` expires (seconds since the epoch, 0 for never), read
        from its file; None when there is none."""
        try:
            with open(self._get_filename(key), "rb") as f:
                header = f.read(4)
        except OSError:
            return None
        return int(struct.unpack("I", header)[0]) if len(header) == 4 else None

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


class CarenetSession(CacheLibSession):  # type: ignore[misc]
    revoked_here = False  # revoked by this request (sign-out): its answer drops the cookie


class RevocableSessions(CacheLibSessionInterface):  # type: ignore[misc]
    """Flask-Session's cachelib sessions, with sign-out for good (see the module)."""

    session_class = CarenetSession
    cache: SessionFiles

    def __init__(self, client: SessionFiles, key_prefix: str, permanent: bool) -> None:
        super().__init__(client=client, key_prefix=key_prefix, permanent=permanent)

    def _revoked_key(self, sid: str) -> str:
        return REVOKED_PREFIX + str(self._get_store_id(sid))

    def is_revoked(self, sid: str) -> bool:
        return bool(self.cache.has(self._revoked_key(sid)))

    def _revoke_id(self, sid: str) -> None:
        store_id = self._get_store_id(sid)
        expires = self.cache.expires_at(store_id)
        left = (
            expires - time.time()
            if expires
            else current_app.permanent_session_lifetime.total_seconds()
        )
        timeout = max(math.ceil(left), REVOKED_AT_LEAST_SECONDS)
        if not self.cache.set(self._revoked_key(sid), True, timeout=timeout):
            log.error("session_revocation_not_stored")
        self.cache.delete(store_id)  # after the mark: a save in between looks again

    def revoke(self, session: SessionMixin) -> None:
        """Signs ``session`` out for good: its id is revoked, its stored session deleted and
        the request's copy emptied; the answer deletes the cookie."""
        if not isinstance(session, CarenetSession):
            raise TypeError("not a session of RevocableSessions")
        self._revoke_id(session.sid)
        session.clear()
        session.revoked_here = True

    def regenerate(self, session: SessionMixin) -> None:
        """Flask-Session's regenerate (a new id for a session that holds something), the id
        it leaves revoked."""
        if not isinstance(session, CarenetSession):
            raise TypeError("not a session of RevocableSessions")
        if session:
            self._revoke_id(session.sid)
            session.sid = self._generate_sid(self.sid_length)
            session.modified = True

    def open_session(self, app: Flask, request: Request) -> CarenetSession:
        session: CarenetSession = super().open_session(app, request)
        if (
            session
            and session.sid == request.cookies.get(app.config["SESSION_COOKIE_NAME"])
            and self.is_revoked(session.sid)
        ):
            fresh: CarenetSession = self.session_class(
                sid=self._generate_sid(self.sid_length), permanent=self.permanent
            )
            return fresh
        return session

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, CarenetSession):
            raise TypeError("not a session of RevocableSessions")
        name = self.get_cookie_name(app)
        if session.revoked_here:
            response.delete_cookie(
                name, domain=self.get_cookie_domain(app), path=self.get_cookie_path(app)
            )
            response.vary.add("Cookie")
            return
        writes = bool(session) and bool(self.should_set_storage(app, session))
        if writes and self.is_revoked(session.sid):
            log.info("session_save_refused reason=revoked")
            return
        super().save_session(app, session, response)
        if writes and self.is_revoked(session.sid):  # revoked while this save ran
            log.info("session_save_undone reason=revoked")
            self.cache.delete(self._get_store_id(session.sid))
            kept = [
                c for c in response.headers.getlist("Set-Cookie") if not c.startswith(f"{name}=")
            ]
            response.headers.setlist("Set-Cookie", kept)
