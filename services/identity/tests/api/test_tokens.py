"""Bearer-token checks on a real server, with real tokens from the local issuer and
forged ones signed with the issuer's own or foreign keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp
from testkit.rpc import failure

GET_ORG = rpc.GetOrganisationRequest(name="organisations/gp-de-linde")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _sign(claims: dict[str, Any], jwk: dict[str, Any], kid: str | None = None) -> str:
    key = RSAAlgorithm.from_jwk(json.dumps(jwk))
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or jwk["kid"]})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def good(tokens: Tokens) -> str:
    return tokens.user("dr.jansen")


def _unauthenticated(stub: rpc_grpc.IdentityServiceStub, token: str | None) -> str:
    metadata = bearer(token) if token is not None else ()
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetOrganisation(GET_ORG, metadata=metadata, timeout=5)
    fail = failure(caught.value)
    assert fail.code == grpc.StatusCode.UNAUTHENTICATED
    assert fail.error_infos == 1
    assert fail.domain == "identity.carenet"
    return fail.reason


def test_a_valid_token_is_accepted(stub: rpc_grpc.IdentityServiceStub, good: str) -> None:
    org = stub.GetOrganisation(GET_ORG, metadata=bearer(good), timeout=5)
    assert org.type == pb.ORGANISATION_TYPE_GP_PRACTICE


def test_a_call_without_a_token_is_unauthenticated(stub: rpc_grpc.IdentityServiceStub) -> None:
    assert _unauthenticated(stub, None) == "MISSING_TOKEN"


def test_an_expired_token_is_unauthenticated(
    stub: rpc_grpc.IdentityServiceStub, good: str, local_idp: LocalIdp
) -> None:
    claims = _claims(good) | {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
    assert _unauthenticated(stub, _sign(claims, local_idp.private_key("sig"))) == "TOKEN_EXPIRED"


def test_a_token_from_another_issuer_is_unauthenticated(
    stub: rpc_grpc.IdentityServiceStub, good: str, local_idp: LocalIdp
) -> None:
    claims = _claims(good) | {"iss": "http://127.0.0.1:1/realms/other"}
    assert _unauthenticated(stub, _sign(claims, local_idp.private_key("sig"))) == "WRONG_ISSUER"


def test_a_token_for_another_audience_is_unauthenticated(
    stub: rpc_grpc.IdentityServiceStub, tokens: Tokens
) -> None:
    # A real token: the insurer's client has only the outcomes audience.
    assert _unauthenticated(stub, tokens.client("carenet-insurer")) == "WRONG_AUDIENCE"


def test_an_unsigned_alg_none_token_is_unauthenticated(
    stub: rpc_grpc.IdentityServiceStub, good: str
) -> None:
    header = _b64(
        json.dumps(
            {"alg": "none", "typ": "JWT", "kid": jwt.get_unverified_header(good)["kid"]}
        ).encode()
    )
    payload = _b64(json.dumps(_claims(good)).encode())
    assert _unauthenticated(stub, f"{header}.{payload}.") == "ALGORITHM_NOT_ALLOWED"


def test_an_hs256_token_signed_with_the_public_key_is_unauthenticated(
    stub: rpc_grpc.IdentityServiceStub, good: str, local_idp: LocalIdp
) -> None:
    public = RSAAlgorithm.from_jwk(json.dumps(local_idp.private_key("sig")))
    pem = public.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = jwt.get_unverified_header(good)["kid"]
    signing_input = (
        _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        + "."
        + _b64(json.dumps(_claims(good)).encode())
    )
    signature = _b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())
    assert _unauthenticated(stub, f"{signing_input}.{signature}") == "ALGORITHM_NOT_ALLOWED"


def _foreign_jwk(kid: str) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key))
    return jwk | {"kid": kid}


def test_a_token_with_an_unknown_kid_is_unauthenticated(
    stub: rpc_grpc.IdentityServiceStub, good: str
) -> None:
    assert (
        _unauthenticated(stub, _sign(_claims(good), _foreign_jwk("not-a-kid")))
        == "UNKNOWN_SIGNING_KEY"
    )


def test_a_token_with_a_tampered_signature_is_unauthenticated(
    stub: rpc_grpc.IdentityServiceStub, good: str
) -> None:
    head, payload, signature = good.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[10] ^= 0x01
    assert _unauthenticated(stub, f"{head}.{payload}.{_b64(bytes(raw))}") == "INVALID_SIGNATURE"


def test_a_token_with_tampered_claims_is_unauthenticated(
    stub: rpc_grpc.IdentityServiceStub, good: str
) -> None:
    head, _payload, signature = good.split(".")
    forged = _b64(json.dumps(_claims(good) | {"realm_access": {"roles": ["auditor"]}}).encode())
    assert _unauthenticated(stub, f"{head}.{forged}.{signature}") == "INVALID_SIGNATURE"


def test_a_token_signed_with_the_encryption_key_is_unauthenticated(
    stub: rpc_grpc.IdentityServiceStub, good: str, local_idp: LocalIdp
) -> None:
    enc = local_idp.private_key("enc")
    assert (
        _unauthenticated(stub, _sign(_claims(good), enc, kid=enc["kid"])) == "UNKNOWN_SIGNING_KEY"
    )


def test_a_flood_of_unknown_kids_fetches_the_jwks_at_most_once_per_cooldown(
    flood_server: tuple[rpc_grpc.IdentityServiceStub, Any, list[float]], good: str
) -> None:
    stub, fetch, now = flood_server
    stub.GetOrganisation(GET_ORG, metadata=bearer(good), timeout=5)
    assert fetch.calls == 1
    claims = _claims(good)
    forged = [_sign(claims, _foreign_jwk(uuid.uuid4().hex)) for _ in range(3)]
    now[0] += 31  # the cooldown since the first fetch has passed
    for i in range(60):
        assert _unauthenticated(stub, forged[i % 3]) == "UNKNOWN_SIGNING_KEY"
        now[0] += 0.25  # 15 s in all: inside one cooldown
    assert fetch.calls == 2  # the first unknown kid may refetch once; the rest may not
    now[0] += 30
    assert _unauthenticated(stub, forged[0]) == "UNKNOWN_SIGNING_KEY"
    assert fetch.calls == 3  # after the cooldown, one more refetch
    stub.GetOrganisation(GET_ORG, metadata=bearer(good), timeout=5)
    assert fetch.calls == 3
