"""The Flask application: settings, security headers, CSRF, sessions, language, sign-in,
pages and error pages."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
from babel import Locale
from flask import Flask, Response, g, render_template, request, session, url_for
from flask_babel import Babel
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from servicekit.telemetry import tracing_configured
from web import auth, backend, formatting, health, i18n, measures, names
from web.config import Settings
from web.headers import FixedHeadersTalisman
from web.sessions import RevocableSessions, SessionFiles

log = logging.getLogger("web")

CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
}
LANGUAGES = ("nl", "en")


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(LANGUAGES) or "nl"


def _locale() -> Locale:
    return i18n.language().locale


CSRF_SIGNED = "carenet_csrf_signed"


def csrf_token() -> str:
    """Flask-WTF's ``csrf_token`` for the templates, signed once per session instead of on
    every call: a page has several forms, and each of Flask-WTF's calls reads its settings
    again and signs the session's token anew (WTF_CSRF_TIME_LIMIT is None, so a signature
    stays valid as long as the session; Flask-WTF checks the form's token as before)."""
    found: str | None = g.get("carenet_csrf_token")
    if found is None:
        raw = session.get("csrf_token")  # Flask-WTF's token (WTF_CSRF_FIELD_NAME)
        kept = session.get(CSRF_SIGNED)
        if raw is not None and isinstance(kept, tuple) and kept[0] == raw:
            found = str(kept[1])
        else:
            found = generate_csrf()
            session[CSRF_SIGNED] = (session.get("csrf_token"), found)
        g.carenet_csrf_token = found
    return found


_LAYOUT_URLS: dict[str, dict[tuple[str, str], str]] = {}
LAYOUT_ROOTS_KEPT = 100


def _layout_urls(root: str | None = None) -> Callable[..., str]:
    """The templates' ``layout_url``: ``url_for`` for the layout's fixed links (its style
    sheets, the menu, the footer), which are the same on every page served under the same
    root, so built once per root, endpoint and file (a page has about fifteen; building
    each costs a routing lookup)."""
    root = request.script_root if root is None else root
    if root not in _LAYOUT_URLS and len(_LAYOUT_URLS) >= LAYOUT_ROOTS_KEPT:
        _LAYOUT_URLS.clear()  # the root comes from the request: kept, but bounded
    built = _LAYOUT_URLS.setdefault(root, {})

    def layout_url(endpoint: str, filename: str = "") -> str:
        found = built.get((endpoint, filename))
        if found is None:
            found = url_for(endpoint, filename=filename) if filename else url_for(endpoint)
            built[(endpoint, filename)] = found
        return found

    return layout_url


def menu(user: auth.User) -> list[tuple[str, str, bool]]:
    """The layout's main menu for this person: (link, text, whether the page is in that
    part of the site), in one call from the template instead of three per item."""
    from web.views.pages import nav_items

    layout_url = _layout_urls(request.script_root)
    endpoint = request.endpoint
    section = endpoint.split(".")[0] if endpoint else None
    return [
        (layout_url(target), text, section is not None and section == target.split(".")[0])
        for target, text in nav_items(user)
    ]


