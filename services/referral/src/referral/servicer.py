"""gRPC adapter of the referral service: proto in (referral.convert), use case, proto out.
No try/except: domain errors are mapped by the error interceptor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from referral.convert import (
    BUSINESS,
    CAPACITIES,
    CATEGORIES,
    FUNDINGS,
    STATES,
    STATUSES,
    event_to_proto,
    offer_input,
    offer_to_proto,
    outcome_input,
    profile_from_proto,
    referral_to_proto,
    result_to_proto,
    rule_from_proto,
)
from referral.deps import Deps
from referral.use_cases import curation, events, matching, offers, referrals, transitions
from referral.use_cases.referrals import ReferralInput
from servicekit import enums, names
from servicekit.auth import current_principal
from servicekit.errors import InvalidArgument
from servicekit.idempotency import IdempotentRequest
from servicekit.paging import AFTER_ID, Paging, PositionKind
from servicekit.service_server import Servicer


def _idempotent(
    request: rpc.CreateOfferRequest | rpc.CreateReferralRequest, method: str
) -> IdempotentRequest | None:
    """The create's request_id and fingerprint (servicekit.idempotency); None without one."""
    if not request.request_id:
        return None
    return IdempotentRequest.from_message(current_principal(), request, method)


# The largest page of ListOffers and ListReferrals (a larger page_size is capped, AIP-158);
# FindOffers' is matching.MAX_FIND_PAGE.
MAX_LIST = 200


def _valid_id(position: dict[str, Any]) -> bool:
    """An id this service could have put in a page token (ids are 1 to 63 characters)."""
    return 0 < len(position["after"]) <= 63


# ListOffers' position: the id of the last offer, one this service could have made.
OFFER_POSITION = PositionKind(AFTER_ID, _valid_id)


def _referral_ids(name: str) -> tuple[str, str]:
    patient_id, referral_id = names.parse(name, "patients", "referrals")
    return patient_id, referral_id


