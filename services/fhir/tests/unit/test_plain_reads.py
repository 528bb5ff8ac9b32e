"""Plain reads answered before Flask (``fhir_api.app._plain_reads``) give the answer the Flask
route gives, status, headers and body, for successes and every kind of refusal; every other
request still goes through Flask. The services are canned gRPC answers (no platform)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fhir_api.app import create_app
from fhir_api.config import Settings
from flask import Flask
from google.protobuf.timestamp_pb2 import Timestamp
from jwt.algorithms import RSAAlgorithm
from werkzeug.test import EnvironBuilder

from carenet.careplan.v1 import careplan_pb2 as pb
from servicekit.auth import JwksCache, TokenVerifier
from servicekit.platform_api import Channels

ISSUER = "http://issuer.example/realms/carenet"
KID = "key-1"
PLAN = pb.CarePlan(
    name="patients/p-0001/carePlan",
    status=pb.CARE_PLAN_STATUS_ACTIVE,
    what_matters=["Weer met mijn kleinkinderen kunnen fietsen"],
    conditions=[pb.Condition(id="dm2", code="T90.02", system="ICPC-1", display="DM2")],
    goals=[
        pb.Goal(
            id="walk",
            description="Elke dag wandelen",
            target=pb.GoalTarget(
                measure="min/d", low=30, due_time=Timestamp(seconds=1_800_000_000)
            ),
            owner="patients/p-0001",
        )
    ],
    actions=[
        pb.Action(id="gli", referral="patients/p-0001/referrals/gli-demo", goals=["walk"]),
        pb.Action(
            id="checkup",
            kind=pb.ACTION_KIND_CONSULT,
            status=pb.ACTIVITY_STATUS_SCHEDULED,
            responsible_organisation="gp-de-linde",
        ),
    ],
    record_holder="organisations/gp-de-linde",
    version=7,
    create_time=Timestamp(seconds=1_700_000_000),
    update_time=Timestamp(seconds=1_700_000_900, nanos=250_000_000),
)


class _RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[Any, ...]:
        return ()  # no status details


class _Services:
    """Channels whose every unary call answers ``answer()`` and records its metadata."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        self.answer: Callable[[str], Any] = lambda _method: PLAN

    def unary_unary(
        self, method: str, request_serializer: Any, response_deserializer: Any, **_: Any
    ) -> Any:
        def call(request: Any, metadata: Any = (), timeout: float | None = None) -> Any:
            request_serializer(request)
            self.calls.append((method, tuple(metadata)))
            return self.answer(method)

        return call

    unary_stream = stream_unary = stream_stream = unary_unary

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": ["carenet-fhir"], "sub": "u-1", "iat": now, "exp": now + 600}
    return jwt.encode({**body, **claims}, key, algorithm="RS256", headers={"kid": KID})


@pytest.fixture
def apps(key: rsa.RSAPrivateKey) -> tuple[Flask, Flask, _Services, list[str]]:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": KID, "use": "sig"}
    services = _Services()
    channels = Channels(*(services,) * 4)  # type: ignore[arg-type]
    settings = Settings(
        oidc_issuer=ISSUER,
        identity_target="unused:1",
        referral_target="unused:1",
        careplan_target="unused:1",
        outcomes_target="unused:1",
    )

    def made(plain: bool) -> Flask:
        verifier = TokenVerifier(
            issuer=ISSUER,
            audience="carenet-fhir",
            jwks=JwksCache("http://issuer.example/certs", fetch=lambda _url: {"keys": [jwk]}),
        )
        return create_app(settings, channels, verifier=verifier, plain_reads=plain)

    plain, flask = made(True), made(False)
    through_flask: list[str] = []
    # first of the before-request hooks (the Accept check may refuse before the others)
    plain.before_request_funcs.setdefault(None, []).insert(0, lambda: through_flask.append("flask"))
    return plain, flask, services, through_flask


def _call(
    app: Flask, path: str, method: str = "GET", **headers: str
) -> tuple[str, list[Any], bytes]:
    answer: dict[str, Any] = {}

    def start_response(
        status: str, response_headers: list[tuple[str, str]], _exc: Any = None
    ) -> Callable[[bytes], object]:
        answer.update(status=status, headers=response_headers)
        return lambda _data: None

    environ = EnvironBuilder(path=path, method=method, headers=list(headers.items())).get_environ()
    chunks = app(environ, start_response)
    body = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return answer["status"], answer["headers"], body


