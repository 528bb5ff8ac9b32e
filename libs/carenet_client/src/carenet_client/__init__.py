"""carenet_client: a Python client of the carenet gRPC API for chain information systems
(KIS) and insurers, and the ``carenet`` command line on it.

Depends only on the generated API code (``carenet-protos``) and public libraries
(grpcio, protobuf, googleapis-common-protos, python-keycloak, typer, rich, openpyxl).
"""

from carenet_client.apis import (
    CarePlanApi,
    IdentityApi,
    IngestResult,
    OutcomesApi,
    ReferralApi,
    patient_name,
    timestamp,
)
from carenet_client.auth import ClientCredentials, PasswordLogin, StaticToken, TokenSource
from carenet_client.channels import RetryPolicy, TlsConfig, make_channel
from carenet_client.client import Carenet
from carenet_client.config import Settings
from carenet_client.errors import CarenetError, FieldViolation, from_rpc_error
from carenet_client.paging import pages

__all__ = [
    "CarePlanApi",
    "Carenet",
    "CarenetError",
    "ClientCredentials",
    "FieldViolation",
    "IdentityApi",
    "IngestResult",
    "OutcomesApi",
    "PasswordLogin",
    "ReferralApi",
    "RetryPolicy",
    "Settings",
    "StaticToken",
    "TlsConfig",
    "TokenSource",
    "from_rpc_error",
    "make_channel",
    "pages",
    "patient_name",
    "timestamp",
]
