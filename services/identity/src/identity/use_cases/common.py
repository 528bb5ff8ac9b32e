"""What every use case shares: the roles it checks, the caller's organisation and care group,
and request_id replay."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

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


# A create without a request_id: nothing is replayed or remembered.
NO_REQUEST_ID = IdempotentRequest(caller="", request_id="", method="", fingerprint="")


def stored_fingerprint(deps: Deps) -> Callable[[str], str]:
    """How a create's request fingerprint is stored (:func:`keyed_fingerprint`): give it to
    ``IdempotentRequest.from_message`` (the servicer) or ``IdempotentRequest.of``."""
    return lambda fingerprint: keyed_fingerprint(deps, fingerprint)


def idempotent(deps: Deps, principal: Principal, request_id: str, method: str) -> IdempotentRequest:
    """A create's request_id given without a request message (the demo seed), its
    fingerprint the empty request's."""
    return IdempotentRequest.of(principal, request_id, method, "", stored=stored_fingerprint(deps))
