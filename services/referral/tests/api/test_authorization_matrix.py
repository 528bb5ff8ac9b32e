"""Who sees and changes a referral: role x relation to the referral x tenant, every cell
asserted against the real identity server, and every patient-data RPC logged exactly once.

The referral: dr.jansen (gp, gp-de-linde) referred p-0001 to the GLI of gli-beweegfit, which
accepted it. For a party, identity decides first: what it does not permit is
PERMISSION_DENIED with its reason. identity is asked about the referral with its record
holder, the referring practice: another organisation with a care relationship needs the
patient's consent for referral data (NO_CONSENT otherwise).

GetReferral and RecordReferralOutcome ask identity only for a party to the referral: a
caller that is not one is answered as for a referral that does not exist (NOT_FOUND
REFERRAL_NOT_FOUND), a role that is never a party (insurer, admin, auditor)
ROLE_NOT_PERMITTED, and neither is logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.fixtures import (
    OTHER_TENANT,
    IdentityService,
    Tokens,
    bearer,
    identity_command,
    identity_env,
)
from testkit.idp import LocalIdp
from testkit.rpc import failure

from ..conftest import ReferralServer

OK = ("OK", "")
WRONG_PARTY = ("PERMISSION_DENIED", "TRANSITION_NOT_ALLOWED_FOR_PARTY")
ROLE = ("PERMISSION_DENIED", "ROLE_NOT_PERMITTED")
NOT_FOUND = ("NOT_FOUND", "REFERRAL_NOT_FOUND")

# user, role, relation to the referral, tenant, GetReferral, RecordReferralOutcome
MATRIX = [
    ("dr.jansen", "gp", "referrer", "same", OK, WRONG_PARTY),
    ("poh.bakker", "practice-nurse", "referrer's practice", "same", OK, WRONG_PARTY),
    ("coach.degroot", "provider", "target", "same", OK, OK),
    ("pat.dewit", "patient", "the patient", "same", OK, WRONG_PARTY),
    # The referral is the referring practice's data: another organisation needs the
    # patient's consent (p-0001 gave lifestyle providers, not hospitals, her referral data)
    ("dr.smit", "specialist", "treats the patient, not a party", "same", NOT_FOUND, NOT_FOUND),
    ("dr.devries", "gp", "none", "same", NOT_FOUND, NOT_FOUND),
    (
        "coach.visser",
        "sport-coach",
        "target of other offers",
        "same",
        NOT_FOUND,
        NOT_FOUND,
    ),
    ("pat.yilmaz", "patient", "another patient", "same", NOT_FOUND, NOT_FOUND),
    ("analist.peters", "insurer-analyst", "none", "same", ROLE, ROLE),
    ("admin.zuidoost", "care-group-admin", "none", "same", ROLE, ROLE),
    ("auditor.dekker", "auditor", "none", "same", ROLE, ROLE),
    # the other care group's practice is registered (the noord_practice fixture), and
    # p-0001 is unknown in its care group: refused like a patient without a relationship
    ("dr.noord", "gp", "none", "other", NOT_FOUND, NOT_FOUND),
    ("admin.noord", "care-group-admin", "none", "other", ROLE, ROLE),
    ("pat.noord", "patient", "none", "other", NOT_FOUND, NOT_FOUND),
]


def _metadata(tokens: Tokens, user: str) -> Any:
    return bearer(tokens.patient(user) if user.startswith("pat.") else tokens.user(user))


@pytest.fixture(scope="module")
def noord_practice(local_idp: LocalIdp, identity_service: IdentityService, tokens: Tokens) -> None:
    """The other care group and its GP practice, registered at the shared identity server the
    way the operator and that care group's admin do it: ``identity bootstrap-care-group``
    (idempotent) run as a process, then CreateOrganisation through identity's API with
    admin.noord's token (an ALREADY_EXISTS means an earlier test registered it): what
    dr.noord is refused then does not depend on which tests ran before."""
    identity_command(
        identity_env(local_idp, identity_service.database_url),
        "bootstrap-care-group",
        OTHER_TENANT,
        "Zorggroep Noord",
    )
    with grpc.insecure_channel(identity_service.target) as channel:
        try:
            id_grpc.IdentityServiceStub(channel).CreateOrganisation(
                id_rpc.CreateOrganisationRequest(
                    organisation_id="gp-noord",
                    organisation=id_pb.Organisation(
                        display_name="Praktijk Noord",
                        type=id_pb.ORGANISATION_TYPE_GP_PRACTICE,
                        agb_code="01099999",
                    ),
                    request_id="matrix-gp-noord",
                ),
                metadata=bearer(tokens.user("admin.noord")),
                timeout=10,
            )
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.ALREADY_EXISTS:
                raise


@pytest.fixture(scope="module")
def referral_name(stub: rpc_grpc.ReferralServiceStub, tokens: Tokens) -> Iterator[str]:
    created = stub.CreateReferral(
        rpc.CreateReferralRequest(
            parent="patients/p-0001",
            referral=pb.Referral(
                offer="offers/gli-beweegfit-cool",
                reason="matrix",
                profile=pb.PatientProfile(age=50, bmi=33.0, postcode="5612"),
            ),
            request_id="matrix-referral",
        ),
        metadata=_metadata(tokens, "dr.jansen"),
        timeout=10,
    )
    if created.status == pb.REFERRAL_STATUS_REQUESTED:
        stub.TransitionReferral(
            rpc.TransitionReferralRequest(name=created.name, status=pb.REFERRAL_STATUS_ACCEPTED),
            metadata=_metadata(tokens, "coach.degroot"),
            timeout=10,
        )
    yield created.name
    stub.TransitionReferral(
        rpc.TransitionReferralRequest(
            name=created.name, status=pb.REFERRAL_STATUS_CANCELLED, reason="end of matrix test"
        ),
        metadata=_metadata(tokens, "dr.jansen"),
        timeout=10,
    )


def _outcome(call: Any) -> tuple[str, str]:
    try:
        call()
    except grpc.RpcError as exc:
        fail = failure(exc)
        assert fail.error_infos == 1
        return fail.code.name, fail.reason
    return OK


@pytest.mark.parametrize(
    ("user", "role", "relation", "tenant", "get", "record"), MATRIX, ids=[m[0] for m in MATRIX]
)
def test_the_authorization_matrix(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    referral_server: ReferralServer,
    referral_name: str,
    noord_practice: None,
    user: str,
    role: str,
    relation: str,
    tenant: str,
    get: tuple[str, str],
    record: tuple[str, str],
) -> None:
    metadata = _metadata(tokens, user)
    before = referral_server.access_log_count()
    got = _outcome(
        lambda: stub.GetReferral(
            rpc.GetReferralRequest(name=referral_name), metadata=metadata, timeout=10
        )
    )
    assert got == get
    # only a party's read is asked of identity (and so logged)
    assert referral_server.access_log_count() - before == (1 if get == OK else 0)
    before = referral_server.access_log_count()
    recorded = _outcome(
        lambda: stub.RecordReferralOutcome(
            rpc.RecordReferralOutcomeRequest(
                name=referral_name, outcome=pb.ReferralOutcome(attendance=pb.ATTENDANCE_PARTIAL)
            ),
            metadata=metadata,
            timeout=10,
        )
    )
    assert recorded == record
    # likewise only a party's change (whatever it then answers)
    assert referral_server.access_log_count() - before == (0 if record in (NOT_FOUND, ROLE) else 1)


def test_the_watch_stream_shows_the_target_only_referrals_to_its_offers(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_name: str
) -> None:
    def referrals(user: str) -> set[str]:
        events = stub.WatchReferralEvents(
            rpc.WatchReferralEventsRequest(no_follow=True),
            metadata=_metadata(tokens, user),
            timeout=10,
        )
        return {e.referral for e in events}

    assert referral_name in referrals("coach.degroot")
    assert referral_name in referrals("pat.dewit")
    assert referral_name not in referrals("coach.visser")
    assert referrals("dr.noord") == set()
    with pytest.raises(grpc.RpcError) as caught:
        referrals("analist.peters")
    assert failure(caught.value).reason == "ROLE_NOT_PERMITTED"
