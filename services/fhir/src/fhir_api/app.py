"""The FHIR R4 API as a Flask application: bearer tokens checked here (audience
``carenet-fhir``), then every read goes through the four services with the caller's token.

Routes, under ``/fhir/R4``: ``GET metadata``, ``GET <Type>/<id>`` and ``GET <Type>?...``
for the types in :data:`fhir_api.capability.SERVED`. Errors are OperationOutcome resources
with the HTTP status matching the gRPC code (:mod:`fhir_api.errors`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from email.utils import format_datetime
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import grpc
import msgspec
from flask import Flask, Response, request

from carenet.outcomes.v1 import outcomes_pb2 as outcomes_pb
from fhir_api.capability import SERVED, capability_statement
from fhir_api.config import Settings
from fhir_api.errors import FhirError, from_rpc, invalid
from fhir_api.reads import READS, SEARCHES, Context, load_code_table
from fhir_api.resources.common import Codes, Json
from fhir_api.search import JSON_MIME_TYPES, bundle, check_format, parse
from servicekit.auth import MAX_ON_BEHALF_OF_LENGTH, JwksCache, TokenVerifier
from servicekit.errors import DomainError
from servicekit.platform_api import Api, Channels, Metadata, Stubs, caller_metadata

log = logging.getLogger("fhir")
PREFIX = "/fhir/R4"
ON_BEHALF_OF = "X-Carenet-On-Behalf-Of"
FHIR_JSON = "application/fhir+json; charset=utf-8"
CODE_TABLE_SECONDS = 600.0


def _software_version() -> str:
    try:
        return version("fhir-api")
    except PackageNotFoundError:
        return "0"


class _CodeTable:
    """The measurement code table (reference data, no patient data), kept for a while."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: dict[str, outcomes_pb.MeasurementCode] = {}
        self._until = 0.0

    def __call__(self, api: Api) -> dict[str, outcomes_pb.MeasurementCode]:
        with self._lock:
            if time.monotonic() < self._until:
                return self._table
        table = load_code_table(api)
        with self._lock:
            self._table, self._until = table, time.monotonic() + CODE_TABLE_SECONDS
        return table


_encode = msgspec.json.Encoder().encode  # UTF-8 JSON, compact; several times json.dumps's speed


def _answer(body: Json, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status, headers, mimetype=None, content_type=FHIR_JSON)


def _version_headers(resource: Json) -> dict[str, str]:
    """``ETag`` (the version, weak) and ``Last-Modified`` of a read (FHIR R4 http.html)."""
    meta = resource.get("meta", {})
    headers = {}
    if "versionId" in meta:
        headers["ETag"] = f'W/"{meta["versionId"]}"'
    if "lastUpdated" in meta:
        headers["Last-Modified"] = _http_date(meta["lastUpdated"])
    return headers


@lru_cache(maxsize=4096)
def _http_date(instant: str) -> str:
    """The HTTP date of a FHIR instant (kept: a resource is read far more often than it
    changes)."""
    updated = dt.datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return format_datetime(updated.astimezone(dt.UTC), usegmt=True)


def _acceptable(accept: str) -> bool:
    """Whether an ``Accept`` header takes JSON (an absent or empty one does)."""
    return not accept or "json" in accept or any(m in accept for m in JSON_MIME_TYPES)


def _negotiate() -> None:
    """An Accept header that takes no JSON is answered 406 (FHIR R4 http.html); the
    health checks answer whatever a probe accepts."""
    if request.path.startswith(PREFIX) and not _acceptable(request.headers.get("Accept", "")):
        raise FhirError(406, "not-supported", "FORMAT_NOT_SUPPORTED", "only JSON is served")


def _read_parameters() -> None:
    """A read takes ``_format`` (JSON) and nothing else."""
    args = request.args.to_dict(flat=False)
    check_format(args.pop("_format", [""])[-1])
    if args:
        raise invalid("UNKNOWN_PARAMETER", "a read takes no parameters but _format")


def _on_behalf_of(raw: str | None) -> str:
    """The person a delegate system acts for (``X-Carenet-On-Behalf-Of``, ``raw``; None when
    not given), forwarded as the services' ``x-carenet-on-behalf-of``; they decide whether
    the caller may. The WSGI environment holds one value per header name (the server joins
    repeated headers with commas, which no person id has)."""
    if raw is None:
        return ""
    value = raw.strip()
    if (
        not value
        or len(value) > MAX_ON_BEHALF_OF_LENGTH
        or "," in value  # the header given twice
        or not all(" " < c <= "~" for c in value)
    ):
        raise invalid(
            "INVALID_ON_BEHALF_OF",
            f"{ON_BEHALF_OF}: one person id of printable characters is expected",
        )
    return value


