"""The local issuer's authorization code flow (PKCE), as the web front (``carenet-web``) uses it.

A browser is played by a ``requests.Session`` (it keeps the issuer's cookies); the client side
is Authlib's OAuth 2.0 session, the library the web front uses. Nothing here listens at the
redirect URI: the tests stop at the redirect and read the code from its ``Location``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from testkit.idp import LocalIdp, repo_root

REPO = repo_root(Path(__file__))
CLIENT = "carenet-web"
SECRET = "carenet-web-secret"
REDIRECT = "http://127.0.0.1:8000/auth/callback"
AFTER_LOGOUT = "http://127.0.0.1:8000/afgemeld"
WEB_AUDIENCES = {"carenet-identity", "carenet-referral", "carenet-careplan", "carenet-outcomes"}


def _client(**extra: Any) -> OAuth2Session:
    return OAuth2Session(
        CLIENT,
        SECRET,
        scope="openid profile email",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        **extra,
    )


def _form(page: str) -> tuple[str, dict[str, str]]:
    """The first form of an HTML page: its action and its hidden inputs."""
    action = re.search(r'<form[^>]*action="([^"]*)"', page)
    assert action, page
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return html.unescape(action.group(1)), hidden


def _follow_until(browser: requests.Session, response: requests.Response, prefix: str) -> str:
    """Follow redirects by hand until one leads to ``prefix`` (not fetched); its URL."""
    for _ in range(10):
        location = response.headers.get("location")
        if location is None:
            raise AssertionError(f"no redirect to {prefix}: {response.status_code} {response.text}")
        target = urljoin(response.url, location)
        if target.startswith(prefix):
            return target
        response = browser.get(target, allow_redirects=False)
    raise AssertionError("too many redirects")


def _start(
    idp: LocalIdp, browser: requests.Session, **params: str
) -> tuple[OAuth2Session, str, requests.Response]:
    client = _client()
    verifier = generate_token(48)
    url, _state = client.create_authorization_url(
        f"{idp.issuer}/protocol/openid-connect/auth",
        code_verifier=verifier,
        nonce=generate_token(16),
        **params,
    )
    response = browser.get(url, allow_redirects=True)
    return client, verifier, response


def _sign_in(
    idp: LocalIdp,
    browser: requests.Session,
    username: str,
    password: str = "demo",  # noqa: S107 -- the demo users' password
) -> dict[str, Any]:
    client, verifier, page = _start(idp, browser)
    assert "Inloggen bij carenet" in page.text
    action, _ = _form(page.text)
    posted = browser.post(
        urljoin(page.url, action),
        data={"username": username, "password": password},
        allow_redirects=False,
    )
    callback = _follow_until(browser, posted, REDIRECT)
    token: dict[str, Any] = client.fetch_token(
        f"{idp.issuer}/protocol/openid-connect/token",
        authorization_response=callback,
        code_verifier=verifier,
    )
    return token


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _verified(idp: LocalIdp, token: str, audience: str) -> dict[str, Any]:
    key = jwt.PyJWKClient(idp.jwks_url).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=audience, issuer=idp.issuer
    )
    return claims


def test_code_flow_signs_a_realm_user_in_with_the_web_clients_audiences(
    local_idp: LocalIdp, browser: requests.Session, realm: dict[str, Any]
) -> None:
    token = _sign_in(local_idp, browser, "dr.jansen")
    user = next(u for u in realm["users"] if u["username"] == "dr.jansen")
    access = _verified(local_idp, token["access_token"], "carenet-referral")
    assert set(access["aud"]) == WEB_AUDIENCES
    assert access["azp"] == CLIENT
    assert access["sub"] == user["id"]
    assert access["realm_access"]["roles"] == ["gp"]
    assert access["carenet_org"] == "gp-de-linde"
    assert access["carenet_tenant"] == "cg-zuidoost"
    assert "client_id" not in access
    identity = _verified(local_idp, token["id_token"], CLIENT)
    assert identity["sub"] == user["id"]
    assert identity["name"] == "Eva Jansen"
    assert identity["preferred_username"] == "dr.jansen"
    assert token["refresh_token"]


def test_a_patient_signs_in_with_their_patient_claim(
    local_idp: LocalIdp, browser: requests.Session
) -> None:
    access = jwt.decode(
        _sign_in(local_idp, browser, "PAT.DEWIT@carenet.example")["access_token"],
        options={"verify_signature": False},
    )
    assert access["preferred_username"] == "pat.dewit"
    assert access["carenet_patient"] == "p-0001"
    assert "carenet_org" not in access


def test_refresh_gives_a_new_access_token_for_the_same_person(
    local_idp: LocalIdp, browser: requests.Session
) -> None:
    token = _sign_in(local_idp, browser, "coach.degroot")
    client = _client(token=token)
    refreshed = client.refresh_token(
        f"{local_idp.issuer}/protocol/openid-connect/token",
        refresh_token=token["refresh_token"],
    )
    before = jwt.decode(token["access_token"], options={"verify_signature": False})
    after = _verified(local_idp, refreshed["access_token"], "carenet-careplan")
    assert refreshed["access_token"] != token["access_token"]
    assert after["sub"] == before["sub"]
    assert after["carenet_org"] == "gli-beweegfit"
    assert after["jti"] != before["jti"]


def test_a_wrong_password_shows_the_login_page_again(
    local_idp: LocalIdp, browser: requests.Session
) -> None:
    *_, page = _start(local_idp, browser)
    action, _ = _form(page.text)
    posted = browser.post(
        urljoin(page.url, action),
        data={"username": "dr.jansen", "password": "wrong"},
        allow_redirects=False,
    )
    assert posted.status_code == 200
    assert "Ongeldige gebruikersnaam of wachtwoord." in posted.text
    assert 'value="dr.jansen"' in posted.text
    assert "location" not in posted.headers


def test_pkce_is_required(local_idp: LocalIdp, browser: requests.Session) -> None:
    client = OAuth2Session(CLIENT, SECRET, scope="openid", redirect_uri=REDIRECT)
    url, _ = client.create_authorization_url(f"{local_idp.issuer}/protocol/openid-connect/auth")
    response = browser.get(url, allow_redirects=False)
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    assert parse_qs(urlsplit(location).query)["error"] == ["invalid_request"]


def test_an_unregistered_redirect_uri_is_refused_without_redirecting(
    local_idp: LocalIdp, browser: requests.Session
) -> None:
    client = OAuth2Session(
        CLIENT,
        SECRET,
        scope="openid",
        redirect_uri="http://evil.example/auth/callback",
        code_challenge_method="S256",
    )
    url, _ = client.create_authorization_url(
        f"{local_idp.issuer}/protocol/openid-connect/auth", code_verifier=generate_token(48)
    )
    response = browser.get(url, allow_redirects=False)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_a_signed_in_browser_gets_a_code_without_the_login_page(
    local_idp: LocalIdp, browser: requests.Session
) -> None:
    first = _sign_in(local_idp, browser, "poh.bakker")
    client, verifier = _client(), generate_token(48)
    url, _ = client.create_authorization_url(
        f"{local_idp.issuer}/protocol/openid-connect/auth",
        code_verifier=verifier,
    )
    callback = _follow_until(browser, browser.get(url, allow_redirects=False), REDIRECT)
    token = client.fetch_token(
        f"{local_idp.issuer}/protocol/openid-connect/token",
        authorization_response=callback,
        code_verifier=verifier,
    )
    again = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert (
        again["sub"]
        == jwt.decode(first["access_token"], options={"verify_signature": False})["sub"]
    )


def test_end_session_ends_the_issuer_session(
    local_idp: LocalIdp, browser: requests.Session
) -> None:
    token = _sign_in(local_idp, browser, "dr.jansen")
    page = browser.get(
        f"{local_idp.issuer}/protocol/openid-connect/logout",
        params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT},
    )
    action, hidden = _form(page.text)
    done = browser.post(
        urljoin(page.url, action),
        data={**hidden, "logout": "yes"},
        allow_redirects=False,
    )
    assert done.headers["location"].startswith(AFTER_LOGOUT)
    # the next sign-in asks for the password again
    *_, again = _start(local_idp, browser)
    assert "Inloggen bij carenet" in again.text


def test_end_session_refuses_an_unregistered_post_logout_uri(
    local_idp: LocalIdp, browser: requests.Session
) -> None:
    token = _sign_in(local_idp, browser, "dr.jansen")
    page = browser.get(
        f"{local_idp.issuer}/protocol/openid-connect/logout",
        params={
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": "http://evil.example/",
        },
    )
    assert page.status_code == 400


def test_the_filled_production_realm_sends_the_browser_back_to_the_deployments_web_url(
    tmp_path: Path, idp_keys_file: Path
) -> None:
    """carenet-web of the production realm, filled in at import as Keycloak does: its
    redirect URI is ${CARENET_WEB_URL}/auth/callback and nothing else; its secret is the
    deployment's (the demo secret is refused)."""
    text = (REPO / "infra" / "keycloak" / "production-realm.json").read_text()
    values = {"CARENET_WEB_URL": "https://zorg.example.nl", "CARENET_WEB_CLIENT_SECRET": "prod-web"}
    filled = re.sub(
        r"\$\{([A-Z][A-Z0-9_]*)\}", lambda m: values.get(m.group(1), f"filled-{m.group(1)}"), text
    )
    realm_file = tmp_path / "production-realm.json"
    realm_file.write_text(filled)
    with (
        LocalIdp.start(keys_file=idp_keys_file, realm_file=realm_file) as idp,
        requests.Session() as browser,
    ):
        for redirect, allowed in (
            ("https://zorg.example.nl/auth/callback", True),
            (REDIRECT, False),  # the demo realm's local address is not the deployment's
        ):
            client = OAuth2Session(
                CLIENT,
                "prod-web",
                scope="openid",
                redirect_uri=redirect,
                code_challenge_method="S256",
            )
            url, _ = client.create_authorization_url(
                f"{idp.issuer}/protocol/openid-connect/auth", code_verifier=generate_token(48)
            )
            response = browser.get(url, allow_redirects=False)
            assert (response.status_code == 303) is allowed, (redirect, response.status_code)
        token_url = f"{idp.issuer}/protocol/openid-connect/token"
        refused = requests.post(
            token_url,
            data={"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT},
            auth=(CLIENT, SECRET),
            timeout=10,
        )
        assert refused.status_code == 401  # the demo secret is not the deployment's
