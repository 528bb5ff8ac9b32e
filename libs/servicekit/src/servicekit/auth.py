"""Bearer-token checks against the issuer's JWKS, and the typed principal they yield.

Tokens are checked offline: RS256 only, ``iss``, ``aud`` (this service's audience) and
``exp`` with a small leeway, keys with ``use == "sig"`` only. The JWKS is cached with a
maximum age; an unknown ``kid`` triggers at most one refetch per cooldown, so a flood of
forged ``kid`` values cannot turn into a flood of requests to the issuer. While the issuer
cannot be reached and no key fits, a call is UNAVAILABLE (retry), not UNAUTHENTICATED.

Acting for a person: a registered system client of an organisation (a GP practice's KIS)
may name the person it acts for in the ``x-carenet-on-behalf-of`` metadata header, by that
person's Keycloak user id (``sub``). The header is taken only from a token with the realm
role ``delegate``; from any other token (a person's own token, another system client) a
call that carries it is refused, PERMISSION_DENIED ``ON_BEHALF_OF_NOT_ALLOWED``, before the
method runs. An empty value asserts nothing and counts as no header. The principal keeps
both: the system (``subject``, ``client_id``) and the person (``on_behalf_of``).

Whom the person is, is identity's to say: the server resolves the person once per call
(servicekit.delegation) and the call then runs with the person's roles, organisation and
care group (``roles`` etc.), while ``client_roles`` keeps the token's own roles, which is
what a service passes on to identity's ``Authorize`` as the subject's roles, so that identity
decides from its own directory rather than from the service's copy.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from servicekit.config import ServiceSettings
from servicekit.errors import InvalidArgument, PermissionDenied, Unauthenticated, Unavailable

ORG_CLAIM = "carenet_org"
TENANT_CLAIM = "carenet_tenant"
PATIENT_CLAIM = "carenet_patient"
ON_BEHALF_OF_HEADER = "x-carenet-on-behalf-of"
MAX_ON_BEHALF_OF_LENGTH = 255  # Keycloak's user ids are UUIDs; its id column holds 36

DELEGATE_ROLE = "delegate"

CLINICIAN_ROLES = frozenset({"gp", "practice-nurse", "specialist"})
ALL_ROLES = frozenset(
    {
        "gp",
        "practice-nurse",
        "specialist",
        "sport-coach",
        "municipality-officer",
        "provider",
        "insurer-analyst",
        "care-group-admin",
        "patient",
        "auditor",
        "service",
        DELEGATE_ROLE,
    }
)


def organisation_name(org_id: str) -> str:
    return f"organisations/{org_id}" if org_id else ""


def patient_name(patient_id: str) -> str:
    return f"patients/{patient_id}" if patient_id else ""


@dataclass(frozen=True)
class Principal:
    """Who is calling: taken from a verified token, never from the request body."""

    subject: str
    client_id: str
    organisation: str
    care_group: str
    roles: frozenset[str]
    patient: str = ""
    on_behalf_of: str = ""
    token_id: str = ""
    username: str = field(default="", compare=False)
    # The token's own roles, set once the person named in ``on_behalf_of`` was resolved
    # (servicekit.delegation): ``roles``, ``organisation`` and ``care_group`` are then the
    # person's. None while the call acts for itself (or before resolution).
    client_roles: frozenset[str] | None = None

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)

    @property
    def is_service(self) -> bool:
        return "service" in self.roles

    @property
    def is_patient(self) -> bool:
        return "patient" in self.roles and bool(self.patient)

    @property
    def is_clinician(self) -> bool:
        return bool(self.roles & CLINICIAN_ROLES)

    @property
    def is_delegate(self) -> bool:
        """A system client registered to act for persons of its own organisation."""
        return DELEGATE_ROLE in self.token_roles

    @property
    def acts_for_person(self) -> bool:
        """The call runs with the roles of the person named in ``on_behalf_of``, as
        identity resolved them."""
        return self.client_roles is not None

    @property
    def token_roles(self) -> frozenset[str]:
        """The roles in the token itself (a delegate's, for a call acting for a person)."""
        return self.roles if self.client_roles is None else self.client_roles

    @property
    def responsible_user(self) -> str:
        return self.on_behalf_of or self.subject

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        realm_access = claims.get("realm_access") or {}
        roles = realm_access.get("roles", []) if isinstance(realm_access, Mapping) else []
        return cls(
            subject=str(claims.get("sub", "")),
            client_id=str(claims.get("azp", "")),
            organisation=organisation_name(str(claims.get(ORG_CLAIM) or "")),
            care_group=organisation_name(str(claims.get(TENANT_CLAIM) or "")),
            roles=frozenset(str(r) for r in roles if str(r) in ALL_ROLES),
            patient=patient_name(str(claims.get(PATIENT_CLAIM) or "")),
            token_id=str(claims.get("jti", "")),
            username=str(claims.get("preferred_username", "")),
        )


class OnBehalfOfNotAllowed(PermissionDenied):
    default_reason = "ON_BEHALF_OF_NOT_ALLOWED"


def acting_for(principal: Principal, values: Iterable[str]) -> Principal:
    """The principal of a call given the values of its ``x-carenet-on-behalf-of`` header.

    No value, or only empty ones: the caller acts for itself. Any non-empty value from a
    caller without the ``delegate`` role: :class:`OnBehalfOfNotAllowed`. From a delegate,
    exactly one distinct value of at most MAX_ON_BEHALF_OF_LENGTH printable ASCII
    characters, else INVALID_ARGUMENT ``INVALID_ON_BEHALF_OF``.
    """
    named = list(dict.fromkeys(v for v in values if v != ""))
    if not named:
        return principal
    if not principal.is_delegate:
        raise OnBehalfOfNotAllowed(
            f"the {ON_BEHALF_OF_HEADER} header is accepted only from a delegate system client"
        )
    if len(named) > 1:
        raise InvalidArgument.single(
            ON_BEHALF_OF_HEADER, "names more than one person", "INVALID_ON_BEHALF_OF"
        )
    person = named[0]
    if len(person) > MAX_ON_BEHALF_OF_LENGTH or not (person.isascii() and person.isprintable()):
        raise InvalidArgument.single(
            ON_BEHALF_OF_HEADER,
            f"must be a user id of at most {MAX_ON_BEHALF_OF_LENGTH} printable ASCII characters",
            "INVALID_ON_BEHALF_OF",
        )
    return dataclasses.replace(principal, on_behalf_of=person)


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "carenet_principal", default=None
)


