"""Builds the identity gRPC server (servicekit.service_server over the servicer)."""

from __future__ import annotations

from identity.errors import DOMAIN
from identity.servicer import IdentityServicer
from servicekit.service_server import server_factory

create_server = server_factory(IdentityServicer, domain=DOMAIN)