def _bearer(header: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; 401 without one."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise FhirError(401, "login", "MISSING_TOKEN", "a bearer token is required")
    return token.strip()


def _secure(response: Response) -> Response:
    """The headers every answer carries (after_request)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _error_response(error: FhirError, canonical_base: str) -> Response:
    headers = {"WWW-Authenticate": error.challenge()} if error.status == 401 else None
    return _answer(error.outcome(canonical_base), error.status, headers)


def _fixed(metadata: Metadata) -> Callable[[], Metadata]:
    """The same metadata for every call of one request."""
    return lambda: metadata


#: The read route (the path template the error log names).
READ_RULE = f"{PREFIX}/<resource_type>/<resource_id>"


def _readiness(channels: Channels) -> Response:
    """Ready when the four services answer their health checks."""
    ready, states = channels.readiness()
    body = {"status": "ok" if ready else "unavailable", "services": states}
    return Response(json.dumps(body), 200 if ready else 503, content_type="application/json")


def create_app(settings: Settings, channels: Channels | None = None) -> Flask:
    """The API's Flask application over ``channels`` (opened from ``settings`` when None)."""
    app = Flask("fhir_api")
    app.config["JSON_SORT_KEYS"] = False
    codes = Codes(settings.canonical_base.rstrip("/"))
    channels = channels or Channels.open(
        settings.identity_target,
        settings.referral_target,
        settings.careplan_target,
        settings.outcomes_target,
    )
    stubs = Stubs.over(channels)
    verifier = TokenVerifier(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks=JwksCache(
            settings.jwks_url,
            max_age_seconds=settings.jwks_max_age_seconds,
            refetch_cooldown_seconds=settings.jwks_refetch_cooldown_seconds,
        ),
        leeway_seconds=settings.token_leeway_seconds,
    )
    code_table = _CodeTable()
    software = _software_version()

    def base_url() -> str:
        return settings.public_url.rstrip("/") or request.host_url.rstrip("/") + PREFIX

    def context_for(authorization: str, on_behalf_of: str | None) -> Context:
        """The request's services as the caller of ``authorization`` (its bearer token,
        checked here: 401 when it is missing or refused), acting for ``on_behalf_of``."""
        token = _bearer(authorization)
        try:
            verifier.verify(token)
        except DomainError as exc:
            if exc.code == grpc.StatusCode.UNAUTHENTICATED:
                raise FhirError(401, "login", exc.reason, exc.message, "invalid_token") from None
            raise FhirError(
                503, "transient", exc.reason, "the token issuer cannot be reached"
            ) from None
        return Context(
            Api(
                stubs,
                _fixed(caller_metadata(token, _on_behalf_of(on_behalf_of))),
                settings.call_deadline_seconds,
            ),
            codes,
            code_table,
        )

    def context() -> Context:
        return context_for(
            request.headers.get("Authorization", ""), request.headers.get(ON_BEHALF_OF)
        )

    @app.errorhandler(FhirError)
    def _fhir_error(error: FhirError) -> Response:
        return _error_response(error, codes.base)

    @app.errorhandler(grpc.RpcError)
    def _rpc_error(error: grpc.RpcError) -> Response:
        return _fhir_error(from_rpc(error))

    @app.errorhandler(404)
    def _no_route(_: Exception) -> Response:
        return _fhir_error(FhirError(404, "not-supported", "NOT_SUPPORTED", "no such interaction"))

    @app.errorhandler(405)
    def _not_allowed(_: Exception) -> Response:
        return _fhir_error(
            FhirError(405, "not-supported", "METHOD_NOT_ALLOWED", "this API only reads")
        )

    @app.errorhandler(Exception)
    def _internal(error: Exception) -> Response:
        log.exception(
            "fhir request failed",
            extra={"path_template": request.url_rule.rule if request.url_rule else ""},
        )
        return _fhir_error(
            FhirError(500, "exception", "INTERNAL", "the request could not be completed")
        )

    app.before_request(_negotiate)

    app.after_request(_secure)

    @app.get("/healthz")
    def healthz() -> tuple[str, int]:
        return "ok", 200

    @app.get("/readyz")
    def readyz() -> Response:
        return _readiness(channels)

    @app.get(f"{PREFIX}/metadata")
    def metadata() -> Response:
        return _answer(capability_statement(base_url(), software))

    @app.get(READ_RULE)
    def read(resource_type: str, resource_id: str) -> Response:
        reader = READS.get(resource_type)
        if reader is None:
            raise FhirError(
                404, "not-supported", "NOT_SUPPORTED", "this resource type is not read by id here"
            )
        _read_parameters()
        resource = reader(context(), resource_id)
        return _answer(resource, headers=_version_headers(resource))

    @app.get(f"{PREFIX}/<resource_type>")
    def search(resource_type: str) -> Response:
        searcher = SEARCHES.get(resource_type)
        if searcher is None:
            raise FhirError(
                404, "not-supported", "NOT_SUPPORTED", "this resource type is not searched here"
            )
        served = SERVED[resource_type]
        query = parse(
            request.args.to_dict(flat=False),
            served.search,
            served.includes,
            default_count=settings.default_page_size,
            max_count=settings.max_page_size,
        )
        page = searcher(context(), query)
        return _answer(
            bundle(base_url(), resource_type, query, page.matches, page.included, page.next_token)
        )

    def _close(*_: Any) -> None:
        channels.close()

    app.extensions["carenet_channels_close"] = _close
    return app