def current_principal() -> Principal:
    """The verified caller of the RPC being served. Fails closed."""
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("no authenticated caller", reason="UNAUTHENTICATED")
    return principal


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)


def _fetch_json(url: str, timeout: float = 5.0) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise ValueError("JWKS URL must be http(s)")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - checked above
        data: dict[str, Any] = json.loads(response.read())
        return data


class JwksCache:
    """Signing keys of the issuer, cached with a maximum age and a refetch cooldown.

    Only a successful fetch counts as "fetched": a failed one leaves the keys it had and
    is retried after ``retry_seconds`` (not after the whole cooldown), so a service that
    started, or whose keys aged out, while the issuer was away recovers within seconds of
    its return. While no key can be had because the issuer does not answer, a token is
    refused UNAVAILABLE ``JWKS_UNAVAILABLE`` (retry later), not UNAUTHENTICATED: the token
    may well be valid. A failed attempt blocks further attempts for ``retry_seconds``, so
    a flood of calls during an outage is not a flood of requests to the issuer.
    """

    def __init__(
        self,
        url: str,
        *,
        max_age_seconds: float = 300.0,
        refetch_cooldown_seconds: float = 30.0,
        retry_seconds: float = 1.0,
        fetch: Callable[[str], dict[str, Any]] = _fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.max_age = max_age_seconds
        self.cooldown = refetch_cooldown_seconds
        self.retry = retry_seconds
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, RSAPublicKey] = {}
        self._fetched_at: float | None = None  # the last successful fetch
        self._failed_at: float | None = None  # the last failed attempt since then
        self.fetch_count = 0

    def _refresh(self) -> None:
        self.fetch_count += 1
        document = self._fetch(self.url)
        keys: dict[str, RSAPublicKey] = {}
        for jwk in document.get("keys", []):
            if jwk.get("kty") != "RSA" or jwk.get("use") != "sig" or not jwk.get("kid"):
                continue
            if jwk.get("alg", "RS256") != "RS256":
                continue
            key = RSAAlgorithm.from_jwk(jwk)
            if isinstance(key, RSAPublicKey):
                keys[str(jwk["kid"])] = key
        self._keys = keys
        self._fetched_at = self._clock()
        self._failed_at = None

    def _may_try(self, now: float) -> bool:
        return self._failed_at is None or now - self._failed_at >= self.retry

    def key_for(self, kid: str) -> RSAPublicKey:
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self.max_age
            if stale and self._may_try(now):
                self._try_refresh(now)
            key = self._keys.get(kid)
            if (
                key is None
                and self._fetched_at is not None
                and now - self._fetched_at >= self.cooldown
                and self._may_try(now)
            ):
                self._try_refresh(now)
                key = self._keys.get(kid)
            issuer_away = self._failed_at is not None
        if key is None:
            if issuer_away:
                raise Unavailable(
                    "the issuer's signing keys are unavailable; retry", reason="JWKS_UNAVAILABLE"
                )
            raise Unauthenticated("token signed with an unknown key", reason="UNKNOWN_SIGNING_KEY")
        return key

    def _try_refresh(self, now: float) -> None:
        try:
            self._refresh()
        except (OSError, ValueError):
            # Keep the keys we had; an unreachable issuer must not open the door.
            self._failed_at = now