def create_app(settings: Settings, channels: backend.Channels | None = None) -> Flask:
    app = Flask(__name__)
    app.jinja_environment = i18n.LanguageEnvironment  # before the environment is made
    app.config.update(
        CARENET_SETTINGS=settings,
        SECRET_KEY=settings.secret_key.get_secret_value(),
        # Flask-Session's cachelib sessions with revocation (web.sessions.RevocableSessions)
        # over cachelib's FileSystemCache, an unchanged file read with one stat
        SESSION_CACHELIB=SessionFiles(
            settings.session_dir or str(Path(tempfile.gettempdir()) / "carenet-web-sessions"),
            threshold=10_000,
            mode=0o600,
            default_timeout=0,
        ),
        SESSION_PERMANENT=True,
        # written when it changes, not on every request (the lifetime counts from sign-in)
        SESSION_REFRESH_EACH_REQUEST=False,
        SESSION_KEY_PREFIX="carenet-web:",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=settings.session_lifetime_seconds),
        SESSION_COOKIE_NAME="carenet_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the session
        WTF_CSRF_SSL_STRICT=settings.secure_cookies,
        BABEL_DEFAULT_LOCALE="nl",
        BABEL_DEFAULT_TIMEZONE="Europe/Amsterdam",
        BABEL_TRANSLATION_DIRECTORIES=i18n.compiled_translations(),
        MAX_CONTENT_LENGTH=256 * 1024,
    )
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.proxy_hops,
            x_proto=settings.proxy_hops,
            x_host=settings.proxy_hops,
        )
    app.session_interface = RevocableSessions(
        client=app.config["SESSION_CACHELIB"],
        key_prefix=app.config["SESSION_KEY_PREFIX"],
        permanent=app.config["SESSION_PERMANENT"],
    )
    CSRFProtect(app)
    Babel(app, locale_selector=select_locale)
    i18n.install_request_gettext(app)
    issuer = urlsplit(settings.oidc_issuer)
    csp = {**CSP, "form-action": f"'self' {issuer.scheme}://{issuer.netloc}"}  # sign-out
    FixedHeadersTalisman(  # Flask-Talisman, its fixed headers built once (web.headers)
        app,
        force_https=settings.force_https,
        strict_transport_security=settings.force_https,
        session_cookie_secure=settings.secure_cookies,
        session_cookie_http_only=True,
        content_security_policy=csp,
        frame_options="DENY",
        referrer_policy="strict-origin-when-cross-origin",
        permissions_policy={"camera": "()", "microphone": "()", "geolocation": "()"},
    )
    auth.init_auth(app, settings)
    formatting.init_app(app)
    measures.init_app(app)

    opened = channels or backend.Channels.open(
        settings.identity_target,
        settings.referral_target,
        settings.careplan_target,
        settings.outcomes_target,
    )
    app.extensions["carenet_channels"] = opened
    stubs = backend.Stubs.over(opened)
    names.init_app(
        app,
        stubs.identity,
        settings.organisation_names_ttl_seconds,
        settings.call_deadline_seconds,
    )

    def metadata() -> backend.Metadata:
        return backend.caller_metadata(auth.access_token())

    @app.before_request
    def _api() -> None:
        g.api = backend.Api(stubs, metadata, settings.call_deadline_seconds)

    @app.after_request
    def _no_store(response: Response) -> Response:
        # Pages of a signed-in person may show patient data: never cached.
        if session.get("user") is not None or request.path.startswith("/auth/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    app.jinja_env.globals.update(csrf_token=csrf_token, menu=menu)
    # the macros, made once: importing them in every template costs each page a look-up
    # of every global name
    app.jinja_env.globals.update(m=app.jinja_env.get_template("macros.html").module)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {
            "user": auth.current_user(),
            "get_locale": _locale,
            "layout_url": _layout_urls(),
            "csrf_token": csrf_token,  # instead of Flask-WTF's own (see csrf_token)
        }

    from web.views import aanbod, inbox, menukaart, pages, privacy, uitkomsten, verwijzen, zorgplan

    for module in (pages, menukaart, verwijzen, inbox, zorgplan, privacy, aanbod, uitkomsten):
        app.register_blueprint(module.bp)

    health.init_app(app)  # /healthz, /readyz: what this process needs, not the services

    _error_pages(app)
    if tracing_configured():
        FlaskInstrumentor().instrument_app(  # type: ignore[no-untyped-call]
            app, excluded_urls="healthz,readyz,static"
        )
    return app


GRPC_HTTP = {
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 503,
}


def _route() -> str:
    """The route's pattern (``/inbox/<patient_id>/<referral_id>``), never the path: a path
    may carry a patient's id, which the log does not keep."""
    return request.url_rule.rule if request.url_rule is not None else "-"


def _error_pages(app: Flask) -> None:
    def page(status: int, reason: str = "") -> tuple[str, int]:
        try:
            return render_template("error.html", status=status, reason=reason), status
        except Exception:  # the error page itself failed: a plain page, never a trace
            log.exception("error_page_failed status=%s", status)
            return "Er ging iets mis. Probeer het later opnieuw.", status

    @app.errorhandler(grpc.RpcError)
    def _grpc(error: grpc.RpcError) -> tuple[str, int] | Any:
        found = backend.details(error)
        status = GRPC_HTTP.get(found.code, 500)
        # the code and reason only: never the message (it may name what the person asked for)
        log.info("grpc_error route=%s code=%s reason=%s", _route(), found.code.name, found.reason)
        if status == 401:
            return _sign_in_again()
        return page(status, found.reason)

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> tuple[str, int]:
        return page(400, "CSRF")

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[str, int] | Any:
        if error.code == 401:
            return _sign_in_again()
        return page(error.code or 500)

    @app.errorhandler(Exception)
    def _any(error: Exception) -> tuple[str, int]:
        log.exception("unhandled_error route=%s", _route())
        return page(500)

    def _sign_in_again() -> Any:
        from flask import redirect, url_for

        session.pop("user", None)
        session.pop("token", None)
        session["next"] = request.path if request.method == "GET" else "/"
        return redirect(url_for("auth.login"))
