"""Sign-out for good (web.sessions.RevocableSessions): a request that opened the signed-in
session before the sign-out and changes it afterwards (another tab switching the language,
signing its CSRF token, remembering a patient, refreshing the token) must not store the
signed-in session again under the signed-out id. Flask's steps are driven by hand, in the
order such a request and the sign-out interleave."""

from __future__ import annotations

import re
import time
from typing import Any

import jwt
import pytest
from flask import Flask, Response, request
from flask.testing import FlaskClient

from web import auth
from web.sessions import REVOKED_AT_LEAST_SECONDS, RevocableSessions, SessionFiles

COOKIE = "carenet_session"


def _token() -> dict[str, Any]:
    claims = {"sub": "u-1", "preferred_username": "dr.jansen", "realm_access": {"roles": ["gp"]}}
    access = jwt.encode(claims, "k" * 32, algorithm="HS256")
    return {"access_token": access, "refresh_token": "r", "expires_at": 9e9, "id_token": "i"}


@pytest.fixture
def signed_in(app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> str:
    """Signs ``client`` in (the issuer's answers stubbed); the session id."""
    monkeypatch.setattr(auth.oauth.carenet, "authorize_access_token", _token)
    monkeypatch.setattr(auth.oauth.carenet, "load_server_metadata", lambda: {})
    assert client.get("/auth/callback").status_code == 302
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def _sessions(app: Flask) -> RevocableSessions:
    interface = app.session_interface
    assert isinstance(interface, RevocableSessions)
    return interface


def _another_worker(app: Flask) -> RevocableSessions:
    """The sessions as another process on the same store sees them (its own kept files)."""
    store = _sessions(app)
    files = SessionFiles(store.cache._path, threshold=10_000, mode=0o600, default_timeout=0)
    return RevocableSessions(client=files, key_prefix=store.key_prefix, permanent=True)


def _sign_out(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, "the page has a sign-out form"
    response = client.post("/afmelden", data={"csrf_token": found.group(1)})
    assert response.status_code == 302
    assert f"{COOKIE}=;" in response.headers.get("Set-Cookie", "")  # the cookie is dropped


def _user_under(app: Flask, sid: str) -> Any:
    browser = app.test_client()
    browser.set_cookie(COOKIE, sid)
    with browser.session_transaction() as found:
        return found.get("user"), found.get("token")


@pytest.mark.parametrize("worker", ["same", "other"])
def test_a_request_opened_before_sign_out_stores_nothing_after_it(
    app: Flask, client: FlaskClient, signed_in: str, worker: str
) -> None:
    store = _sessions(app) if worker == "same" else _another_worker(app)
    cookie = {"Cookie": f"{COOKIE}={signed_in}"}
    with app.test_request_context("/taal", method="POST", headers=cookie):
        opened = store.open_session(app, request)  # the other tab's request begins
        assert opened["user"]["username"] == "dr.jansen"
        _sign_out(client)
        opened["lang"] = "en"  # and changes the session after the sign-out
        response = Response("ok")
        store.save_session(app, opened, response)
    assert "Set-Cookie" not in response.headers
    assert store.cache.get(store._get_store_id(signed_in)) is None
    assert _user_under(app, signed_in) == (None, None)


def test_a_revocation_between_the_check_and_the_write_undoes_the_write(
    app: Flask, client: FlaskClient, signed_in: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _another_worker(app)  # the sign-out's own requests run through the app's
    upsert = store._upsert_session

    def signed_out_meanwhile(*args: Any) -> None:
        _sign_out(client)  # lands after the save looked for the mark, before it writes
        upsert(*args)

    with app.test_request_context("/taal", headers={"Cookie": f"{COOKIE}={signed_in}"}):
        opened = store.open_session(app, request)
        opened["lang"] = "en"
        monkeypatch.setattr(store, "_upsert_session", signed_out_meanwhile)
        response = Response("ok")
        store.save_session(app, opened, response)
    assert store.cache.get(store._get_store_id(signed_in)) is None
    assert not any(c.startswith(f"{COOKIE}=") for c in response.headers.getlist("Set-Cookie"))
    assert _user_under(app, signed_in) == (None, None)


def test_a_session_stored_under_a_revoked_id_is_not_opened(
    app: Flask, client: FlaskClient, signed_in: str
) -> None:
    store = _sessions(app)
    stored = store.cache.get(store._get_store_id(signed_in))
    _sign_out(client)
    store.cache.set(store._get_store_id(signed_in), stored, timeout=60)  # as a stray write
    assert _user_under(app, signed_in) == (None, None)
    assert _user_under(app, "never-issued") == (None, None)


def test_the_mark_lasts_the_rest_of_the_sessions_lifetime(
    app: Flask, client: FlaskClient, signed_in: str
) -> None:
    store = _sessions(app)
    session_expires = store.cache.expires_at(store._get_store_id(signed_in))
    assert session_expires is not None
    assert session_expires > time.time() + REVOKED_AT_LEAST_SECONDS  # 8 hours from sign-in
    _sign_out(client)
    assert store.is_revoked(signed_in)
    mark_expires = store.cache.expires_at("revoked:" + store._get_store_id(signed_in))
    assert mark_expires is not None
    assert session_expires <= mark_expires <= session_expires + 2


def test_a_session_with_little_time_left_is_revoked_for_longer_than_a_request_runs(
    app: Flask, signed_in: str
) -> None:
    store = _sessions(app)
    stored = store.cache.get(store._get_store_id(signed_in))
    store.cache.set(store._get_store_id(signed_in), stored, timeout=5)
    with app.test_request_context("/afmelden"):
        store._revoke_id(signed_in)
    mark_expires = store.cache.expires_at("revoked:" + store._get_store_id(signed_in))
    assert mark_expires is not None
    assert mark_expires >= time.time() + REVOKED_AT_LEAST_SECONDS - 2


def test_the_id_sign_in_regenerated_away_from_is_revoked(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth.oauth.carenet, "authorize_access_token", _token)
    with client.session_transaction() as before:
        before["lang"] = "nl"
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    planted = cookie.value
    store = _sessions(app)
    with app.test_request_context("/taal", headers={"Cookie": f"{COOKIE}={planted}"}):
        opened = store.open_session(app, request)
        assert client.get("/auth/callback").status_code == 302  # signs in under a new id
        opened["lang"] = "en"
        response = Response("ok")
        store.save_session(app, opened, response)
    assert "Set-Cookie" not in response.headers
    assert store.is_revoked(planted)
    assert store.cache.get(store._get_store_id(planted)) is None


def test_signing_in_again_after_sign_out_gives_a_working_session(
    app: Flask, client: FlaskClient, signed_in: str
) -> None:
    _sign_out(client)
    assert client.get("/auth/callback").status_code == 302
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None and cookie.value != signed_in
    user, token = _user_under(app, cookie.value)
    assert user["username"] == "dr.jansen" and token["refresh_token"] == "r"
