"""How FindOffers ranks offers for a patient's profile: the documented score with its
reasons (for the page returned), and the menu card precomputed once per version that ranks
all the offers in the patient's area quickly (:class:`Menu`)."""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
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


# A rank key is one integer: the score's complement in the high part, the offer's place in
# the menu sorted by (display name, id) in the low part; the smallest key ranks first.
_PLACES = 1 << 24
_TOP_SCORE = 1000


@dataclass(frozen=True)
class RankGroup:
    """What a profile's part of the score depends on, shared by the offers that have it
    alike: the compiled rule, the target conditions, the languages and the postcode ranges."""

    index: int
    rule: Callable[[eligibility.Profile], bool]
    rule_key: str
    targets: frozenset[str]
    languages: frozenset[str]
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class MenuEntry:
    """A listed offer with what ranking needs precomputed (built once per menu version)."""

    offer: Offer
    place: int
    # The profile-independent part of the score: capacity, cost and recognition, as a key.
    key: int
    group: RankGroup
    fundings: frozenset[str]
    codes: frozenset[str]

    def in_area(self, postcode: int, municipality: str) -> bool:
        """As :func:`in_area` (what PostgreSQL's filter answers, for an in-memory menu)."""
        if not self.codes and not self.group.ranges:
            return True
        if postcode and any(first <= postcode <= last for first, last in self.group.ranges):
            return True
        return bool(municipality) and municipality in self.codes


@dataclass(frozen=True)
class Ranked:
    """The page of a ranking and how many offers it ranked."""

    entries: list[MenuEntry]
    total: int


@dataclass(frozen=True)
class Candidates:
    """The offers of a menu card in one area (and categories), by rank group, each group's
    rank keys in order; valid until the first of their recognitions ends."""

    groups: list[tuple[RankGroup, list[int]]]
    valid_until: dt.datetime | None


class Menu:
    """The listed offers of a care group, ready for ranking: every distinct rule compiled
    once, the offers that score alike for any profile grouped (:class:`RankGroup`), each
    offer's fixed points and its place among equal scores precomputed. A ranking computes
    the profile's points once per group, and only the returned page is explained."""

    def __init__(self, offers: Sequence[Offer]) -> None:
        ordered = sorted(offers, key=lambda o: (o.display_name, o.id))
        if len(ordered) >= _PLACES:
            raise ValueError("too many offers on one menu card")
        groups: dict[tuple[Any, ...], RankGroup] = {}
        rules: dict[str, Callable[[eligibility.Profile], bool]] = {}
        self.groups: list[RankGroup] = []
        self.entries: dict[str, MenuEntry] = {}
        self._by_place: list[MenuEntry] = []
        for place, offer in enumerate(ordered):
            area = offer.service_area or {}
            rule_key = json.dumps(offer.eligibility, sort_keys=True)
            if rule_key not in rules:
                rules[rule_key] = eligibility.compile_rule(offer.eligibility)
            signature = (
                rule_key,
                frozenset(c.casefold() for c in offer.target_conditions),
                frozenset(offer.languages),
                tuple((int(r["first"]), int(r["last"])) for r in area.get("postcode_ranges") or []),
            )
            group = groups.get(signature)
            if group is None:
                group = groups[signature] = RankGroup(len(self.groups), rules[rule_key], *signature)
                self.groups.append(group)
            free = offer.fundings & {Funding.BASIC_INSURANCE.value, Funding.MUNICIPALITY.value}
            level = offer.recognition_level
            fixed = (
                CAPACITY_SCORE[offer.effective_capacity()]
                + (10 if free else 0)
                + (RECOGNITION_SCORE[RecognitionLevel(level)] if level else 0)
            )
            entry = MenuEntry(
                offer=offer,
                place=place,
                key=(_TOP_SCORE - fixed) * _PLACES + place,
                group=group,
                fundings=frozenset(offer.fundings),
                codes=frozenset(area.get("municipality_codes") or []),
            )
            self.entries[offer.id] = entry
            self._by_place.append(entry)

    def candidates(self, offer_ids: Iterable[str]) -> Candidates:
        """The named offers of this menu card, grouped for :meth:`rank`."""
        by_group: dict[int, list[int]] = {}
        until: dt.datetime | None = None
        for offer_id in offer_ids:
            entry = self.entries.get(offer_id)
            if entry is None:
                continue  # listed after this menu card was read: on the next one
            by_group.setdefault(entry.group.index, []).append(entry.key)
            ends = entry.offer.recognition_valid_until
            if ends is not None and (until is None or ends < until):
                until = ends
        return Candidates(
            [(self.groups[g], sorted(keys)) for g, keys in sorted(by_group.items())], until
        )

    def rank(
        self,
        candidates: Candidates,
        profile: eligibility.Profile,
        *,
        fundings: frozenset[str] = frozenset(),
        eligible_only: bool = False,
        offset: int = 0,
        size: int = 20,
    ) -> Ranked:
        """The candidates that pass the funding filter (and, with ``eligible_only``, the
        rule), ranked by :func:`score` (highest first, then display name, then id): the page
        from ``offset``. ``profile`` carries the referrer's role. The profile's points are
        computed once per group; the groups' ordered keys are merged up to the page's end."""
        wanted = frozenset(c.casefold() for c in profile.conditions)
        languages = frozenset(profile.languages)
        postcode = int(profile.postcode) if profile.postcode else 0
        verdicts: dict[str, bool] = {}
        streams: list[Iterable[int]] = []
        total = 0
        for group, group_keys in candidates.groups:
            extra = self._points(
                group, profile, wanted, languages, postcode, verdicts, eligible_only
            )
            if extra is None:
                continue
            keys = group_keys
            if fundings:
                keys = [k for k in keys if self._by_place[k % _PLACES].fundings & fundings]
            total += len(keys)
            shift = extra * _PLACES
            streams.append([k - shift for k in keys] if len(keys) < 8 else _shifted(keys, shift))
        top = itertools.islice(heapq.merge(*streams), offset, offset + size)
        return Ranked([self._by_place[k % _PLACES] for k in top], total)

    @staticmethod
    def _points(
        group: RankGroup,
        profile: eligibility.Profile,
        wanted: frozenset[str],
        languages: frozenset[str],
        postcode: int,
        verdicts: dict[str, bool],
        eligible_only: bool,
    ) -> int | None:
        """The profile's points for the group's offers; None to leave them out."""
        eligible = verdicts.get(group.rule_key)
        if eligible is None:
            eligible = verdicts[group.rule_key] = group.rule(profile)
        if eligible_only and not eligible:
            return None
        total = 100 if eligible else 0
        total += min(3, len(group.targets & wanted)) * 20
        if not group.languages or group.languages & languages:
            total += 10
        if postcode and any(first <= postcode <= last for first, last in group.ranges):
            total += 5
        return total


def _shifted(keys: list[int], shift: int) -> Iterator[int]:
    for key in keys:
        yield key - shift
