"""Eligibility and matching: an anonymous profile against one rule, or ranked against the
care group's menu card (FindOffers). Not patient data: no ``Authorize``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from referral import eligibility
from referral.access import care_group_id
from referral.deps import Deps
from referral.errors import Violations
from referral.models import (
    CapacityStatus,
    Funding,
    Offer,
    OfferCategory,
)
from referral.ranking import in_area, score
from referral.use_cases.offers import get_offer
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument
from servicekit.paging import OFFSET, Page, PageRequest, PositionKind

MAX_FIND_PAGE = 100
FIND_PAGE = 20
FIRST_PAGE = PageRequest(FIND_PAGE)
MAX_OFFSET = 10_000_000


def valid_offset(position: dict[str, Any]) -> bool:
    """A FindOffers position this list could have made (its token is refused otherwise)."""
    return bool(0 <= position["offset"] <= MAX_OFFSET)


# FindOffers ranks every offer and pages by offset into the ranking.
POSITION = PositionKind(OFFSET, valid_offset)


def validate_profile(profile: eligibility.Profile, path: str = "profile") -> None:
    v = Violations()
    if profile.postcode and not eligibility.POSTCODE.fullmatch(profile.postcode):
        v.add(f"{path}.postcode", "must be 4 digits", "INVALID_POSTCODE")
    if profile.municipality and not eligibility.MUNICIPALITY.fullmatch(profile.municipality):
        v.add(
            f"{path}.municipality_code",
            "must be GM followed by 4 digits",
            "INVALID_MUNICIPALITY_CODE",
        )
    if profile.age is not None and not 0 <= profile.age <= 130:
        v.add(f"{path}.age", "must be between 0 and 130", "INVALID_AGE")
    if profile.bmi is not None and (not math.isfinite(profile.bmi) or not 5 <= profile.bmi <= 100):
        v.add(f"{path}.bmi", "must be between 5 and 100", "INVALID_BMI")
    if profile.pam_level is not None and not 1 <= profile.pam_level <= 4:
        v.add(f"{path}.pam_level", "must be 1 to 4", "INVALID_PAM_LEVEL")
    for i, lang in enumerate(profile.languages):
        if not eligibility.LANGUAGE.fullmatch(lang):
            v.add(f"{path}.languages[{i}]", "must be an ISO 639 code", "INVALID_LANGUAGE")
    for name, codes in (("conditions", profile.conditions), ("risk_factors", profile.risk_factors)):
        for i, code in enumerate(codes):
            if not eligibility.CODE.fullmatch(code):
                v.add(f"{path}.{name}[{i}]", "not a code", "INVALID_CODE")
    v.raise_if_any()


def role_of_referrer(principal: Principal, requested: str) -> str:
    if requested:
        if requested not in eligibility.REFERRER_ROLES:
            raise InvalidArgument.single(
                "referrer_role", "must be gp, practice-nurse or specialist", "INVALID_REFERRER_ROLE"
            )
        return requested
    for role in ("gp", "specialist", "practice-nurse"):
        if role in principal.roles:
            return role
    return ""


def evaluate_eligibility(
    deps: Deps,
    principal: Principal,
    *,
    offer_id: str,
    rule: dict[str, Any] | None,
    profile: eligibility.Profile,
    referrer_role: str = "",
) -> eligibility.Result:
    validate_profile(profile)
    role = role_of_referrer(principal, referrer_role)
    if offer_id:
        offer = get_offer(deps, principal, offer_id)
        rule = offer.eligibility
    else:
        eligibility.validate(rule, "rule")
    return eligibility.evaluate(rule, with_role(profile, role))


def with_role(profile: eligibility.Profile, role: str) -> eligibility.Profile:
    return eligibility.Profile(**{**profile.__dict__, "referrer_role": role})


@dataclass(frozen=True)
class Match:
    offer: Offer
    score: float
    eligibility: eligibility.Result
    capacity: CapacityStatus
    no_capacity: bool
    reasons: tuple[str, ...]


def find_offers(
    deps: Deps,
    principal: Principal,
    profile: eligibility.Profile,
    *,
    categories: Sequence[OfferCategory] = (),
    fundings: Sequence[Funding] = (),
    eligible_only: bool = False,
    page: PageRequest = FIRST_PAGE,
    referrer_role: str = "",
) -> Page[Match]:
    """Listed offers for the patient's area, ranked by :func:`score` (highest first, then
    display name, then id). PostgreSQL picks the offers in the area and categories; the
    menu card, compiled once per version, ranks them; the eligibility explanation and the
    score's reasons are built for the returned page only."""
    validate_profile(profile)
    if not profile.postcode and not profile.municipality:
        raise InvalidArgument.single(
            "profile.postcode", "a postcode or municipality code is required", "AREA_REQUIRED"
        )
    role = role_of_referrer(principal, referrer_role)
    evaluated = with_role(profile, role)
    now = deps.clock()
    with deps.uow() as uow:
        menu, candidates = uow.repo.menu_in_area(
            care_group_id(principal),
            postcode=profile.postcode,
            municipality=profile.municipality,
            categories=sorted({c.value for c in categories}),
            now=now,
        )
    ranked = menu.rank(
        candidates,
        evaluated,
        fundings=frozenset(f.value for f in fundings),
        eligible_only=eligible_only,
        offset=page.offset,
        size=page.size,
    )
    matches: list[Match] = []
    for entry in ranked.entries:
        offer = entry.offer
        result = eligibility.evaluate(offer.eligibility, evaluated)
        points, reasons = score(offer, profile, result.eligible, in_area(offer, profile)[1], now)
        capacity = offer.effective_capacity()
        matches.append(
            Match(
                offer,
                points,
                result,
                capacity,
                capacity is CapacityStatus.NO_CAPACITY,
                tuple(reasons),
            )
        )
    end = page.offset + page.size
    return Page(matches, {"offset": end} if end < ranked.total else None)
