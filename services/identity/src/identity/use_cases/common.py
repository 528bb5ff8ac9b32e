"""What every use case shares: the roles it checks, the caller's organisation and care group,
and request_id replay."""

from __future__ import annotations

import hashlib
import hmac

from identity.use_cases.deps import Deps
from servicekit.auth import Principal
from servicekit.idempotency import IdempotentRequest

ADMIN_ROLES = frozenset({"care-group-admin"})
REGISTER_ROLES = frozenset({"gp", "practice-nurse", "specialist", "care-group-admin"})
RECORDING_ROLES = frozenset({"gp", "practice-nurse", "specialist"})
VERIFY_ROLES = frozenset({"auditor", "care-group-admin"})


def names_org(org_id: str) -> str:
    return f"organisations/{org_id}"


def org_id_of(principal: Principal) -> str:
    return principal.organisation.removeprefix("organisations/")


def care_group_of(principal: Principal) -> str:
    return principal.care_group.removeprefix("organisations/")


def keyed_fingerprint(deps: Deps, fingerprint: str) -> str:
    """The stored form of a request's fingerprint: keyed, because a RegisterPatient request
    carries a BSN, and a plain hash of a 9-digit number is no secret."""
    return hmac.new(deps.bsn_pepper, fingerprint.encode(), hashlib.sha256).hexdigest()


def idempotent(
    deps: Deps, principal: Principal, request_id: str, method: str, fingerprint: str
) -> IdempotentRequest:
    """A create's request_id (servicekit.idempotency): call it inside the unit of work, then
    ``replayed(uow.repo)`` and, once created, ``remember(uow.repo, name)``. The fingerprint
    is stored keyed (:func:`keyed_fingerprint`)."""
    return IdempotentRequest.of(
        principal,
        request_id,
        method,
        fingerprint,
        stored=lambda fp: keyed_fingerprint(deps, fp),
    )