class ReferralServicer(Servicer[Deps], rpc_grpc.ReferralServiceServicer):
    # offers
    def CreateOffer(
        self, request: rpc.CreateOfferRequest, context: grpc.ServicerContext
    ) -> pb.Offer:
        offer = offers.create_offer(
            self.deps,
            current_principal(),
            offer_input(request.offer),
            request.offer_id,
            _idempotent(request, "CreateOffer"),
        )
        return offer_to_proto(offer, self.deps.clock())

    def GetOffer(self, request: rpc.GetOfferRequest, context: grpc.ServicerContext) -> pb.Offer:
        offer_id = names.parse_one(request.name, "offers")
        return offer_to_proto(
            offers.get_offer(self.deps, current_principal(), offer_id), self.deps.clock()
        )

    def ListOffers(
        self, request: rpc.ListOffersRequest, context: grpc.ServicerContext
    ) -> rpc.ListOffersResponse:
        owner = ""
        if request.owner_organisation:
            owner = names.parse_one(
                request.owner_organisation, "organisations", field="owner_organisation"
            )
        principal = current_principal()
        state = enums.from_proto(STATES, request.state, "state")
        paging = Paging(
            request,
            "offers",
            state,
            owner,
            principal.subject,
            maximum=MAX_LIST,
            position=OFFER_POSITION,
        )
        page = offers.list_offers(
            self.deps, principal, state=state, owner_org_id=owner, page=paging.page
        )
        now = self.deps.clock()
        return paging.reply(
            rpc.ListOffersResponse, "offers", page, lambda o: offer_to_proto(o, now)
        )

    def UpdateOffer(
        self, request: rpc.UpdateOfferRequest, context: grpc.ServicerContext
    ) -> pb.Offer:
        offer_id = names.parse_one(request.offer.name, "offers", field="offer.name")
        offer = offers.update_offer(
            self.deps,
            current_principal(),
            offer_id,
            offer_input(request.offer),
            list(request.update_mask.paths),
        )
        return offer_to_proto(offer, self.deps.clock())

    def _curate(self, name: str, verb: str, etag: str, reason: str = "") -> pb.Offer:
        offer_id = names.parse_one(name, "offers")
        offer = curation.transition_offer(
            self.deps, current_principal(), offer_id, verb, etag, reason
        )
        return offer_to_proto(offer, self.deps.clock())

    def ProposeOffer(
        self, request: rpc.ProposeOfferRequest, context: grpc.ServicerContext
    ) -> pb.Offer:
        return self._curate(request.name, "propose", request.etag)

    def PublishOffer(
        self, request: rpc.PublishOfferRequest, context: grpc.ServicerContext
    ) -> pb.Offer:
        return self._curate(request.name, "publish", request.etag)

    def RetireOffer(
        self, request: rpc.RetireOfferRequest, context: grpc.ServicerContext
    ) -> pb.Offer:
        return self._curate(request.name, "retire", request.etag, request.reason)

    # eligibility and matching
    def EvaluateEligibility(
        self, request: rpc.EvaluateEligibilityRequest, context: grpc.ServicerContext
    ) -> pb.EligibilityResult:
        offer_id = names.parse_one(request.offer, "offers", field="offer") if request.offer else ""
        if not offer_id and not request.HasField("rule"):
            raise InvalidArgument.single(
                "offer", "name an offer or give a rule", "OFFER_OR_RULE_REQUIRED"
            )
        result = matching.evaluate_eligibility(
            self.deps,
            current_principal(),
            offer_id=offer_id,
            rule=rule_from_proto(request.rule),
            profile=profile_from_proto(request.profile),
            referrer_role=request.referrer_role,
        )
        return result_to_proto(result)

    def FindOffers(
        self, request: rpc.FindOffersRequest, context: grpc.ServicerContext
    ) -> rpc.FindOffersResponse:
        principal = current_principal()
        profile = profile_from_proto(request.profile)
        categories = [enums.required(CATEGORIES, c, "categories") for c in request.categories]
        fundings = [enums.required(FUNDINGS, f, "fundings") for f in request.fundings]
        paging = Paging(
            request,
            "find",
            profile.as_dict(),
            sorted(c.value for c in categories),
            sorted(f.value for f in fundings),
            request.eligible_only,
            request.referrer_role,
            sorted(principal.roles),
            position=matching.POSITION,
            default=matching.FIND_PAGE,
            maximum=matching.MAX_FIND_PAGE,
        )
        page = matching.find_offers(
            self.deps,
            principal,
            profile,
            categories=categories,
            fundings=fundings,
            eligible_only=request.eligible_only,
            page=paging.page,
            referrer_role=request.referrer_role,
        )
        now = self.deps.clock()
        return rpc.FindOffersResponse(
            matches=[
                rpc.OfferMatch(
                    offer=offer_to_proto(m.offer, now),
                    score=m.score,
                    eligibility=result_to_proto(m.eligibility),
                    capacity_status=pb.CapacityStatus.ValueType(CAPACITIES.to_proto(m.capacity)),
                    no_capacity=m.no_capacity,
                    score_reasons=list(m.reasons),
                )
                for m in page.items
            ],
            next_page_token=paging.token(page),
        )

    # referrals
    def CreateReferral(
        self, request: rpc.CreateReferralRequest, context: grpc.ServicerContext
    ) -> pb.Referral:
        patient_id = names.parse_one(request.parent, "patients", field="parent")
        r = request.referral
        principal = current_principal()
        view = referrals.create_referral(
            self.deps,
            principal,
            patient_id,
            ReferralInput(
                offer_id=r.offer,
                reason=r.reason,
                profile=profile_from_proto(r.profile),
                draft=r.draft,
            ),
            _idempotent(request, "CreateReferral"),
        )
        return referral_to_proto(view)

    def GetReferral(
        self, request: rpc.GetReferralRequest, context: grpc.ServicerContext
    ) -> pb.Referral:
        patient_id, referral_id = _referral_ids(request.name)
        return referral_to_proto(
            referrals.get_referral(self.deps, current_principal(), patient_id, referral_id)
        )

    def ListReferrals(
        self, request: rpc.ListReferralsRequest, context: grpc.ServicerContext
    ) -> rpc.ListReferralsResponse:
        patient_id = names.parse_one(request.parent, "patients", field="parent")
        principal = current_principal()
        status = enums.from_proto(STATUSES, request.status, "status")
        paging = Paging(
            request,
            "referrals",
            patient_id,
            status,
            principal.subject,
            position=referrals.REFERRAL_POSITION,
            maximum=MAX_LIST,
        )
        page = referrals.list_referrals(
            self.deps, principal, patient_id, status=status, page=paging.page
        )
        return paging.reply(rpc.ListReferralsResponse, "referrals", page, referral_to_proto)

    def TransitionReferral(
        self, request: rpc.TransitionReferralRequest, context: grpc.ServicerContext
    ) -> pb.Referral:
        patient_id, referral_id = _referral_ids(request.name)
        view = transitions.transition_referral(
            self.deps,
            current_principal(),
            patient_id,
            referral_id,
            enums.from_proto(STATUSES, request.status, "status"),
            reason=request.reason,
            business_status=enums.from_proto(BUSINESS, request.business_status, "business_status"),
            outcome=outcome_input(request.outcome) if request.HasField("outcome") else None,
            etag=request.etag,
        )
        return referral_to_proto(view)

    def RecordReferralOutcome(
        self, request: rpc.RecordReferralOutcomeRequest, context: grpc.ServicerContext
    ) -> pb.Referral:
        patient_id, referral_id = _referral_ids(request.name)
        view = transitions.record_outcome(
            self.deps,
            current_principal(),
            patient_id,
            referral_id,
            outcome_input(request.outcome),
            request.etag,
        )
        return referral_to_proto(view)

    # events
    def WatchReferralEvents(
        self, request: rpc.WatchReferralEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ReferralEvent]:
        patient_id = (
            names.parse_one(request.patient, "patients", field="patient") if request.patient else ""
        )
        for event in events.watch_events(
            self.deps,
            current_principal(),
            after_cursor=request.after_cursor,
            patient_id=patient_id,
            follow=not request.no_follow,
            is_active=context.is_active,
        ):
            yield event_to_proto(event)
