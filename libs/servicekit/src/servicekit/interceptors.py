"""The server interceptor: bearer-token authentication, the person a delegate acts for
(servicekit.delegation), request decoding and its generic guards (servicekit.decoding), and
errors to ``google.rpc.Status``.

It wraps the method handler itself, so that it runs in the thread that serves the call and
covers streaming responses for their whole length.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import grpc
from grpc_status import rpc_status
from sqlalchemy.exc import DBAPIError

from servicekit import decoding
from servicekit.auth import Principal, TokenVerifier, acting_as
from servicekit.delegation import Delegations
from servicekit.errors import DomainError, Unavailable, internal_status, to_status
from servicekit.metrics import RpcMetrics
from servicekit.paging import signing_with

log = logging.getLogger("servicekit.rpc")

Behaviour = Callable[[Any, grpc.ServicerContext], Any]


class _Call(NamedTuple):
    """What the wrapper needs to know about a method."""

    method: str
    request_type: str
    streaming: bool  # the response is a stream
    request_streaming: bool


Wrapper = Callable[[Behaviour, _Call], Behaviour]

# Driver errors after which the same call may succeed when retried.
_TRANSIENT_DB_ERRORS = frozenset(
    {
        "OperationalError",
        "AdminShutdown",
        "ConnectionFailure",
        "SerializationFailure",
        "DeadlockDetected",
    }
)

PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any],
    wrapper: Wrapper,
    method: str,
    own_string_checks: frozenset[str] = frozenset(),
) -> grpc.RpcMethodHandler[Any, Any]:
    """The handler with its behaviour wrapped and its request deserializer made tolerant
    (servicekit.decoding): an undecodable body reaches the wrapper as UNDECODABLE. Requests
    whose message is in ``own_string_checks`` are not walked for NUL characters."""
    request_type = decoding.message_name(handler.request_deserializer)
    deserializer = decoding.tolerant(
        handler.request_deserializer, check_strings=request_type not in own_string_checks
    )
    call = _Call(method, request_type, False, False)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            wrapper(handler.unary_unary, call),
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            wrapper(handler.unary_stream, call._replace(streaming=True)),
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            wrapper(handler.stream_unary, call._replace(request_streaming=True)),
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        wrapper(handler.stream_stream, call._replace(streaming=True, request_streaming=True)),
        request_deserializer=deserializer,
        response_serializer=handler.response_serializer,
    )


class CallInterceptor(grpc.ServerInterceptor):
    """Every call: the bearer token (and the on-behalf-of header) to a principal (health and
    reflection excepted), acting as the person a delegate names when ``delegations`` is
    given (else the principal keeps the token's roles), an undecodable request body to
    INVALID_ARGUMENT ``MALFORMED_REQUEST`` and a NUL character in a string to
    ``INVALID_CHARACTERS`` (servicekit.decoding), the page-token key for the call, and any
    error to a rich status: a :class:`DomainError` to its status, anything else to a bare
    INTERNAL.

    A method's handler is wrapped once and reused for every later call of that method.
    """

    def __init__(
        self,
        domain: str,
        verifier: TokenVerifier | None,
        public_prefixes: Iterable[str] = PUBLIC_PREFIXES,
        *,
        page_token_key: bytes | None = None,
        delegations: Delegations | None = None,
        own_string_checks: Iterable[str] = (),
        draining: threading.Event | None = None,
        rpc_metrics: RpcMetrics | None = None,
    ) -> None:
        self.domain = domain
        self.rpc_metrics = rpc_metrics
        self.draining = draining or threading.Event()
        self.own_string_checks = frozenset(own_string_checks)
        self.verifier = verifier
        self.delegations = delegations
        self.public_prefixes = tuple(public_prefixes)
        self.page_token_key = page_token_key
        self._handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = details.method
        wrapped = self._handlers.get(method)
        if wrapped is None:
            handler = continuation(details)
            if handler is None:
                return None
            wrapped = _wrap_handler(handler, self._wrap, method, self.own_string_checks)
            self._handlers[method] = wrapped
        return wrapped

    def _abort(self, context: grpc.ServicerContext, exc: Exception, method: str) -> None:
        if _transient_db_error(exc):
            exc = Unavailable("the database is unavailable; retry", reason="DATABASE_UNAVAILABLE")
        if isinstance(exc, DomainError):
            status = to_status(exc, self.domain)
            log.info(
                "rpc_error",
                extra={"rpc": method, "code": exc.code.name, "reason": exc.reason},
            )
        else:
            status = internal_status(self.domain)
            log.error("rpc_internal_error", extra={"rpc": method}, exc_info=exc)
        context.abort_with_status(rpc_status.to_status(status))

    def _wrap(self, behaviour: Behaviour, call: _Call) -> Behaviour:
        wrapped = self._wrap_call(behaviour, call)
        if self.rpc_metrics is None or call.method.startswith(self.public_prefixes):
            return wrapped  # health checks and reflection are not measured
        return _measured(wrapped, call, self.rpc_metrics)

    def _wrap_call(self, behaviour: Behaviour, call: _Call) -> Behaviour:
        method = call.method
        verifier = None if method.startswith(self.public_prefixes) else self.verifier
        key = self.page_token_key
        delegations = self.delegations

        def principal_of(context: grpc.ServicerContext) -> Principal:
            assert verifier is not None
            principal = verifier.verify_metadata(context.invocation_metadata())
            if principal.on_behalf_of and delegations is not None:
                return delegations.resolve(principal)
            return principal

        def decoded(request: Any) -> Any:
            if call.request_streaming:
                return decoding.checked_stream(request, call.request_type)
            return decoding.checked(request, call.request_type)

        if call.streaming:
            draining = self.draining

            def drained(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                # The behaviour sees the call as ended once the server drains, and the
                # stream then ends UNAVAILABLE: its consumer resumes on another pod.
                watched: Any = _DrainingContext(context, draining)
                for item in behaviour(decoded(request), watched):
                    yield item
                    if draining.is_set():
                        break
                if draining.is_set():
                    raise Unavailable(
                        "the server is shutting down; resume on another instance",
                        reason="SERVER_DRAINING",
                    )

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    if verifier is None:
                        yield from drained(request, context)
                        return
                    with acting_as(principal_of(context)), signing_with(key):
                        yield from drained(request, context)
                except Exception as exc:
                    if _is_abort(exc, context):
                        raise
                    self._abort(context, exc, method)

            return stream

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                if verifier is None:
                    return behaviour(decoded(request), context)
                with acting_as(principal_of(context)), signing_with(key):
                    return behaviour(decoded(request), context)
            except Exception as exc:
                if _is_abort(exc, context):
                    raise
                self._abort(context, exc, method)
                return None

        return unary


def _code_name(context: grpc.ServicerContext, default: str) -> str:
    code = getattr(context, "code", lambda: None)()
    if isinstance(code, grpc.StatusCode):
        return code.name
    return default


def _measured(wrapped: Behaviour, call: _Call, rpc: RpcMetrics) -> Behaviour:
    """The behaviour with its duration (by status code) and in-flight count recorded."""
    method = call.method
    clock = time.perf_counter

    if call.streaming:

        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            rpc.started(method)
            started = clock()
            code = "UNKNOWN"
            try:
                yield from wrapped(request, context)
                code = _code_name(context, "OK")
            except GeneratorExit:
                code = "CANCELLED"
                raise
            except BaseException:
                code = _code_name(context, "UNKNOWN")
                raise
            finally:
                rpc.finished(method, code, clock() - started)

        return stream

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        rpc.started(method)
        started = clock()
        code = "UNKNOWN"
        try:
            reply = wrapped(request, context)
            code = _code_name(context, "OK")
            return reply
        except BaseException:
            code = _code_name(context, "UNKNOWN")
            raise
        finally:
            rpc.finished(method, code, clock() - started)

    return unary


class _DrainingContext:
    """A servicer context whose call counts as inactive once the server drains, so that
    a stream polling ``context.is_active()`` ends at its next poll."""

    __slots__ = ("_context", "_draining")

    def __init__(self, context: grpc.ServicerContext, draining: threading.Event) -> None:
        self._context = context
        self._draining = draining

    def is_active(self) -> bool:
        return not self._draining.is_set() and self._context.is_active()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _transient_db_error(exc: Exception) -> bool:
    """A lost connection or a conflict, from SQLAlchemy or from the driver used directly."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or type(exc.orig).__name__ in _TRANSIENT_DB_ERRORS
    return type(exc).__module__.startswith("psycopg") and type(exc).__name__ in _TRANSIENT_DB_ERRORS


def _is_abort(exc: Exception, context: grpc.ServicerContext) -> bool:
    # context.abort() raises a bare Exception after setting the code; let it through.
    code = getattr(context, "code", lambda: None)()
    return type(exc) is Exception and code not in (None, grpc.StatusCode.OK)
