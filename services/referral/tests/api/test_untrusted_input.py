"""Input a careless or hostile client can send is refused as INVALID_ARGUMENT naming the
field, never INTERNAL (issue 11 point 12): Timestamps out of range on every RPC that takes
one, and page tokens that are unsigned, forged, or signed but holding a position of the
wrong type, on every list."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from servicekit import paging
from testkit.fixtures import Tokens

from ..conftest import PAGE_TOKEN_KEY
from .helpers import PROFILE, as_user, fails, listed_offer, refer

BEYOND_9999 = Timestamp(seconds=253_402_300_800)
BAD_TIMESTAMPS = {
    "seconds beyond year 9999": BEYOND_9999,
    "seconds before year 1": Timestamp(seconds=-62_135_596_801),
    "nanos 1e9": Timestamp(seconds=1_700_000_000, nanos=1_000_000_000),
    "nanos -1": Timestamp(seconds=1_700_000_000, nanos=-1),
}


def _offer_with(path: str, ts: Timestamp) -> pb.Offer:
    offer = pb.Offer(display_name="Timestamps", category=pb.OFFER_CATEGORY_GLI)
    if path == "recognition.valid_until":
        offer.recognition.level = pb.RECOGNITION_LEVEL_WELL_DESCRIBED
        offer.recognition.valid_until.CopyFrom(ts)
    elif path.startswith("schedules"):
        schedule = offer.schedules.add(freq="WEEKLY")
        getattr(schedule, path.rsplit(".", 1)[-1]).CopyFrom(ts)
    else:
        cost = offer.cost_options.add(funding=pb.FUNDING_MUNICIPALITY)
        getattr(cost, path.rsplit(".", 1)[-1]).CopyFrom(ts)
    return offer


OFFER_PATHS = [
    "recognition.valid_until",
    "schedules[0].valid_from",
    "schedules[0].valid_to",
    "cost_options[0].valid_from",
    "cost_options[0].valid_to",
]


@pytest.mark.parametrize("bad", list(BAD_TIMESTAMPS))
@pytest.mark.parametrize("path", OFFER_PATHS)
def test_an_offer_timestamp_out_of_range_is_invalid_argument_naming_it(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, path: str, bad: str
) -> None:
    owner = as_user(tokens, "coach.degroot")
    offer = _offer_with(path, BAD_TIMESTAMPS[bad])
    created = fails(
        lambda: stub.CreateOffer(rpc.CreateOfferRequest(offer=offer), metadata=owner, timeout=10)
    )
    assert (created.code, created.reason, created.field_violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_TIMESTAMP",
        (f"offer.{path}",),
    )
    offer.name = "offers/gli-beweegfit-cool"
    top = path.split("[", 1)[0].split(".", 1)[0]
    updated = fails(
        lambda: stub.UpdateOffer(
            rpc.UpdateOfferRequest(offer=offer, update_mask=field_mask_pb2.FieldMask(paths=[top])),
            metadata=owner,
            timeout=10,
        )
    )
    assert (updated.code, updated.field_violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        (f"offer.{path}",),
    )


@pytest.mark.parametrize("bad", list(BAD_TIMESTAMPS))
def test_an_outcome_timestamp_out_of_range_is_invalid_argument_naming_it(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, bad: str
) -> None:
    outcome = pb.ReferralOutcome(
        attendance=pb.ATTENDANCE_PARTIAL,
        measurements=[
            pb.Measurement(code="weight-change", value=-1.0, unit="kg"),
            pb.Measurement(
                code="weight-change", value=-2.0, unit="kg", effective_time=BAD_TIMESTAMPS[bad]
            ),
        ],
    )
    target = as_user(tokens, "coach.degroot")
    name = "patients/p-0001/referrals/any"
    calls: list[Callable[[], Any]] = [
        lambda: stub.RecordReferralOutcome(
            rpc.RecordReferralOutcomeRequest(name=name, outcome=outcome),
            metadata=target,
            timeout=10,
        ),
        lambda: stub.TransitionReferral(
            rpc.TransitionReferralRequest(
                name=name, status=pb.REFERRAL_STATUS_COMPLETED, outcome=outcome
            ),
            metadata=target,
            timeout=10,
        ),
    ]
    for call in calls:
        fail = fails(call)
        assert (fail.code, fail.reason, fail.field_violations) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_TIMESTAMP",
            ("outcome.measurements[1].effective_time",),
        )


# ---------------------------------------------------------------- page tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _fingerprint_of(token: str) -> str:
    """The request fingerprint a real token carries (its payload is readable, not secret)."""
    payload = token.split(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["f"])


def _unsigned(position: dict[str, Any], fp: str) -> str:
    """A token the way the old, unsigned format allowed anyone to make one."""
    return _b64(json.dumps({"p": position, "f": fp}).encode())


def _forged(position: dict[str, Any], fp: str) -> str:
    """A token in the signed format, signed with a key that is not the service's."""
    return paging.PageToken(position, fp).encode(secrets.token_bytes(32))


