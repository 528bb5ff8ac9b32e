"""The referral API on a real server, with the real identity server and real tokens: the KIS
flow, codes and ErrorInfo reasons, bad input, and one access-log entry per patient-data RPC."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer
from testkit.rpc import failure

from ..conftest import ReferralServer

PROFILE = pb.PatientProfile(
    conditions=["T90"],
    age=58,
    bmi=31.5,
    postcode="5612",
    municipality_code="GM0772",
    languages=["nl"],
)
GLI = "offers/gli-beweegfit-cool"


def _as(tokens: Tokens, user: str) -> Any:
    if user.startswith("pat."):
        return bearer(tokens.patient(user))
    return bearer(tokens.user(user))


def _fails(call: Callable[[], Any]) -> Any:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    result = failure(caught.value)
    assert result.error_infos == 1
    assert result.domain == "referral.carenet"
    return result


def _refer(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    patient: str,
    offer: str,
    user: str = "dr.jansen",
    request_id: str = "",
) -> pb.Referral:
    return stub.CreateReferral(
        rpc.CreateReferralRequest(
            parent=f"patients/{patient}",
            referral=pb.Referral(offer=offer, reason="Overweight with DM2", profile=PROFILE),
            request_id=request_id,
        ),
        metadata=_as(tokens, user),
        timeout=10,
    )


def _move(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    name: str,
    status: pb.ReferralStatus.ValueType,
    user: str = "coach.degroot",
    **extra: Any,
) -> pb.Referral:
    return stub.TransitionReferral(
        rpc.TransitionReferralRequest(name=name, status=status, **extra),
        metadata=_as(tokens, user),
        timeout=10,
    )


def test_the_kis_flow_find_refer_accept_start_complete_and_the_referrer_sees_the_outcome(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    # a page of 100: the offers other tests list rank among the demo's
    found = stub.FindOffers(
        rpc.FindOffersRequest(profile=PROFILE, page_size=100),
        metadata=_as(tokens, "dr.jansen"),
        timeout=10,
    )
    top = found.matches[0]
    assert top.offer.name == GLI
    assert top.eligibility.eligible
    assert top.score_reasons[0] == "eligible +100"
    assert any(m.capacity_status == pb.CAPACITY_STATUS_WAITLIST for m in found.matches)

    referral = _refer(stub, tokens, "p-0001", GLI, request_id="api-flow-1")
    assert referral.status == pb.REFERRAL_STATUS_REQUESTED
    assert referral.target_organisation == "organisations/gli-beweegfit"
    before = referral_server.access_log_count()
    accepted = _move(stub, tokens, referral.name, pb.REFERRAL_STATUS_ACCEPTED)
    assert accepted.enrolment == pb.ENROLMENT_ENROLLED
    _move(stub, tokens, referral.name, pb.REFERRAL_STATUS_IN_PROGRESS)
    outcome = pb.ReferralOutcome(
        attendance=pb.ATTENDANCE_FULL,
        sessions_attended=12,
        sessions_planned=12,
        result_summary="Walks daily; HbA1c improved",
        measurements=[pb.Measurement(code="weight-change", value=-5.0, unit="kg")],
        enrolment=pb.ENROLMENT_ENROLLED,
    )
    done = _move(stub, tokens, referral.name, pb.REFERRAL_STATUS_COMPLETED, outcome=outcome)
    assert done.status == pb.REFERRAL_STATUS_COMPLETED
    assert referral_server.access_log_count() - before == 3

    for reader in ("dr.jansen", "pat.dewit"):
        seen = stub.GetReferral(
            rpc.GetReferralRequest(name=referral.name), metadata=_as(tokens, reader), timeout=10
        )
        assert seen.outcome.measurements[0].value == -5.0
        assert [h.to_status for h in seen.history] == [
            pb.REFERRAL_STATUS_REQUESTED,
            pb.REFERRAL_STATUS_ACCEPTED,
            pb.REFERRAL_STATUS_IN_PROGRESS,
            pb.REFERRAL_STATUS_COMPLETED,
        ]
        assert seen.history[1].actor and seen.history[1].actor_organisation == (
            "organisations/gli-beweegfit"
        )

    events = list(
        stub.WatchReferralEvents(
            rpc.WatchReferralEventsRequest(no_follow=True),
            metadata=_as(tokens, "dr.jansen"),
            timeout=10,
        )
    )
    mine = [e for e in events if e.referral == referral.name]
    assert [e.status for e in mine] == [
        pb.REFERRAL_STATUS_REQUESTED,
        pb.REFERRAL_STATUS_ACCEPTED,
        pb.REFERRAL_STATUS_IN_PROGRESS,
        pb.REFERRAL_STATUS_COMPLETED,
    ]
    assert mine[-1].outcome.result_summary == "Walks daily; HbA1c improved"
    assert [e.cursor for e in events] == sorted(e.cursor for e in events)


def test_a_retried_create_returns_the_first_and_a_duplicate_names_the_existing_one(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    offer = "offers/gli-beweegfit-dietist-groep"
    first = _refer(stub, tokens, "p-0002", offer, request_id="api-dup-1")
    again = _refer(stub, tokens, "p-0002", offer, request_id="api-dup-1")
    assert again.name == first.name
    fail = _fails(lambda: _refer(stub, tokens, "p-0002", offer, request_id="api-dup-2"))
    assert fail.code == grpc.StatusCode.ALREADY_EXISTS
    assert fail.reason == "DUPLICATE_OPEN_REFERRAL"
    assert first.name in fail.message


def test_a_full_offer_puts_the_accepted_referral_on_its_waitlist(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    referral = _refer(stub, tokens, "p-0002", "offers/gm-eindhoven-beweegmaatje-vol")
    accepted = _move(stub, tokens, referral.name, pb.REFERRAL_STATUS_ACCEPTED, user="coach.visser")
    assert accepted.enrolment == pb.ENROLMENT_NOT_ENROLLED_ON_WAITLIST
    assert accepted.waitlist_position == 16


@pytest.mark.parametrize(
    ("status", "user", "code", "reason"),
    [
        (
            pb.REFERRAL_STATUS_ACCEPTED,
            "dr.jansen",
            "PERMISSION_DENIED",
            "TRANSITION_NOT_ALLOWED_FOR_PARTY",
        ),
        (
            pb.REFERRAL_STATUS_COMPLETED,
            "coach.degroot",
            "FAILED_PRECONDITION",
            "INVALID_TRANSITION",
        ),
        (pb.REFERRAL_STATUS_REJECTED, "coach.degroot", "INVALID_ARGUMENT", "REASON_REQUIRED"),
    ],
)
def test_refused_transitions_say_why(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    status: pb.ReferralStatus.ValueType,
    user: str,
    code: str,
    reason: str,
) -> None:
    referral = _refer(stub, tokens, "p-0001", "offers/gli-beweegfit-stoppen-met-roken")
    try:
        fail = _fails(lambda: _move(stub, tokens, referral.name, status, user=user))
        assert (fail.code.name, fail.reason) == (code, reason)
    finally:
        _move(
            stub,
            tokens,
            referral.name,
            pb.REFERRAL_STATUS_CANCELLED,
            user="dr.jansen",
            reason="test clean-up",
        )


def test_bad_input_gives_invalid_argument_or_not_found_with_a_field_violation(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    gp = _as(tokens, "dr.jansen")
    unknown = _fails(lambda: _refer(stub, tokens, "p-0001", "offers/no-such-offer"))
    assert (unknown.code, unknown.reason, unknown.field_violations) == (
        grpc.StatusCode.NOT_FOUND,
        "OFFER_NOT_FOUND",
        ("referral.offer",),
    )

    bad_postcode = pb.PatientProfile(postcode="56AB")
    postcode = _fails(
        lambda: stub.FindOffers(
            rpc.FindOffersRequest(profile=bad_postcode), metadata=gp, timeout=10
        )
    )
    assert (postcode.code, postcode.field_violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ("profile.postcode",),
    )
    referral_postcode = _fails(
        lambda: stub.CreateReferral(
            rpc.CreateReferralRequest(
                parent="patients/p-0001",
                referral=pb.Referral(offer=GLI, reason="x", profile=bad_postcode),
            ),
            metadata=gp,
            timeout=10,
        )
    )
    assert referral_postcode.field_violations == ("referral.profile.postcode",)

    # A page_size above the maximum is capped (AIP-158), not refused; a negative one is.
    capped = stub.FindOffers(
        rpc.FindOffersRequest(profile=PROFILE, page_size=10_000), metadata=gp, timeout=10
    )
    assert 0 < len(capped.matches) <= 100
    page = _fails(
        lambda: stub.FindOffers(
            rpc.FindOffersRequest(profile=PROFILE, page_size=-1), metadata=gp, timeout=10
        )
    )
    assert (page.code, page.reason, page.field_violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_SIZE",
        ("page_size",),
    )

    rule = pb.EligibilityRule(
        all=pb.RuleList(
            rules=[
                pb.EligibilityRule(
                    predicate=pb.Predicate(
                        field=pb.PROFILE_FIELD_BMI, operator=pb.OPERATOR_ANY_OF, values=["30"]
                    )
                ),
            ]
        )
    )
    syntax = _fails(
        lambda: stub.CreateOffer(
            rpc.CreateOfferRequest(
                offer=pb.Offer(
                    display_name="Bad rule", category=pb.OFFER_CATEGORY_GLI, eligibility=rule
                )
            ),
            metadata=_as(tokens, "coach.degroot"),
            timeout=10,
        )
    )
    assert syntax.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "offer.eligibility.all[0].predicate.operator" in syntax.field_violations

    name = _fails(
        lambda: stub.GetReferral(
            rpc.GetReferralRequest(name="referrals/x"), metadata=gp, timeout=10
        )
    )
    assert (name.code, name.field_violations) == (grpc.StatusCode.INVALID_ARGUMENT, ("name",))


def test_offers_are_written_by_their_owner_and_listed_by_the_care_group(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    owner = _as(tokens, "ambtenaar.mulder")
    offer = stub.CreateOffer(
        rpc.CreateOfferRequest(
            offer=pb.Offer(
                display_name="Valpreventie",
                category=pb.OFFER_CATEGORY_PHYSICAL_ACTIVITY,
                service_area=pb.ServiceArea(municipality_codes=["GM0772"]),
            )
        ),
        metadata=owner,
        timeout=10,
    )
    assert offer.state == pb.OFFER_STATE_DRAFT
    assert offer.owner_organisation == "organisations/gm-eindhoven"
    other = _fails(
        lambda: stub.UpdateOffer(
            rpc.UpdateOfferRequest(
                offer=pb.Offer(name=offer.name, description="hijack"),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
            metadata=_as(tokens, "coach.degroot"),
            timeout=10,
        )
    )
    assert (other.code, other.reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OFFER_OWNER")
    stale = _fails(
        lambda: stub.UpdateOffer(
            rpc.UpdateOfferRequest(
                offer=pb.Offer(name=offer.name, description="x", etag='W/"99"'),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
            metadata=owner,
            timeout=10,
        )
    )
    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    stub.ProposeOffer(rpc.ProposeOfferRequest(name=offer.name), metadata=owner, timeout=10)
    not_admin = _fails(
        lambda: stub.PublishOffer(
            rpc.PublishOfferRequest(name=offer.name), metadata=owner, timeout=10
        )
    )
    assert not_admin.reason == "NOT_CURATOR"
    listed = stub.PublishOffer(
        rpc.PublishOfferRequest(name=offer.name), metadata=_as(tokens, "admin.zuidoost"), timeout=10
    )
    assert listed.state == pb.OFFER_STATE_LISTED
    noord = _fails(
        lambda: stub.GetOffer(
            rpc.GetOfferRequest(name=offer.name), metadata=_as(tokens, "dr.noord"), timeout=10
        )
    )
    assert noord.code == grpc.StatusCode.NOT_FOUND


def test_evaluating_a_rule_explains_every_predicate(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    result = stub.EvaluateEligibility(
        rpc.EvaluateEligibilityRequest(offer=GLI, profile=pb.PatientProfile(age=40, bmi=27.0)),
        metadata=_as(tokens, "dr.jansen"),
        timeout=10,
    )
    assert not result.eligible
    assert [o.satisfied for o in result.outcomes] == [True, False, True, False, True]
    assert result.outcomes[3].path == "eligibility.all[1].any[1].all[1].predicate"


def test_the_providers_inbox_and_the_patients_own_list(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    walk = _refer(stub, tokens, "p-0002", "offers/gm-eindhoven-wandelgroep", request_id="inbox-1")

    def names(user: str, parent: str) -> set[str]:
        reply = stub.ListReferrals(
            rpc.ListReferralsRequest(parent=parent, page_size=200),
            metadata=_as(tokens, user),
            timeout=10,
        )
        return {r.name for r in reply.referrals}

    inbox = names("coach.visser", "patients/-")
    assert walk.name in inbox
    assert all(name.startswith("patients/") for name in inbox)
    assert walk.name not in names("coach.degroot", "patients/-")
    before = referral_server.access_log_count()
    assert walk.name in names("pat.yilmaz", "patients/p-0002")
    assert referral_server.access_log_count() - before == 1
    assert walk.name not in names("pat.dewit", "patients/p-0001")
    denied = _fails(lambda: names("pat.dewit", "patients/p-0002"))
    assert (denied.code, denied.reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWN_DATA")
