"""The server interceptor: bearer-token authentication, and errors to ``google.rpc.Status``.

It wraps the method handler itself, so that it runs in the thread that serves the call and
covers streaming responses for their whole length.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc
from grpc_status import rpc_status
from sqlalchemy.exc import DBAPIError

from servicekit.auth import Principal, TokenVerifier, acting_as
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


class CallInterceptor(grpc.ServerInterceptor):
    """Every call: the bearer token to a principal (health and reflection excepted), and any
    error to a rich status: a :class:`DomainError` to its status, anything else to a bare
    INTERNAL.

    A method's handler is wrapped once and reused for every later call of that method.
    """

    def __init__(
        self,
        domain: str,
        verifier: TokenVerifier | None,
        public_prefixes: Iterable[str] = PUBLIC_PREFIXES,
    ) -> None:
        self.domain = domain
        self.verifier = verifier
        self.public_prefixes = tuple(public_prefixes)
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
            wrapped = _wrap_handler(handler, self._wrap, method)
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

    def _wrap(self, behaviour: Behaviour, streaming: bool, method: str) -> Behaviour:
        verifier = None if method.startswith(self.public_prefixes) else self.verifier

        def principal_of(context: grpc.ServicerContext) -> Principal:
            assert verifier is not None
            metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            return verifier.verify_metadata(metadata)

        if streaming:

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    if verifier is None:
                        yield from behaviour(request, context)
                        return
                    with acting_as(principal_of(context)):
                        yield from behaviour(request, context)
                except Exception as exc:
                    if _is_abort(exc, context):
                        raise
                    self._abort(context, exc, method)

            return stream

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                if verifier is None:
                    return behaviour(request, context)
                with acting_as(principal_of(context)):
                    return behaviour(request, context)
            except Exception as exc:
                if _is_abort(exc, context):
                    raise
                self._abort(context, exc, method)
                return None

        return unary


def _transient_db_error(exc: Exception) -> bool:
    """A lost connection or a conflict, from SQLAlchemy or from the driver used directly."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or type(exc.orig).__name__ in _TRANSIENT_DB_ERRORS
    return type(exc).__module__.startswith("psycopg") and type(exc).__name__ in _TRANSIENT_DB_ERRORS


def _is_abort(exc: Exception, context: grpc.ServicerContext) -> bool:
    # context.abort() raises a bare Exception after setting the code; let it through.
    code = getattr(context, "code", lambda: None)()
    return type(exc) is Exception and code not in (None, grpc.StatusCode.OK)