def _signed(position: dict[str, Any], fp: str) -> str:
    """A token signed with the service's own key (REFERRAL_PAGE_TOKEN_KEY): only the
    position's type is wrong."""
    return paging.PageToken(position, fp).encode(PAGE_TOKEN_KEY.encode())


Lister = Callable[[str], Any]


def _listers(stub: rpc_grpc.ReferralServiceStub, tokens: Tokens) -> dict[str, Lister]:
    gp = as_user(tokens, "dr.jansen")
    owner = as_user(tokens, "coach.degroot")
    return {
        "ListOffers": lambda token: stub.ListOffers(
            rpc.ListOffersRequest(page_size=1, page_token=token), metadata=owner, timeout=10
        ),
        "ListReferrals": lambda token: stub.ListReferrals(
            rpc.ListReferralsRequest(parent="patients/p-0001", page_size=1, page_token=token),
            metadata=gp,
            timeout=10,
        ),
        "ListReferrals patients/-": lambda token: stub.ListReferrals(
            rpc.ListReferralsRequest(parent="patients/-", page_size=1, page_token=token),
            metadata=gp,
            timeout=10,
        ),
        "FindOffers": lambda token: stub.FindOffers(
            rpc.FindOffersRequest(profile=PROFILE, page_size=1, page_token=token),
            metadata=gp,
            timeout=10,
        ),
    }


WRONG_POSITIONS = {
    "ListOffers": [{"after": 5}, {"after": ["a"]}, {"after": None}, {}, {"offset": 1}],
    "ListReferrals": [{"after": 5}, {"after": {"x": 1}}, {"after": True}, {}],
    "ListReferrals patients/-": [{"after": 5}, {"after": "x" * 600}, {}],
    "FindOffers": [{"offset": "1"}, {"offset": -1}, {"offset": 1.5}, {"offset": True}, {}],
}


@pytest.fixture(scope="module")
def second_pages(stub: rpc_grpc.ReferralServiceStub, tokens: Tokens) -> dict[str, str]:
    """A real next-page token of every list (so that each has more than one page)."""
    for _ in range(2):
        refer(stub, tokens, "p-0001", listed_offer(stub, tokens, "paging"))
    return {name: call("").next_page_token for name, call in _listers(stub, tokens).items()}


@pytest.mark.parametrize("method", list(WRONG_POSITIONS))
def test_a_page_token_with_a_wrong_typed_position_is_invalid_argument(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    second_pages: dict[str, str],
    method: str,
) -> None:
    call = _listers(stub, tokens)[method]
    real = second_pages[method]
    assert real, f"{method} has a second page"
    call(real)  # the real token works
    fp = _fingerprint_of(real)
    # It is signed with the configured key, so _signed makes tokens the service accepts.
    assert paging.decode_page_token(real, fp, key=PAGE_TOKEN_KEY.encode()) is not None
    for position in WRONG_POSITIONS[method]:
        for make in (_unsigned, _forged, _signed):
            fail = fails(lambda make=make, position=position: call(make(position, fp)))  # type: ignore[misc]
            assert (fail.code, fail.reason, fail.field_violations) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "INVALID_PAGE_TOKEN",
                ("page_token",),
            ), (make.__name__, position)


