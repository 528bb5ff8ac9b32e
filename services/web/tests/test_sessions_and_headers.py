"""The session files read with one stat when unchanged (web.sessions), and the security
headers built once (web.headers)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_talisman import Talisman

from web.app import CSP
from web.headers import FixedHeadersTalisman
from web.sessions import SessionFiles


def _files(path: Path) -> SessionFiles:
    return SessionFiles(str(path), threshold=100, mode=0o600, default_timeout=0)


def _settle(files: SessionFiles, key: str) -> None:
    """As if the session file had been written a while ago."""
    then = time.time() - 10
    os.utime(files._get_filename(key), (then, then))


def test_an_unchanged_session_file_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path)
    files.set("s1", {"user": "a"}, timeout=60)
    _settle(files, "s1")
    reads: list[str] = []
    read = SessionFiles._read

    def counted(self: SessionFiles, filename: str) -> Any:
        reads.append(filename)
        return read(self, filename)

    monkeypatch.setattr(SessionFiles, "_read", counted)
    assert [files.get("s1") for _ in range(3)] == [{"user": "a"}] * 3
    assert len(reads) == 1
    first, second = files.get("s1"), files.get("s1")
    first["user"] = "changed"  # each read is a copy of its own
    assert second == {"user": "a"}


def test_a_session_written_or_deleted_elsewhere_is_never_answered_from_what_was_kept(
    tmp_path: Path,
) -> None:
    mine, other = _files(tmp_path), _files(tmp_path)  # two processes on one folder
    mine.set("s1", {"lang": "nl"}, timeout=60)
    assert other.get("s1") == {"lang": "nl"}
    mine.set("s1", {"lang": "en"}, timeout=60)
    assert other.get("s1") == {"lang": "en"}
    mine.delete("s1")
    assert other.get("s1") is None
    assert mine.get("s1") is None


def test_a_rewrite_with_the_same_size_inode_and_modification_time_is_read_again(
    tmp_path: Path,
) -> None:
    """A file system with coarse timestamps can give a rewrite the modification time, size
    and inode of what was kept."""
    mine, other = _files(tmp_path), _files(tmp_path)
    mine.set("s1", {"patient": "patients/1111"}, timeout=60)
    _settle(mine, "s1")
    assert other.get("s1") == {"patient": "patients/1111"}  # kept
    filename = mine._get_filename("s1")
    before = os.stat(filename)
    with open(filename, "r+b") as f:  # the same inode, the same size
        data = f.read()
        f.seek(0)
        f.write(data.replace(b"1111", b"3333"))
    os.utime(filename, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert other.get("s1") == {"patient": "patients/3333"}


def test_a_file_written_moments_ago_is_always_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a file system whose timestamps stand still within a tick, a rewrite of the same
    size on the same inode has the identity of what was kept, until the file has settled."""
    monkeypatch.setattr(
        "web.sessions._identity", lambda f: (f.st_ino, f.st_size, f.st_mtime_ns // 10**9, 0)
    )
    mine, other = _files(tmp_path), _files(tmp_path)
    mine.set("s1", {"lang": "nl"}, timeout=60)
    filename = mine._get_filename("s1")
    assert other.get("s1") == {"lang": "nl"}
    with open(filename, "r+b") as f:
        data = f.read()
        f.seek(0)
        f.write(data.replace(b"nl", b"en"))
    recent = os.stat(filename).st_mtime_ns
    os.utime(filename, ns=(recent, recent))  # within a coarse clock's tick of the first write
    assert other.get("s1") == {"lang": "en"}


def test_a_kept_session_is_not_answered_once_it_has_expired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path)
    files.set("s1", {"user": "a"}, timeout=60)
    _settle(files, "s1")
    assert files.get("s1") == {"user": "a"}  # kept
    later = time.time() + 120
    monkeypatch.setattr("web.sessions.time.time", lambda: later)
    assert files.get("s1") is None


def _headers(talisman: type[Talisman], path: str, **environ: Any) -> list[tuple[str, str]]:
    app = Flask("headers")
    app.add_url_rule("/", "page", lambda: "page")
    talisman(
        app,
        force_https=False,
        strict_transport_security=True,
        content_security_policy={**CSP, "form-action": "'self' https://issuer.example"},
        frame_options="DENY",
        referrer_policy="strict-origin-when-cross-origin",
        permissions_policy={"camera": "()", "microphone": "()", "geolocation": "()"},
    )
    client: FlaskClient = app.test_client()
    return [
        (name, value)
        for _ in range(2)  # the second answer comes from what the first built
        for name, value in client.get(path, **environ).headers.items()
        if name not in ("Content-Length", "Content-Type")
    ]


@pytest.mark.parametrize("secure", [False, True])
def test_the_kept_headers_are_flask_talismans_own_in_its_order(secure: bool) -> None:
    environ = {"base_url": "https://localhost/"} if secure else {}
    ours = _headers(FixedHeadersTalisman, "/", **environ)
    assert ours == _headers(Talisman, "/", **environ)
    assert ("Strict-Transport-Security" in dict(ours)) is secure
    assert "frame-ancestors 'none'" in dict(ours)["Content-Security-Policy"]


def _unsigned_token() -> dict[str, Any]:
    import jwt

    claims = {"sub": "u-1", "preferred_username": "dr.jansen", "realm_access": {"roles": []}}
    access = jwt.encode(claims, "k" * 32, algorithm="HS256")
    return {"access_token": access, "refresh_token": "r", "expires_at": 0, "id_token": "i"}


def _session_id(client: FlaskClient) -> str:
    cookie = client.get_cookie("carenet_session")
    assert cookie is not None
    return cookie.value


@pytest.mark.parametrize("with_next", [True, False])
def test_signing_in_gives_a_new_session_id_and_drops_the_one_the_browser_came_with(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, with_next: bool
) -> None:
    """Session fixation: an id planted in the victim's browser before sign-in must not become
    the signed-in session's id, whatever the session held before."""
    from web import auth

    monkeypatch.setattr(auth.oauth.carenet, "authorize_access_token", _unsigned_token)
    with client.session_transaction() as before:
        before["lang"] = "nl"
        if with_next:
            before["next"] = "/zorgplan"
    planted = _session_id(client)
    response = client.get("/auth/callback")
    assert response.status_code == 302
    signed_in = _session_id(client)
    assert signed_in != planted
    store = app.session_interface
    assert store.cache.get(store._get_store_id(planted)) is None  # type: ignore[attr-defined]
    with client.session_transaction() as after:
        assert after["user"]["username"] == "dr.jansen"
    other = app.test_client()
    other.set_cookie("carenet_session", planted)
    with other.session_transaction() as planted_session:
        assert "user" not in planted_session
