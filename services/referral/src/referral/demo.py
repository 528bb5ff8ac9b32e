"""The demo menu card of the demo region (care group cg-zuidoost), used by ``make run``,
``referral seed-demo`` and the tests. Owners are the demo organisations gm-eindhoven
(municipality) and gli-beweegfit (lifestyle provider); the care group's admin lists them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from referral import eligibility
from referral.deps import Deps
from referral.models import CapacityStatus, OfferCategory, OfferState, RecognitionLevel
from referral.unit_of_work import UnitOfWork
from referral.use_cases import curation, offers, referrals
from servicekit.auth import Principal
from servicekit.idempotency import IdempotentRequest
from servicekit.identity_client import AccessDecision, AccessQuestion, BatchAccessQuestion
from servicekit.principals import care_group_admin, principal

CARE_GROUP = "cg-zuidoost"
EINDHOVEN = "GM0772"
EINDHOVEN_POSTCODES = [{"first": "5600", "last": "5658"}]


def _owner(org: str, role: str, subject: str = "") -> Principal:
    return principal(
        subject or f"seed-{org}",
        client_id="referral-seed",
        roles=[role],
        organisation=org,
        care_group=CARE_GROUP,
    )


ADMIN = care_group_admin(CARE_GROUP, f"seed-{CARE_GROUP}", client_id="referral-seed")
VALID_UNTIL = dt.datetime(2030, 6, 30, tzinfo=dt.UTC)


def _weekly(day: str, opens: str, closes: str) -> dict[str, Any]:
    return {"freq": "WEEKLY", "interval": 1, "byday": [day], "opens_at": opens, "closes_at": closes}


OFFERS: list[tuple[str, Principal, offers.OfferInput]] = [
    (
        "gli-beweegfit-cool",
        _owner("gli-beweegfit", "provider"),
        offers.OfferInput(
            display_name="GLI CooL (Coaching op Leefstijl)",
            description="Two-year combined lifestyle intervention: 12 months treatment, "
            "12 months maintenance, with progress feedback to the referrer.",
            category=OfferCategory.GLI,
            target_conditions=["T82", "T90", "K86"],
            service_area={
                "municipality_codes": [EINDHOVEN],
                "postcode_ranges": EINDHOVEN_POSTCODES,
            },
            schedules=[_weekly("TU", "18:30", "20:00")],
            languages=["nl", "en"],
            application_process="On referral by a GP or medical specialist; intake by phone.",
            contact={"name": "BeweegFit", "email": "intake@beweegfit.example.org"},
            cost_options=[
                {
                    "funding": "basic-insurance",
                    "amount_cents": 0,
                    "currency": "EUR",
                    "description": "Basic insurance; the exercise itself is not covered.",
                }
            ],
            recognition_level=RecognitionLevel.EFFECTIVE_GOOD,
            recognition_valid_until=VALID_UNTIL,
            capacity_status=CapacityStatus.CAPACITY,
            total_places=12,
            eligibility=eligibility.GLI_RULE,
            eligibility_description="BMI >= 30, or BMI >= 25 with a risk factor; adults; "
            "on referral by a GP or specialist.",
        ),
    ),
    (
        "gm-eindhoven-wandelgroep",
        _owner("gm-eindhoven", "sport-coach"),
        offers.OfferInput(
            display_name="Wandelgroep Woensel (buurtsportcoach)",
            description="Weekly walking group led by a municipal sport coach.",
            category=OfferCategory.PHYSICAL_ACTIVITY,
            target_conditions=["T90", "K86", "P76"],
            service_area={"municipality_codes": [EINDHOVEN]},
            schedules=[_weekly("WE", "10:00", "11:00")],
            languages=["nl", "tr", "ar"],
            application_process="Just come along, or let the sport coach call you.",
            contact={"name": "Buurtsportcoach Woensel", "phone": "040-0000000"},
            cost_options=[{"funding": "municipality", "amount_cents": 0, "currency": "EUR"}],
            capacity_status=CapacityStatus.CAPACITY,
            eligibility={"field": "age", "op": "ge", "number": 18.0},
        ),
    ),
    (
        "gli-beweegfit-dietist-groep",
        _owner("gli-beweegfit", "provider"),
        offers.OfferInput(
            display_name="Dietitian group course 'Eet je fit'",
            description="Six group sessions with a dietitian on healthy eating with diabetes.",
            category=OfferCategory.NUTRITION,
            target_conditions=["T90", "T82"],
            service_area={
                "municipality_codes": [EINDHOVEN],
                "postcode_ranges": EINDHOVEN_POSTCODES,
            },
            schedules=[_weekly("TH", "14:00", "15:30")],
            languages=["nl"],
            application_process="On referral; the dietitian calls within two weeks.",
            cost_options=[
                {
                    "funding": "basic-insurance",
                    "amount_cents": 0,
                    "currency": "EUR",
                    "description": "3 hours of dietetics a year from basic insurance",
                },
                {"funding": "supplementary-insurance", "amount_cents": 0, "currency": "EUR"},
            ],
            recognition_level=RecognitionLevel.WELL_FOUNDED,
            recognition_valid_until=VALID_UNTIL,
            capacity_status=CapacityStatus.CAPACITY,
            total_places=10,
            eligibility={"field": "conditions", "op": "any-of", "values": ["T90", "T82", "T93"]},
        ),
    ),
    (
        "gli-beweegfit-stoppen-met-roken",
        _owner("gli-beweegfit", "provider"),
        offers.OfferInput(
            display_name="Smoking-cessation group course",
            description="Seven sessions with a certified coach, with nicotine replacement advice.",
            category=OfferCategory.SMOKING_CESSATION,
            target_conditions=["P17", "R95"],
            service_area={"municipality_codes": [EINDHOVEN]},
            schedules=[_weekly("MO", "19:00", "20:30")],
            languages=["nl", "en"],
            application_process="On referral or self-registration.",
            cost_options=[{"funding": "basic-insurance", "amount_cents": 0, "currency": "EUR"}],
            recognition_level=RecognitionLevel.EFFECTIVE_FIRST,
            recognition_valid_until=VALID_UNTIL,
            capacity_status=CapacityStatus.CAPACITY,
            total_places=14,
            eligibility={
                "all": [
                    {"field": "age", "op": "ge", "number": 16.0},
                    {"field": "risk-factors", "op": "any-of", "values": ["smoking"]},
                ]
            },
        ),
    ),
    (
        "gm-eindhoven-beweegmaatje-vol",
        _owner("gm-eindhoven", "municipality-officer"),
        offers.OfferInput(
            display_name="Beweegmaatje: exercise buddy programme",
            description="A volunteer buddy to exercise with for 12 weeks. Currently full.",
            category=OfferCategory.SOCIAL_AND_WELFARE,
            target_conditions=["P76", "T90"],
            service_area={"municipality_codes": [EINDHOVEN]},
            languages=["nl"],
            application_process="On referral; you are placed on the waitlist.",
            cost_options=[{"funding": "municipality", "amount_cents": 0, "currency": "EUR"}],
            capacity_status=CapacityStatus.WAITLIST,
            total_places=0,
            waitlist_length=15,
            capacity_notes="about 15 on waitlist; 4-6 weeks",
            eligibility={"field": "pam-level", "op": "le", "number": 2.0},
        ),
    ),
]


class _SeedIdentity:
    """The operator's seed command writes the demo region's one referral without asking
    identity (identity may not even run yet); nothing else ever uses this."""

    def authorize(self, question: AccessQuestion) -> AccessDecision:
        return AccessDecision(True, "DEMO_SEED")

    def authorize_many(self, question: BatchAccessQuestion) -> dict[str, AccessDecision]:
        return {p: AccessDecision(True, "DEMO_SEED") for p in question.patient_ids}


GP = _owner("gp-de-linde", "gp", subject="seed-dr-jansen")
DEMO_REFERRAL = referrals.ReferralInput(
    offer_id="offers/gli-beweegfit-cool",
    reason="DM2 with BMI 31; wants to lose weight and move more (agreed in the care plan).",
    profile=eligibility.Profile(
        conditions=("T90",),
        age=58,
        bmi=31.5,
        risk_factors=("dm2-risk",),
        pam_level=2,
        postcode="5612",
        municipality=EINDHOVEN,
        languages=("nl",),
        referrer_role="gp",
    ),
)


def _fingerprint(*request: object) -> str:
    """The seed's own request fingerprint (it has no proto request): its inputs' repr."""
    return hashlib.sha256(repr(request).encode()).hexdigest()


def seed(sessions: sessionmaker[Session]) -> None:
    """Creates and lists the demo offers; running it again changes nothing."""
    deps = Deps(uow=lambda: UnitOfWork(sessions), identity=_SeedIdentity())
    for offer_id, owner, data in OFFERS:
        with deps.uow() as uow:
            existing = uow.repo.offer(offer_id)
        offer = existing or offers.create_offer(
            deps,
            owner,
            data,
            offer_id,
            IdempotentRequest.of(
                owner, f"seed-{offer_id}", "CreateOffer", _fingerprint(offer_id, data)
            ),
        )
        if offer.state == OfferState.DRAFT.value:
            offer = curation.transition_offer(deps, owner, offer_id, "propose")
        if offer.state == OfferState.PROPOSED.value:
            curation.transition_offer(deps, ADMIN, offer_id, "publish")


def seed_referral(sessions: sessionmaker[Session]) -> str:
    """Refers p-0001 to the GLI (the referral the demo care plan links to); running it again
    changes nothing. Returns the referral's name."""
    deps = Deps(uow=lambda: UnitOfWork(sessions), identity=_SeedIdentity())
    request_id = "seed-referral-p-0001-gli"
    with deps.uow() as uow:
        record = uow.repo.request_record(GP.subject, request_id)
    if record is not None:
        # Seeded before (possibly before request records had fingerprints).
        return str(record.resource_name)
    view = referrals.create_referral(
        deps,
        GP,
        "p-0001",
        DEMO_REFERRAL,
        IdempotentRequest.of(
            GP, request_id, "CreateReferral", _fingerprint("p-0001", DEMO_REFERRAL)
        ),
    )
    return f"patients/{view.referral.patient_id}/referrals/{view.referral.id}"