# ---------------------------------------------------------------- found by fuzzing


def test_text_with_a_nul_character_is_invalid_argument_naming_the_field(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    """PostgreSQL text cannot hold NUL; it used to reach the database (INTERNAL)."""
    gp = as_user(tokens, "dr.jansen")
    owner = as_user(tokens, "coach.degroot")
    offer = pb.Offer(display_name="Nul\x00", category=pb.OFFER_CATEGORY_GLI)
    cases: list[tuple[Callable[[], Any], tuple[str, ...]]] = [
        (
            lambda: stub.CreateOffer(
                rpc.CreateOfferRequest(offer=offer, request_id="nul\x00"),
                metadata=owner,
                timeout=10,
            ),
            ("offer.display_name", "request_id"),
        ),
        (
            lambda: refer(stub, tokens, "p-0001", "offers/gli-beweegfit-cool", request_id="\x00"),
            ("request_id",),
        ),
        (
            lambda: refer(stub, tokens, "p-0001", "offers/gli-beweegfit-cool", reason="a\x00b"),
            ("referral.reason",),
        ),
        (
            lambda: stub.TransitionReferral(
                rpc.TransitionReferralRequest(
                    name="patients/p-0001/referrals/x",
                    status=pb.REFERRAL_STATUS_CANCELLED,
                    reason="\x00",
                    outcome=pb.ReferralOutcome(
                        measurements=[pb.Measurement(code="weight-change", unit="k\x00g")]
                    ),
                ),
                metadata=gp,
                timeout=10,
            ),
            ("reason", "outcome.measurements[0].unit"),
        ),
    ]
    for call, fields in cases:
        fail = fails(call)
        assert (fail.code, fail.reason, fail.field_violations) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_CHARACTERS",
            fields,
        )


def test_many_bad_list_entries_give_a_readable_status_naming_the_first_ones(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    """Fifty bad entries used to make a status too large for gRPC's trailers: the client saw
    RESOURCE_EXHAUSTED and no google.rpc.Status."""
    offer = pb.Offer(
        display_name="Many",
        category=pb.OFFER_CATEGORY_GLI,
        target_conditions=["not a code " * 5] * 50,
        languages=["not a language"] * 50,
    )
    fail = fails(
        lambda: stub.CreateOffer(
            rpc.CreateOfferRequest(offer=offer),
            metadata=as_user(tokens, "coach.degroot"),
            timeout=10,
        )
    )
    assert fail.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fail.field_violations == tuple(f"offer.target_conditions[{i}]" for i in range(10))
    assert fail.message.endswith("; and 90 more")
    mask = fails(
        lambda: stub.UpdateOffer(
            rpc.UpdateOfferRequest(
                offer=pb.Offer(name="offers/gli-beweegfit-cool"),
                update_mask=field_mask_pb2.FieldMask(paths=["x" * 50_000] * 30),
            ),
            metadata=as_user(tokens, "coach.degroot"),
            timeout=10,
        )
    )
    assert (mask.reason, mask.field_violations[0]) == (
        "INVALID_UPDATE_MASK",
        "update_mask.paths[0]",
    )


def test_a_waitlist_cannot_be_declared_longer_than_its_counter_can_count(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    """A declared waitlist of 2**31 - 1 used to overflow the database's counter (INTERNAL)
    when the next referral joined it."""
    owner = as_user(tokens, "coach.degroot")
    for capacity, field in [
        (pb.Capacity(total_places=1, waitlist_length=2**31 - 1), "offer.capacity.waitlist_length"),
        (pb.Capacity(total_places=2**31 - 1), "offer.capacity.total_places"),
    ]:
        fail = fails(
            lambda capacity=capacity: stub.CreateOffer(  # type: ignore[misc]
                rpc.CreateOfferRequest(
                    offer=pb.Offer(
                        display_name="Huge", category=pb.OFFER_CATEGORY_GLI, capacity=capacity
                    )
                ),
                metadata=owner,
                timeout=10,
            )
        )
        assert (fail.code, fail.reason, fail.field_violations) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_CAPACITY",
            (field,),
        )
