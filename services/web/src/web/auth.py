"""Sign-in with OpenID Connect (authorization code flow with PKCE) through Authlib.

The tokens stay on the server, in the server-side session (Flask-Session); the browser holds
only the session id cookie. Before a page calls a service, the access token is refreshed
when it expires within ``WEB_TOKEN_REFRESH_MARGIN_SECONDS``; a refresh the issuer refuses
ends the session and asks the person to sign in again. Signing out ends the issuer's
session too (RP-initiated logout with the ID token as hint).

The access token is read for display and navigation only (name, roles, organisation,
patient); it came straight from the issuer's token endpoint over the back channel. What a
person may see is decided by the services, which verify every token they get.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

import jwt
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers.response import Response

from web.config import Settings
from web.sessions import RevocableSessions

log = logging.getLogger("web.auth")
bp = Blueprint("auth", __name__)
oauth = OAuth()

F = TypeVar("F", bound=Callable[..., Any])

PROFESSIONAL_ROLES = frozenset(
    {
        "gp",
        "practice-nurse",
        "specialist",
        "sport-coach",
        "municipality-officer",
        "provider",
        "insurer-analyst",
        "care-group-admin",
        "auditor",
    }
)
REFERRER_ROLES = frozenset({"gp", "practice-nurse", "specialist"})
OFFER_OWNER_ROLES = frozenset({"sport-coach", "municipality-officer", "provider"})
CURATOR_ROLES = frozenset({"care-group-admin"})
OUTCOME_ROLES = frozenset({"care-group-admin", "insurer-analyst"})


@dataclass(frozen=True)
class User:
    subject: str
    username: str
    name: str
    roles: frozenset[str]
    organisation: str
    care_group: str
    patient: str

    @property
    def is_patient(self) -> bool:
        return "patient" in self.roles and bool(self.patient)

    def has_any(self, roles: frozenset[str]) -> bool:
        return bool(self.roles & roles)


def init_auth(app: Flask, settings: Settings) -> None:
    oauth.init_app(app)
    oauth.register(
        "carenet",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret.get_secret_value(),
        server_metadata_url=(
            f"{(settings.oidc_internal_url or settings.oidc_issuer).rstrip('/')}"
            "/.well-known/openid-configuration"
        ),
        client_kwargs={
            "scope": "openid profile email",
            "code_challenge_method": "S256",
            # no call to the issuer waits longer than a call to a service
            "default_timeout": settings.call_deadline_seconds,
        },
    )
    app.register_blueprint(bp)


def _user_from(token: dict[str, Any], userinfo: dict[str, Any]) -> dict[str, Any]:
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    roles = sorted(claims.get("realm_access", {}).get("roles", []))
    return {
        "subject": str(claims.get("sub", "")),
        "username": str(claims.get("preferred_username", "")),
        "name": str(userinfo.get("name") or claims.get("preferred_username", "")),
        "roles": roles,
        "organisation": str(claims.get("carenet_org", "")),
        "care_group": str(claims.get("carenet_tenant", "")),
        "patient": str(claims.get("carenet_patient", "")),
    }


def current_user() -> User | None:
    if "user" not in g:
        data = session.get("user")
        g.user = (
            User(**{**data, "roles": frozenset(data["roles"])}) if isinstance(data, dict) else None
        )
    user: User | None = g.user
    return user


def access_token() -> str:
    """The signed-in person's access token, refreshed when it is about to expire."""
    token: dict[str, Any] | None = session.get("token")
    if not token:
        abort(401)
    settings: Settings = current_app.config["CARENET_SETTINGS"]
    if float(token.get("expires_at", 0)) - time.time() < settings.token_refresh_margin_seconds:
        try:
            fresh = oauth.carenet.fetch_access_token(
                grant_type="refresh_token", refresh_token=token.get("refresh_token", "")
            )
        except OAuthError as err:
            log.info("token_refresh_refused error=%s", err.error)
            session.clear()
            abort(401)
        token = {
            **token,
            **{k: fresh[k] for k in ("access_token", "refresh_token", "expires_at") if k in fresh},
        }
        session["token"] = token
    return str(token["access_token"])


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            session["next"] = request.path
            return redirect(url_for("auth.login"))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def roles_required(roles: frozenset[str]) -> Callable[[F], F]:
    """Only people with one of ``roles`` see the page; anyone else gets the plain 403 page.
    (The services refuse them anyway; this keeps controls they may not use out of sight.)"""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                session["next"] = request.path
                return redirect(url_for("auth.login"))
            if not user.has_any(roles):
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate


def _external(endpoint: str) -> str:
    settings: Settings = current_app.config["CARENET_SETTINGS"]
    if settings.public_url:
        return settings.public_url.rstrip("/") + url_for(endpoint)
    return url_for(endpoint, _external=True)


def _sessions() -> RevocableSessions:
    interface = current_app.session_interface
    if not isinstance(interface, RevocableSessions):
        raise TypeError("the sessions are not RevocableSessions")
    return interface


@bp.get("/inloggen")
def login() -> Response:
    redirect_uri = _external("auth.callback")
    response: Response = oauth.carenet.authorize_redirect(redirect_uri)
    return response


@bp.get("/auth/callback")
def callback() -> Response:
    try:
        token = oauth.carenet.authorize_access_token()
    except OAuthError as err:
        log.info("sign_in_failed error=%s", err.error)
        abort(400)
    userinfo = token.get("userinfo") or {}
    target = session.pop("next", None)
    session.clear()
    session["token"] = {
        k: token[k] for k in ("access_token", "refresh_token", "expires_at", "id_token")
    }
    session["user"] = _user_from(token, userinfo)
    session.permanent = True
    # A new session id at sign-in (no fixation): the stored session under the id the browser
    # came with is deleted and the signed-in one is stored under a fresh id. Flask-Session's
    # regenerate does nothing for an empty session, so it is called once the session is full.
    # The id left behind is revoked (web.sessions): a request still running under it can no
    # longer store a session there.
    _sessions().regenerate(session)
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        target = url_for("pages.home")
    return redirect(target)


@bp.post("/afmelden")
def logout() -> Response:
    token = session.get("token") or {}
    # Signed out for good: the id is revoked, so a request that opened the signed-in session
    # before this one and changes it afterwards stores nothing (web.sessions).
    _sessions().revoke(session)
    metadata = oauth.carenet.load_server_metadata()
    end_session = metadata.get("end_session_endpoint")
    if not end_session:
        return redirect(url_for("auth.signed_out"))
    query = {
        "post_logout_redirect_uri": _external("auth.signed_out"),
        "client_id": current_app.config["CARENET_SETTINGS"].oidc_client_id,
    }
    if token.get("id_token"):
        query["id_token_hint"] = token["id_token"]
    return redirect(f"{end_session}?{urlencode(query)}")


@bp.get("/afgemeld")
def signed_out() -> str:
    from flask import render_template

    return render_template("signed_out.html")