def test_a_care_plan_read_is_the_flask_answer_without_flask(apps: Any, key: Any) -> None:
    plain, flask, services, through_flask = apps
    token = _token(key)
    for accept in ("", "application/fhir+json", "application/json, text/plain;q=0.5", "*/*"):
        headers = {"Authorization": f"Bearer {token}"} | ({"Accept": accept} if accept else {})
        answer = _call(plain, "/fhir/R4/CarePlan/p-0001", **headers)
        assert answer == _call(flask, "/fhir/R4/CarePlan/p-0001", **headers)
        status, response_headers, _ = answer
        assert status == "200 OK"
        assert dict(response_headers)["ETag"] == 'W/"7"'
    assert through_flask == []
    assert services.calls[-1] == (
        "/carenet.careplan.v1.CarePlanService/GetCarePlan",
        (("authorization", f"Bearer {token}"),),
    )


def test_refusals_are_the_flask_answers(apps: Any, key: Any) -> None:
    plain, flask, _services, through_flask = apps
    good = f"Bearer {_token(key)}"
    cases: list[tuple[str, dict[str, str], str]] = [
        ("/fhir/R4/CarePlan/p-0001", {}, "401"),
        ("/fhir/R4/CarePlan/p-0001", {"Authorization": "Basic abc"}, "401"),
        ("/fhir/R4/CarePlan/p-0001", {"Authorization": "Bearer not-a-token"}, "401"),
        ("/fhir/R4/CarePlan/p-0001", {"Authorization": f"Bearer {_token(key, exp=1)}"}, "401"),
        ("/fhir/R4/CarePlan/p-0001", {"Authorization": f"Bearer {_token(key, aud='x')}"}, "401"),
        ("/fhir/R4/CarePlan/P_1", {"Authorization": good}, "404"),
        ("/fhir/R4/Goal/p-0001.run", {"Authorization": good}, "404"),
        ("/fhir/R4/Goal/p-0001", {"Authorization": good}, "404"),
        (
            "/fhir/R4/CarePlan/p-0001",
            {"Authorization": good, "X-Carenet-On-Behalf-Of": "a,b"},
            "400",
        ),
    ]
    for path, headers, status in cases:
        answer = _call(plain, path, **headers)
        assert answer == _call(flask, path, **headers), (path, headers)
        assert answer[0].startswith(status), (path, headers, answer)
    assert through_flask == []


def test_service_errors_and_failures_are_the_flask_answers(apps: Any, key: Any) -> None:
    plain, flask, services, through_flask = apps
    headers = {"Authorization": f"Bearer {_token(key)}", "X-Carenet-On-Behalf-Of": "u-2"}

    def refuse(_method: str) -> Any:
        raise _RpcError(grpc.StatusCode.PERMISSION_DENIED, "not your patient")

    def fail(_method: str) -> Any:
        raise RuntimeError("boom")

    for answer_with, status in ((refuse, "403 FORBIDDEN"), (fail, "500 INTERNAL SERVER ERROR")):
        services.answer = answer_with
        answer = _call(plain, "/fhir/R4/CarePlan/p-0001", **headers)
        assert answer == _call(flask, "/fhir/R4/CarePlan/p-0001", **headers)
        assert answer[0] == status
        assert b"boom" not in answer[2]
    assert services.calls[-1][1][-1] == ("x-carenet-on-behalf-of", "u-2")
    assert through_flask == []


def test_other_requests_go_through_flask(apps: Any, key: Any) -> None:
    plain, flask, _services, through_flask = apps
    headers = {"Authorization": f"Bearer {_token(key)}"}
    others = [
        ("/fhir/R4/CarePlan/p-0001?_format=json", "GET", headers),
        ("/fhir/R4/CarePlan/p-0001", "GET", headers | {"Accept": "text/html"}),
        ("/fhir/R4/CarePlan/p-0001", "HEAD", headers),
        ("/fhir/R4/CarePlan/p-0001", "POST", headers),
        ("/fhir/R4/CarePlan/p-0001/", "GET", headers),
        ("/fhir/R4//CarePlan/p-0001", "GET", headers),
        ("/fhir/R4/AuditEvent/p-0001", "GET", headers),
        ("/fhir/R4/CarePlan/p-%C3%A9", "GET", headers),
        ("/fhir/R4/metadata", "GET", {}),
    ]
    for path, method, with_headers in others:
        through_flask.clear()
        answer = _call(plain, path, method, **with_headers)
        assert answer == _call(flask, path, method, **with_headers), (path, method)
        assert through_flask == ["flask"], (path, method)
