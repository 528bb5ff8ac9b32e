"""What identity's API tests read from failed calls and from the demo realm."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from carenet.identity.v1 import identity_pb2 as pb
from identity import demo


@dataclass(frozen=True)
class FullError:
    """Everything a caller can read from a failed call."""

    code: grpc.StatusCode
    message: str
    details: str
    error_infos: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]
    field_violations: tuple[tuple[str, str, str], ...]

    @property
    def reason(self) -> str:
        return self.error_infos[0][0] if self.error_infos else ""

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.error_infos[0][2]) if self.error_infos else {}


def full_error(error: grpc.RpcError) -> FullError:
    call: grpc.Call = error  # type: ignore[assignment]  # a stub's RpcError is a Call
    status = rpc_status.from_call(call)
    assert status is not None, f"no google.rpc.Status on {call.code()}"
    infos: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
    fields: list[tuple[str, str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append((info.reason, info.domain, tuple(sorted(info.metadata.items()))))
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend((v.field, v.description, v.reason) for v in bad.field_violations)
    return FullError(
        code=call.code(),
        message=status.message,
        details=call.details() or "",
        error_infos=tuple(infos),
        field_violations=tuple(fields),
    )


def fails(call: Any, request: Any, metadata: Any) -> FullError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=metadata, timeout=10)
    return full_error(caught.value)


@cache
def realm() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(demo.realm_file().read_text(encoding="utf-8"))
    return data


def user_id(username: str) -> str:
    """A demo user's Keycloak id: the ``sub`` of their tokens."""
    for user in realm()["users"]:
        if user["username"] == username:
            return str(user["id"])
    raise KeyError(username)


def subject_of_user(username: str, client_id: str = "carenet-kis") -> pb.Subject:
    """The Subject a service sends for a demo user's token (servicekit.subject_of)."""
    for user in realm()["users"]:
        if user["username"] == username:
            attributes = user.get("attributes") or {}
            org = (attributes.get("carenet_org") or [""])[0]
            patient = (attributes.get("carenet_patient") or [""])[0]
            return pb.Subject(
                user=str(user["id"]),
                organisation=f"organisations/{org}" if org else "",
                care_group=f"organisations/{attributes['carenet_tenant'][0]}",
                roles=sorted(user.get("realmRoles") or []),
                patient=f"patients/{patient}" if patient else "",
                client_id=client_id,
            )
    raise KeyError(username)
