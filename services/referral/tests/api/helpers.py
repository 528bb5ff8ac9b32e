"""What referral's API tests share: callers' metadata, a fresh listed offer, a call that must
fail, and counting what a call wrote (a failed call's whole status: testkit.rpc.status_of)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import grpc
import jwt
import pytest
from sqlalchemy import Engine, text

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer
from testkit.rpc import Failure, failure

PROFILE = pb.PatientProfile(
    conditions=["T90"], age=58, bmi=31.5, postcode="5612", municipality_code="GM0772"
)
_offers = itertools.count(1)


def token_of(tokens: Tokens, user: str) -> str:
    return tokens.patient(user) if user.startswith("pat.") else tokens.user(user)


def as_user(tokens: Tokens, user: str) -> Any:
    return bearer(token_of(tokens, user))


def subject_of(tokens: Tokens, user: str) -> str:
    """The ``sub`` of the user's token: who the services take the caller to be."""
    claims = jwt.decode(token_of(tokens, user), options={"verify_signature": False})
    return str(claims["sub"])


def fails(call: Callable[[], Any]) -> Failure:
    """The failure of a call that must fail, with exactly one ErrorInfo of referral."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    result = failure(caught.value)
    assert result.error_infos == 1
    assert result.domain == "referral.carenet"
    return result


def listed_offer(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, prefix: str, owner: str = "coach.degroot"
) -> str:
    """A new offer on the menu card (owner creates and proposes, the admin lists it)."""
    metadata = as_user(tokens, owner)
    offer = stub.CreateOffer(
        rpc.CreateOfferRequest(
            offer=pb.Offer(display_name=f"{prefix} offer", category=pb.OFFER_CATEGORY_GLI),
            offer_id=f"{prefix}-{next(_offers)}",
        ),
        metadata=metadata,
        timeout=10,
    )
    stub.ProposeOffer(rpc.ProposeOfferRequest(name=offer.name), metadata=metadata, timeout=10)
    stub.PublishOffer(
        rpc.PublishOfferRequest(name=offer.name),
        metadata=as_user(tokens, "admin.zuidoost"),
        timeout=10,
    )
    return offer.name


def refer(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    patient: str,
    offer: str,
    *,
    user: str = "dr.jansen",
    request_id: str = "",
    reason: str = "Overweight with DM2",
    metadata: Any = None,
) -> pb.Referral:
    return stub.CreateReferral(
        rpc.CreateReferralRequest(
            parent=f"patients/{patient}",
            referral=pb.Referral(offer=offer, reason=reason, profile=PROFILE),
            request_id=request_id,
        ),
        metadata=metadata if metadata is not None else as_user(tokens, user),
        timeout=10,
    )


def count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())
