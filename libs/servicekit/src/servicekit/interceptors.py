"""Server interceptors: errors to ``google.rpc.Status``, and bearer-token authentication.

Both wrap the method handler itself, so that they run in the thread that serves the call
and cover streaming responses for their whole length.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc
from grpc_status import rpc_status
from sqlalchemy.exc import DBAPIError

from servicekit.auth import TokenVerifier, acting_as
from servicekit.errors import DomainError, Unavailable, internal_status, to_status

log = logging.getLogger("servicekit.rpc")

Behaviour = Callable[[Any, grpc.ServicerContext], Any]
Wrapper = Callable[[Behaviour, bool, str], Behaviour]

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
    handler: grpc.RpcMethodHandler[Any, Any], wrapper: Wrapper, method: str
) -> grpc.RpcMethodHandler[Any, Any]:
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            wrapper(handler.unary_unary, False, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            wrapper(handler.unary_stream, True, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            wrapper(handler.stream_unary, False, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        wrapper(handler.stream_stream, True, method),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class ErrorInterceptor(grpc.ServerInterceptor):
    """Maps :class:`DomainError` to a rich status; anything else to a bare INTERNAL."""

    def __init__(self, domain: str) -> None:
        self.domain = domain

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(details)
        if handler is None:
            return None
        return _wrap_handler(handler, self._wrap, details.method)

    def _abort(self, context: grpc.ServicerContext, exc: Exception, method: str) -> None:
        if isinstance(exc, DBAPIError) and (
            exc.connection_invalidated or type(exc.orig).__name__ in _TRANSIENT_DB_ERRORS
        ):
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

    def _wrap(self, behaviour: Behaviour, streaming: bool, method: str) -> Behaviour:
        if streaming:

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    yield from behaviour(request, context)
                except Exception as exc:
                    if _is_abort(exc, context):
                        raise
                    self._abort(context, exc, method)

            return stream

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return behaviour(request, context)
            except Exception as exc:
                if _is_abort(exc, context):
                    raise
                self._abort(context, exc, method)
                return None

        return unary


def _is_abort(exc: Exception, context: grpc.ServicerContext) -> bool:
    # context.abort() raises a bare Exception after setting the code; let it through.
    code = getattr(context, "code", lambda: None)()
    return type(exc) is Exception and code not in (None, grpc.StatusCode.OK)


class AuthInterceptor(grpc.ServerInterceptor):
    """Verifies the bearer token of every call except health and reflection."""

    def __init__(self, verifier: TokenVerifier, public_prefixes: Iterable[str] = PUBLIC_PREFIXES):
        self.verifier = verifier
        self.public_prefixes = tuple(public_prefixes)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(details)
        if handler is None or details.method.startswith(self.public_prefixes):
            return handler
        return _wrap_handler(handler, self._wrap, details.method)

    def _wrap(self, behaviour: Behaviour, streaming: bool, method: str) -> Behaviour:
        verifier = self.verifier

        def principal_of(context: grpc.ServicerContext) -> Any:
            metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            return verifier.verify_metadata(metadata)

        if streaming:

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                principal = principal_of(context)
                with acting_as(principal):
                    yield from behaviour(request, context)

            return stream

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            with acting_as(principal_of(context)):
                return behaviour(request, context)

        return unary
