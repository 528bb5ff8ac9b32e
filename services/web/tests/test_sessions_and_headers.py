"""The session files read with one stat when unchanged (web.sessions), and the security
headers built once (web.headers)."""

from __future__ import annotations

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


def test_an_unchanged_session_file_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path)
    files.set("s1", {"user": "a"}, timeout=60)
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


def test_a_kept_session_is_not_answered_once_it_has_expired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path)
    files.set("s1", {"user": "a"}, timeout=60)
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
