"""JwksCache while the issuer is away: UNAVAILABLE, at most one attempt per retry period,
and keys again at the first attempt after the issuer is back (a fake issuer and clock)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from servicekit.auth import JwksCache
from servicekit.errors import Unauthenticated, Unavailable


def _jwk(kid: str) -> dict[str, Any]:
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    n = numbers.public_numbers().n
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
        "e": "AQAB",
    }


class Issuer:
    def __init__(self) -> None:
        self.up = False
        self.calls = 0
        self.document = {"keys": [_jwk("k1")]}

    def fetch(self, _url: str) -> dict[str, Any]:
        self.calls += 1
        if not self.up:
            raise ConnectionRefusedError("issuer down")
        return self.document


def test_away_then_back() -> None:
    issuer, now = Issuer(), [100.0]
    cache = JwksCache("http://issuer/certs", fetch=issuer.fetch, clock=lambda: now[0])
    for _ in range(50):  # a burst of calls within one second: one attempt
        with pytest.raises(Unavailable):
            cache.key_for("k1")
        now[0] += 0.01
    assert issuer.calls == 1
    issuer.up = True
    now[0] += 0.6  # 1.1 s after the failed attempt
    assert cache.key_for("k1") is not None
    assert issuer.calls == 2


def test_an_unknown_key_while_the_issuer_answers_is_unauthenticated() -> None:
    issuer, now = Issuer(), [100.0]
    issuer.up = True
    cache = JwksCache("http://issuer/certs", fetch=issuer.fetch, clock=lambda: now[0])
    cache.key_for("k1")
    with pytest.raises(Unauthenticated):
        cache.key_for("forged")
    assert issuer.calls == 1  # inside the cooldown: no refetch for a forged kid


def test_keys_already_held_keep_working_while_the_issuer_is_away() -> None:
    issuer, now = Issuer(), [100.0]
    issuer.up = True
    cache = JwksCache("http://issuer/certs", fetch=issuer.fetch, clock=lambda: now[0])
    cache.key_for("k1")
    issuer.up = False
    now[0] += 301  # past the maximum age: the refetch fails, the old keys stay
    assert cache.key_for("k1") is not None
    now[0] += 31
    with pytest.raises(Unavailable):  # a new key cannot be checked now: retry later
        cache.key_for("k2")
