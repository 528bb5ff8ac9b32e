"""Who coordinates a patient's care: the organisation with the patient's active COORDINATING
care relationship in identity, the only practice that may create (and hold) the patient's
care plan.

careplan learns it from identity's ``ListCareRelationships``, asked *as the caller* (the
caller's own token and delegation header are forwarded, careplan adds nothing): identity
decides that read and logs it like any other, and its minimisation shows a clinician its
own organisation's relationships and who coordinates, the patient all of theirs. So
careplan learns no more than the caller could learn itself, and there is no back door: a
caller identity refuses (no care relationship, a patient it does not know) is refused here.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Sequence
from typing import Protocol

import grpc

from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from servicekit.auth import Principal, current_principal
from servicekit.authorization import IdentityUnavailable

# The metadata of the caller's own call that identity needs to decide as the caller.
FORWARDED = ("authorization", "x-carenet-on-behalf-of")
MAX_PAGES = 20

Credentials = Sequence[tuple[str, str]]


class NotVisible(Exception):
    """identity refused the caller a read of the patient's care relationships."""


class Coordinators(Protocol):
    def coordinating_practices(self, credentials: Credentials, patient_id: str) -> frozenset[str]:
        """The ids of the organisations coordinating the patient's care now (as the caller
        sees them: empty if none); :class:`NotVisible` when identity refuses the caller;
        ``IdentityUnavailable`` when identity cannot be asked (fail closed)."""
        ...


def forwarded(metadata: Sequence[tuple[str, str | bytes]]) -> list[tuple[str, str]]:
    """The caller's credentials among its call's metadata."""
    return [(k, v) for k, v in metadata if k in FORWARDED and isinstance(v, str)]


# The current call's principal and credentials (set by the servicer for every RPC that
# reads a plan), so that the practice which would hold a missing plan can be learnt as the
# caller. Kept with the principal they came with: a worker thread's value is only ever
# used for that same principal (the call that set it), never for a later call's.
_CALLER: contextvars.ContextVar[tuple[Principal | None, Credentials]] = contextvars.ContextVar(
    "careplan_caller_credentials", default=(None, ())
)


def remember_caller(context: grpc.ServicerContext) -> None:
    _CALLER.set((current_principal(), forwarded(context.invocation_metadata())))


def credentials_of(principal: Principal) -> Credentials:
    """The credentials of the call ``principal`` is making (none if not remembered)."""
    remembered, credentials = _CALLER.get()
    return credentials if remembered is principal else ()


def _active(rel: id_pb.CareRelationship, now: dt.datetime) -> bool:
    if rel.HasField("start_time") and rel.start_time.ToDatetime(tzinfo=dt.UTC) > now:
        return False
    return not (rel.HasField("end_time") and rel.end_time.ToDatetime(tzinfo=dt.UTC) <= now)


class GrpcCoordinators:
    """``Coordinators`` over identity's ``ListCareRelationships``, on a channel that carries
    no token of careplan's own (the caller's is forwarded)."""

    def __init__(self, channel: grpc.Channel, *, deadline_seconds: float) -> None:
        self.stub = id_grpc.IdentityServiceStub(channel)
        self.deadline = deadline_seconds

    def coordinating_practices(self, credentials: Credentials, patient_id: str) -> frozenset[str]:
        now = dt.datetime.now(dt.UTC)
        found: set[str] = set()
        page_token = ""
        for _ in range(MAX_PAGES):
            try:
                reply = self.stub.ListCareRelationships(
                    id_rpc.ListCareRelationshipsRequest(
                        parent=f"patients/{patient_id}", page_size=100, page_token=page_token
                    ),
                    metadata=tuple(credentials),
                    timeout=self.deadline,
                )
            except grpc.RpcError as exc:
                code = getattr(exc, "code", lambda: None)()
                if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                    raise NotVisible from exc
                raise IdentityUnavailable("identity is unavailable") from exc
            for rel in reply.care_relationships:
                if rel.kind == id_pb.CARE_RELATIONSHIP_KIND_COORDINATING and _active(rel, now):
                    found.add(rel.organisation.removeprefix("organisations/"))
            page_token = reply.next_page_token
            if not page_token:
                break
        return frozenset(found)
