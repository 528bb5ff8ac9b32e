"""Unit tests of the web front's own parts that need no running service: the English
catalogue covers every string, pages render in both languages with the security headers,
CSRF is enforced, gRPC errors become the plain pages, the eligibility rule reads as words,
charts escape their text and never draw a suppressed cell as a bar."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import grpc
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from carenet.referral.v1 import referral_pb2 as rf
from web import backend, charts, formatting

WEB = Path(__file__).resolve().parents[1]


def test_the_english_catalogue_translates_every_string() -> None:
    found = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(
            str(WEB / "src" / "web"),
            method_map=[("**.py", "python"), ("templates/**.html", "jinja2")],
            keywords={
                "_": None,
                "_l": None,
                "_m": None,  # web.i18n.markup_gettext, as the views import it
                "gettext": None,
                "lazy_gettext": None,
                "ngettext": (1, 2),
            },
        )
    }
    po = WEB / "src" / "web" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        catalog = read_po(f)
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and (m.string if isinstance(m.string, str) else all(m.string or ()))
    }
    assert found - translated == set()


def test_pages_are_dutch_first_and_english_one_click_away(client: FlaskClient) -> None:
    page = client.get("/")
    assert '<html lang="nl"' in page.text and "Inloggen" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    client.post("/taal", data={"lang": "en", "csrf_token": token.group(1)})
    english = client.get("/")
    assert '<html lang="en"' in english.text
    assert "Sign in" in english.text and "Inloggen" not in english.text


def test_every_page_carries_the_security_headers(client: FlaskClient) -> None:
    headers = client.get("/toegankelijkheid").headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert "form-action 'self' http://127.0.0.1:9" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    cookie = headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_post_without_csrf_token_is_refused(client: FlaskClient) -> None:
    response = client.post("/taal", data={"lang": "en"})
    assert response.status_code == 400
    assert "Verzoek niet verwerkt" in response.text


def test_the_forms_token_holds_for_its_own_session_only(app: Flask) -> None:
    """The token the pages carry is signed once per session: every page of the session
    carries the same one, a form sent with it is taken, and another session refuses it."""
    mine, other = app.test_client(), app.test_client()
    pages = [mine.get("/").text, mine.get("/toegankelijkheid").text]
    tokens = {t for page in pages for t in re.findall(r'name="csrf_token" value="([^"]+)"', page)}
    assert len(tokens) == 1
    token = tokens.pop()
    other.get("/")
    assert other.post("/taal", data={"lang": "en", "csrf_token": token}).status_code == 400
    assert mine.post("/taal", data={"lang": "en", "csrf_token": token}).status_code == 302
    assert '<html lang="en"' in mine.get("/").text


def test_pages_of_others_ask_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/menukaart")
    assert response.status_code == 302 and response.headers["Location"] == "/inloggen"


class _Error(grpc.RpcError, grpc.Call):
    """An RpcError as a client call raises it, with a google.rpc.Status in its trailers."""

    def __init__(self, code: grpc.StatusCode, status: status_pb2.Status) -> None:
        self._code = code
        self._status = status

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return str(self._status.message)

    def trailing_metadata(self) -> Any:
        return (("grpc-status-details-bin", self._status.SerializeToString()),)

    def initial_metadata(self) -> Any:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


def _status(code: int, reason: str, fields: dict[str, str]) -> status_pb2.Status:
    status = status_pb2.Status(code=code, message="patient p-0001 was refused")
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="referral.carenet"))
    status.details.append(info)
    if fields:
        bad = any_pb2.Any()
        bad.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in fields.items()
                ]
            )
        )
        status.details.append(bad)
    return status


def test_error_details_read_the_reason_and_the_field_violations() -> None:
    error = _Error(
        grpc.StatusCode.INVALID_ARGUMENT,
        _status(code_pb2.INVALID_ARGUMENT, "TEXT_REQUIRED", {"offer.display_name": "required"}),
    )
    found = backend.details(error)
    assert found.code == grpc.StatusCode.INVALID_ARGUMENT
    assert found.reason == "TEXT_REQUIRED"
    assert found.fields == {"offer.display_name": "required"}


@pytest.mark.parametrize(
    ("code", "status", "title"),
    [
        (grpc.StatusCode.PERMISSION_DENIED, 403, "Geen toegang"),
        (grpc.StatusCode.NOT_FOUND, 404, "Niet gevonden"),
        (grpc.StatusCode.UNAVAILABLE, 503, "Even niet beschikbaar"),
        (grpc.StatusCode.INTERNAL, 500, "Er ging iets mis"),
    ],
)
def test_grpc_errors_are_plain_pages_without_a_trace_or_the_message(
    app: Flask, code: grpc.StatusCode, status: int, title: str
) -> None:
    @app.get("/_raise")
    def _raise() -> str:
        raise _Error(code, _status(code.value[0], "SOME_REASON", {}))

    response = app.test_client().get("/_raise")
    assert response.status_code == status
    assert f'<h1 class="utrecht-heading-1">{title}</h1>' in response.text
    assert "Traceback" not in response.text and "p-0001" not in response.text


def test_an_eligibility_rule_reads_as_words() -> None:
    rule = rf.EligibilityRule(
        all=rf.RuleList(
            rules=[
                rf.EligibilityRule(
                    predicate=rf.Predicate(
                        field=rf.PROFILE_FIELD_BMI, operator=rf.OPERATOR_GE, number=25
                    )
                ),
                rf.EligibilityRule(
                    predicate=rf.Predicate(
                        field=rf.PROFILE_FIELD_CONDITIONS,
                        operator=rf.OPERATOR_ANY_OF,
                        values=["T90", "K86"],
                    )
                ),
            ]
        )
    )
    app = Flask(__name__)
    from flask_babel import Babel

    Babel(app)
    with app.test_request_context():
        lines = formatting.rule_lines(rule)
    assert lines == [
        (0, "Aan al deze voorwaarden voldoen:"),
        (1, "BMI minstens 25"),
        (1, "aandoening: een van T90, K86"),
    ]


def test_a_chart_escapes_its_text_and_marks_suppressed_cells_without_a_bar() -> None:
    svg = str(
        charts.bar_chart(
            "c1",
            "<b>HbA1c</b>",
            "two groups",
            [charts.Bar("gp-<x>", 42.5, 30.0, 55.0), charts.Bar("gp-small", None)],
        )
    )
    assert "<b>" not in svg and "&lt;b&gt;HbA1c&lt;/b&gt;" in svg
    assert svg.count("<rect") == 1
    assert 'class="carenet-chart__suppressed">&lt; 10</text>' in svg
    assert "42,5%" in svg
    assert 'role="img"' in svg and 'aria-labelledby="c1-t c1-d"' in svg


def _sign_in_session(client: FlaskClient, expires_in: float) -> None:
    import time

    with client.session_transaction() as session:
        session["token"] = {
            "access_token": "old-access",
            "refresh_token": "old-refresh",
            "expires_at": time.time() + expires_in,
            "id_token": "id",
        }
        session["user"] = {
            "subject": "s",
            "username": "dr.jansen",
            "name": "Eva Jansen",
            "roles": ["gp"],
            "organisation": "gp-de-linde",
            "care_group": "cg-zuidoost",
            "patient": "",
        }


def test_the_access_token_is_refreshed_before_it_expires(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from web import auth

    calls: list[dict[str, Any]] = []

    def refresh(**kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"access_token": "new-access", "refresh_token": "new-refresh", "expires_at": 2e9}

    monkeypatch.setattr(auth.oauth.carenet, "fetch_access_token", refresh)

    @app.get("/_token")
    def _token() -> str:
        return auth.access_token()

    _sign_in_session(client, expires_in=3600)
    assert client.get("/_token").text == "old-access"
    assert calls == []
    _sign_in_session(client, expires_in=10)  # within the 30 s margin
    assert client.get("/_token").text == "new-access"
    assert calls == [{"grant_type": "refresh_token", "refresh_token": "old-refresh"}]
    with client.session_transaction() as session:
        assert session["token"]["refresh_token"] == "new-refresh"
        assert session["token"]["id_token"] == "id"


def test_a_refused_refresh_ends_the_session_and_asks_to_sign_in(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from authlib.integrations.base_client.errors import OAuthError

    from web import auth

    def refused(**kwargs: Any) -> dict[str, Any]:
        raise OAuthError(error="invalid_grant")

    monkeypatch.setattr(auth.oauth.carenet, "fetch_access_token", refused)

    @app.get("/_token")
    def _token() -> str:
        return auth.access_token()

    _sign_in_session(client, expires_in=5)
    response = client.get("/_token")
    assert response.status_code == 302 and response.headers["Location"] == "/inloggen"
    with client.session_transaction() as session:
        assert "token" not in session and "user" not in session
