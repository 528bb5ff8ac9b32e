"""The server factory's guards on identity's real server: NUL text refused naming the field,
a status that stays within gRPC's trailers, and page tokens signed with
IDENTITY_PAGE_TOKEN_KEY, good at every replica that shares it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.config import Settings
from identity.server import create_server
from servicekit.auth import verifier_for
from testkit.fixtures import IDENTITY_TEST_PEPPER, IdentityService, Tokens, bearer
from testkit.idp import LocalIdp
from testkit.rpc import serving

from .calls import fails

Stub = rpc_grpc.IdentityServiceStub


@pytest.mark.parametrize(
    ("request_", "method", "field"),
    [
        (
            rpc.GetOrganisationRequest(name="organisations/gp-de\x00-linde"),
            "GetOrganisation",
            "name",
        ),
        (
            rpc.CreateConsentRequest(
                parent="patients/p-0001",
                consent=pb.Consent(
                    requester=pb.OrganisationSelector(organisation="organisations/x\x00")
                ),
            ),
            "CreateConsent",
            "consent.requester.organisation",
        ),
        (rpc.LookupPatientRequest(bsn="111222333", purpose="care\x00"), "LookupPatient", "purpose"),
    ],
)
def test_a_nul_character_is_invalid_argument_naming_the_field(
    stub: Stub, tokens: Tokens, request_: object, method: str, field: str
) -> None:
    fail = fails(getattr(stub, method), request_, bearer(tokens.user("dr.jansen")))
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CHARACTERS")
    assert [f[0] for f in fail.field_violations] == [field]
    assert fail.error_infos[0][1] == "identity.carenet"


# Before 0001-01-01, after 9999-12-31, and nanos outside 0..999,999,999.
_OUT_OF_RANGE = [
    Timestamp(seconds=-62_135_596_801),
    Timestamp(seconds=253_402_300_800),
    Timestamp(seconds=1_700_000_000, nanos=1_000_000_000),
    Timestamp(seconds=1_700_000_000, nanos=-1),
]


@pytest.mark.parametrize("bad", _OUT_OF_RANGE, ids=["year-0", "year-10000", "nanos-1e9", "nanos-1"])
@pytest.mark.parametrize(
    ("build", "method", "field"),
    [
        (
            lambda t: rpc.EndCareRelationshipRequest(
                name="patients/p-0001/careRelationships/x", end_time=t
            ),
            "EndCareRelationship",
            "end_time",
        ),
        (
            lambda t: rpc.CreateCareRelationshipRequest(
                parent="patients/p-0001",
                care_relationship=pb.CareRelationship(
                    organisation="organisations/gp-de-linde", start_time=t
                ),
            ),
            "CreateCareRelationship",
            "care_relationship.start_time",
        ),
        (
            lambda t: rpc.CreateConsentRequest(
                parent="patients/p-0001", consent=pb.Consent(end_time=t)
            ),
            "CreateConsent",
            "consent.end_time",
        ),
    ],
)
def test_an_out_of_range_timestamp_is_invalid_argument_naming_the_field(
    stub: Stub, tokens: Tokens, bad: Timestamp, build: Any, method: str, field: str
) -> None:
    fail = fails(getattr(stub, method), build(bad), bearer(tokens.user("dr.jansen")))
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_TIMESTAMP")
    assert [f[0] for f in fail.field_violations] == [field]


def test_many_bad_fields_give_a_status_naming_the_first_ten(stub: Stub, tokens: Tokens) -> None:
    """Two hundred patient names with a NUL each: a status gRPC can carry, naming ten."""
    request = rpc.BatchAuthorizeRequest(
        patients=[f"patients/p-{i:04d}{'-' * 200}\x00" for i in range(200)],
        data_category=pb.DATA_CATEGORY_MEASUREMENTS,
        action=pb.ACTION_CREATE,
    )
    fail = fails(stub.BatchAuthorize, request, bearer(tokens.client("svc-outcomes")))
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CHARACTERS")
    assert [f[0] for f in fail.field_violations] == [f"patients[{i}]" for i in range(10)]
    assert fail.message.endswith("; and 190 more")


@contextmanager
def _replica(local_idp: LocalIdp, identity_service: IdentityService, key: str) -> Iterator[Stub]:
    """Another identity server on the same database, with IDENTITY_PAGE_TOKEN_KEY ``key``."""
    settings = Settings(
        database_url=identity_service.database_url,
        oidc_issuer=local_idp.issuer,
        grpc_host="127.0.0.1",
        grpc_port=0,
        bsn_pepper=IDENTITY_TEST_PEPPER,  # type: ignore[arg-type]
        page_token_key=key,  # type: ignore[arg-type]
    )
    running = create_server(settings, identity_service.deps, verifier_for(settings))
    with serving(running) as channel:
        yield rpc_grpc.IdentityServiceStub(channel)


def test_page_tokens_are_good_at_every_replica_sharing_the_key_and_no_other(
    local_idp: LocalIdp, identity_service: IdentityService, tokens: Tokens
) -> None:
    admin = bearer(tokens.user("admin.zuidoost"))
    key = "identity-replicas-share-this-page-token-key-0123"
    first_page = rpc.ListOrganisationsRequest(page_size=2)
    with (
        _replica(local_idp, identity_service, key) as one,
        _replica(local_idp, identity_service, key) as two,
        _replica(local_idp, identity_service, "another-deployment-another-key-0123456") as other,
    ):
        first = one.ListOrganisations(first_page, metadata=admin, timeout=10)
        assert first.next_page_token
        after = rpc.ListOrganisationsRequest(page_size=2, page_token=first.next_page_token)
        second = two.ListOrganisations(after, metadata=admin, timeout=10)
        assert second.organisations
        assert {o.name for o in second.organisations}.isdisjoint(
            o.name for o in first.organisations
        )
        refused = fails(other.ListOrganisations, after, admin)
        assert (refused.code, refused.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_PAGE_TOKEN",
        )


@pytest.mark.parametrize(
    ("subject", "field"),
    [
        (pb.Subject(care_group="a" * 64), "subject.care_group"),
        (pb.Subject(organisation="organisations/" + "a" * 64), "subject.organisation"),
        (pb.Subject(user="u" * 201), "subject.user"),
        (pb.Subject(roles=["a" * 301]), "subject.roles"),
    ],
)
def test_a_service_naming_a_subject_the_log_cannot_hold_is_invalid_argument(
    stub: Stub, tokens: Tokens, subject: pb.Subject, field: str
) -> None:
    """Found by the fuzz suite: these were INTERNAL when the access-log row was written."""
    service = bearer(tokens.client("svc-referral"))
    single = rpc.AuthorizeRequest(
        patient="patients/p-0001",
        data_category=pb.DATA_CATEGORY_REFERRAL,
        action=pb.ACTION_READ,
        subject=subject,
    )
    batch = rpc.BatchAuthorizeRequest(
        patients=["patients/p-0001"],
        data_category=pb.DATA_CATEGORY_REFERRAL,
        action=pb.ACTION_READ,
        subject=subject,
    )
    for call, request in ((stub.Authorize, single), (stub.BatchAuthorize, batch)):
        fail = fails(call, request, service)
        assert (fail.code, fail.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "SUBJECT_FIELD_TOO_LONG",
        )
        assert [f[0] for f in fail.field_violations] == [field]
