"""One server factory for every service: ``service_server(settings, servicer, ...)``.

A service's composition root (``main.py``) builds its servicer and calls::

    running = service_server(settings, CarePlanServicer(deps), domain=DOMAIN,
                             verifier=verifier, delegations=deps.delegations)

Everything else comes from the servicer and the settings: the gRPC service it implements
(found from the generated ``<Name>Servicer`` base class it subclasses, with its
``add_<Name>Servicer_to_server`` and the service's full name for health and reflection),
the bind address (``<SVC>_GRPC_HOST``, ``<SVC>_GRPC_PORT``), the worker count
(``<SVC>_MAX_WORKERS``) and the page-token key (``<SVC>_PAGE_TOKEN_KEY``). The server itself
is :func:`servicekit.server.create_server` (interceptors, health, reflection).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from opentelemetry.metrics import MeterProvider

from servicekit.auth import TokenVerifier
from servicekit.config import ServiceSettings
from servicekit.delegation import Delegations
from servicekit.server import RunningServer, ServerSettings, create_server

_SERVICER = "Servicer"

D = TypeVar("D")


class Servicer(Generic[D]):
    """What a service's servicer is made of: its dependencies (``server_factory`` makes it as
    ``servicer(deps)``), which its RPCs use as ``self.deps``. A servicer subclasses it beside
    the generated ``<Name>Servicer``."""

    def __init__(self, deps: D) -> None:
        self.deps = deps


@dataclass(frozen=True)
class GrpcService:
    """The generated parts of one gRPC service a servicer implements."""

    full_name: str
    add_to_server: Callable[[Any, grpc.Server], None]


def grpc_service_of(servicer: object) -> GrpcService:
    """The gRPC service ``servicer`` implements: the generated ``<Name>Servicer`` base class
    among its bases, whose module ``*_pb2_grpc`` has ``add_<Name>Servicer_to_server`` and
    whose ``*_pb2`` module describes ``<Name>``."""
    for base in type(servicer).__mro__:
        module_name = base.__module__
        if not (module_name.endswith("_pb2_grpc") and base.__name__.endswith(_SERVICER)):
            continue
        name = base.__name__.removesuffix(_SERVICER)
        grpc_module = importlib.import_module(module_name)
        pb2 = importlib.import_module(module_name.removesuffix("_grpc"))
        descriptor = pb2.DESCRIPTOR.services_by_name.get(name)
        add = getattr(grpc_module, f"add_{base.__name__}_to_server", None)
        if descriptor is not None and add is not None:
            return GrpcService(descriptor.full_name, add)
    raise TypeError(f"{type(servicer).__name__} implements no generated gRPC servicer")


def service_server(
    settings: ServiceSettings,
    servicer: object,
    *,
    domain: str,
    verifier: TokenVerifier | None,
    delegations: Delegations | None = None,
    own_string_checks: Sequence[str] = (),
    server_settings: ServerSettings | None = None,
    meter_provider: MeterProvider | None = None,
) -> RunningServer:
    """The service's server, built and not started (``start()``, or
    :func:`servicekit.server.serve`). ``domain`` is the ErrorInfo domain of its errors;
    ``delegations`` resolves the person a delegate acts for (every service but identity);
    ``own_string_checks`` names request messages whose strings the service checks itself
    (see :func:`servicekit.server.create_server`). ``server_settings`` (TLS, drain, health
    port) default to the service's environment, ``meter_provider`` to the global one."""
    service = grpc_service_of(servicer)
    return create_server(
        host=settings.grpc_host,
        port=settings.grpc_port,
        domain=domain,
        service_names=[service.full_name],
        register=lambda server: service.add_to_server(servicer, server),
        verifier=verifier,
        max_workers=settings.max_workers,
        page_token_key=settings.page_token_key.get_secret_value(),
        delegations=delegations,
        own_string_checks=own_string_checks,
        settings=server_settings,
        meter_provider=meter_provider,
    )


def server_factory(
    servicer: Callable[[D], object],
    *,
    domain: str,
    delegations: Callable[[D], Delegations | None] | None = None,
    own_string_checks: Sequence[str] = (),
) -> Callable[[ServiceSettings, D, TokenVerifier | None], RunningServer]:
    """A service's ``create_server(settings, deps, verifier)``: :func:`service_server` over
    ``servicer(deps)``; ``delegations(deps)`` resolves the person a delegate acts for."""

    def create_server(
        settings: ServiceSettings, deps: D, verifier: TokenVerifier | None
    ) -> RunningServer:
        return service_server(
            settings,
            servicer(deps),
            domain=domain,
            verifier=verifier,
            delegations=delegations(deps) if delegations is not None else None,
            own_string_checks=own_string_checks,
        )

    return create_server