class TokenVerifier:
    """Turns a bearer token into a :class:`Principal`, or raises Unauthenticated.

    A token whose signature and claims were verified is remembered (bounded, keyed by the
    token itself) until its ``exp``; a repeat skips only the RSA check, never the expiry.
    """

    CACHE_SIZE = 10_000

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: JwksCache,
        leeway_seconds: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.leeway = leeway_seconds
        self._clock = clock
        self._verified: dict[str, tuple[float, Principal]] = {}

    def verify(self, token: str) -> Principal:
        """The principal of a bearer token (acting for itself)."""
        cached = self._verified.get(token)
        if cached is not None:
            expires, principal = cached
            if self._clock() < expires + self.leeway:
                return principal
            self._verified.pop(token, None)
        claims = self._verify_claims(token)
        principal = Principal.from_claims(claims)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (float(claims["exp"]), principal)
        return principal

    def _verify_claims(self, token: str) -> Mapping[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("malformed token", reason="MALFORMED_TOKEN") from exc
        if header.get("alg") != "RS256":
            raise Unauthenticated("token algorithm not allowed", reason="ALGORITHM_NOT_ALLOWED")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("token has no key id", reason="UNKNOWN_SIGNING_KEY")
        key = self.jwks.key_for(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated(
                "token not meant for this service", reason="WRONG_AUDIENCE"
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated("token from another issuer", reason="WRONG_ISSUER") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthenticated("token signature invalid", reason="INVALID_SIGNATURE") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("token invalid", reason="INVALID_TOKEN") from exc
        return claims

    def verify_metadata(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
        """The principal of a call from its metadata: the bearer token first (UNAUTHENTICATED
        without a valid one), then the on-behalf-of header (:func:`acting_for`)."""
        headers: list[str] = []
        on_behalf_of: list[str] = []
        for key, value in metadata:
            if not isinstance(value, str):
                continue
            if key == "authorization":
                headers.append(value)
            elif key == ON_BEHALF_OF_HEADER:
                on_behalf_of.append(value)
        header = headers[-1] if headers else ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("a bearer token is required", reason="MISSING_TOKEN")
        return acting_for(self.verify(token.strip()), on_behalf_of)


def verifier_for(settings: ServiceSettings) -> TokenVerifier:
    """The token verifier a service's settings describe (issuer, audience, JWKS caching)."""
    jwks = JwksCache(
        settings.jwks_url,
        max_age_seconds=settings.jwks_max_age_seconds,
        refetch_cooldown_seconds=settings.jwks_refetch_cooldown_seconds,
    )
    return TokenVerifier(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks=jwks,
        leeway_seconds=settings.token_leeway_seconds,
    )
