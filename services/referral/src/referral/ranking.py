"""How FindOffers ranks an offer for a patient's profile: the documented score with its
reasons, and the precomputed entry per listed offer that ranks a whole menu quickly."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from referral import eligibility
from referral.models import (
    CapacityStatus,
    Funding,
    Offer,
    RecognitionLevel,
)

CAPACITY_SCORE = {
    CapacityStatus.CAPACITY: 30,
    CapacityStatus.ADDITIONAL_ASSESSMENT: 15,
    CapacityStatus.WAITLIST: 10,
    CapacityStatus.NO_CAPACITY: 0,
}


RECOGNITION_SCORE = {
    RecognitionLevel.EFFECTIVE_STRONG: 15,
    RecognitionLevel.EFFECTIVE_GOOD: 15,
    RecognitionLevel.EFFECTIVE_FIRST: 15,
    RecognitionLevel.WELL_FOUNDED: 10,
    RecognitionLevel.WELL_DESCRIBED: 5,
}


def in_area(offer: Offer, profile: eligibility.Profile) -> tuple[bool, str]:
    """Whether the patient lives where the offer is given, and how specific the match is."""
    area = offer.service_area or {}
    codes = area.get("municipality_codes") or []
    ranges = area.get("postcode_ranges") or []
    if not codes and not ranges:
        return True, "region"
    if profile.postcode and any(
        eligibility.postcode_in(profile.postcode, f"{r['first']}-{r['last']}") for r in ranges
    ):
        return True, "postcode"
    if profile.municipality and profile.municipality in codes:
        return True, "municipality"
    return False, ""


def score(
    offer: Offer,
    profile: eligibility.Profile,
    eligible: bool,
    area_match: str,
    now: dt.datetime,
) -> tuple[float, list[str]]:
    """The documented, deterministic score of an offer for a profile (README, "Matching")."""
    total = 0.0
    reasons: list[str] = []
    if eligible:
        total += 100
        reasons.append("eligible +100")
    wanted = {c.casefold() for c in profile.conditions}
    hits = sorted(c for c in offer.target_conditions if c.casefold() in wanted)
    if hits:
        points = min(3, len(hits)) * 20
        total += points
        reasons.append(f"targets {', '.join(hits)} +{points}")
    capacity = offer.effective_capacity()
    if CAPACITY_SCORE[capacity]:
        total += CAPACITY_SCORE[capacity]
        reasons.append(f"capacity {capacity.value} +{CAPACITY_SCORE[capacity]}")
    if offer.recognition_level and not offer.recognition_expired(now):
        points = RECOGNITION_SCORE[RecognitionLevel(offer.recognition_level)]
        total += points
        reasons.append(f"recognised {offer.recognition_level} +{points}")
    if not offer.languages or set(offer.languages) & set(profile.languages):
        total += 10
        reasons.append("language +10")
    if offer.fundings & {Funding.BASIC_INSURANCE.value, Funding.MUNICIPALITY.value}:
        total += 10
        reasons.append("no cost to the patient +10")
    if area_match == "postcode":
        total += 5
        reasons.append("local (postcode) +5")
    return total, reasons


@dataclass(frozen=True)
class MenuEntry:
    """A listed offer with what ranking needs precomputed (built once per menu load)."""

    offer: Offer
    category: str
    fundings: frozenset[str]
    codes: frozenset[str]
    ranges: tuple[tuple[int, int], ...]
    targets: frozenset[str]
    languages: frozenset[str]
    points: float  # capacity + cost; the profile-independent part of the score
    recognition_points: float
    recognition_until: dt.datetime | None
    rule: dict[str, Any]
    # The rule as canonical JSON: offers that share a rule (every GLI) are checked once.
    rule_key: str

    @classmethod
    def of(cls, offer: Offer) -> MenuEntry:
        area = offer.service_area or {}
        free = offer.fundings & {Funding.BASIC_INSURANCE.value, Funding.MUNICIPALITY.value}
        level = offer.recognition_level
        return cls(
            offer=offer,
            category=offer.category,
            fundings=frozenset(offer.fundings),
            codes=frozenset(area.get("municipality_codes") or []),
            ranges=tuple(
                (int(r["first"]), int(r["last"])) for r in area.get("postcode_ranges") or []
            ),
            targets=frozenset(c.casefold() for c in offer.target_conditions),
            languages=frozenset(offer.languages),
            points=CAPACITY_SCORE[offer.effective_capacity()] + (10 if free else 0),
            recognition_points=RECOGNITION_SCORE[RecognitionLevel(level)] if level else 0,
            recognition_until=offer.recognition_valid_until,
            rule=offer.eligibility,
            rule_key=json.dumps(offer.eligibility, sort_keys=True),
        )

    def area(self, postcode: int, municipality: str) -> str:
        """As :func:`in_area`: "region", "postcode", "municipality" or "" (outside)."""
        if not self.codes and not self.ranges:
            return "region"
        if postcode and any(first <= postcode <= last for first, last in self.ranges):
            return "postcode"
        if municipality and municipality in self.codes:
            return "municipality"
        return ""

    def score(
        self,
        wanted: frozenset[str],
        languages: frozenset[str],
        eligible: bool,
        area: str,
        now: dt.datetime,
    ) -> float:
        """The number :func:`score` computes, without its reasons."""
        total = self.points + (100 if eligible else 0)
        total += min(3, len(self.targets & wanted)) * 20
        if self.recognition_points and (
            self.recognition_until is None or self.recognition_until > now
        ):
            total += self.recognition_points
        if not self.languages or self.languages & languages:
            total += 10
        return total + (5 if area == "postcode" else 0)
