"""The referral use cases, as plain functions over a unit of work.

Offers are catalogue data: no ``Authorize``, but writes are limited to the owning
organisation and curation to the care group's admin. Referrals are patient data: every
use case that reads or writes one makes exactly one call to identity's ``Authorize``
(which writes one access-log entry) once the request is well-formed, whatever the outcome.
Every change of a referral writes its history entry and its outbox event in the same
transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy.exc import IntegrityError

from referral import eligibility, errors, positions
from referral.access import (
    REFERRER_ROLES,
    TARGET_ROLES,
    ask_about,
    care_group_id,
    enforce,
    offer_refusal,
    only_a_target,
    org_id,
    party_of,
    patient_id_of,
    referrer_refusal,
)
from referral.clients import Action, IdentityClient
from referral.duplicates import refuse_duplicate
from referral.errors import Violations
from referral.models import (
    OUTCOME_STATES,
    REASON_REQUIRED,
    BusinessStatus,
    CapacityStatus,
    Enrolment,
    Funding,
    HistoryEntry,
    Offer,
    OfferCategory,
    OfferState,
    Party,
    RecognitionLevel,
    Referral,
    RequestRecord,
    Status,
    TransitionRefusal,
    check_transition,
)
from referral.unit_of_work import UnitOfWork
from servicekit import idempotency, names, paging
from servicekit.auth import Principal
from servicekit.delegation import Delegations
from servicekit.errors import Aborted, FieldViolation, InvalidArgument

OWNER_ROLES = frozenset({"municipality-officer", "sport-coach", "provider"})
CURATOR_ROLES = frozenset({"care-group-admin"})
MAX_FIND_PAGE = 100
MAX_TEXT = 4000
# Places and declared waitlist of an offer: the counters (32-bit columns) grow by one per
# referral taking a place or joining the waitlist, so they must start far below their limit.
MAX_PLACES = 100_000
FREQS = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
DAYS = frozenset({"MO", "TU", "WE", "TH", "FR", "SA", "SU"})
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Deps:
    uow: Callable[[], UnitOfWork]
    identity: IdentityClient
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    # Called right after a CreateReferral commits, before the reply (fault injection).
    after_create_commit: Callable[[], None] | None = None
    watch_poll_seconds: float = 0.2
    watch_batch_size: int = 200
    sleep: Callable[[float], None] = time.sleep
    # The listed offers per care group, for FindOffers (MenuCache is defined below).
    menu: MenuCache = field(default_factory=lambda: MenuCache())  # noqa: PLW0108
    # Offers as CreateReferral last read them (see OfferCache).
    offers: OfferCache = field(default_factory=lambda: OfferCache())  # noqa: PLW0108
    # Resolves the person a delegate acts for before every call (servicekit.delegation,
    # wired into the server); None only where no call can name one (unit tests).
    delegations: Delegations | None = None


def _new_id() -> str:
    return uuid.uuid4().hex


# ================================================================== offers


@dataclass
class OfferInput:
    """The writable fields of an offer, already out of their wire format."""

    display_name: str = ""
    description: str = ""
    category: OfferCategory | None = None
    target_conditions: list[str] = field(default_factory=list)
    service_area: dict[str, Any] = field(default_factory=dict)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    application_process: str = ""
    contact: dict[str, Any] = field(default_factory=dict)
    cost_options: list[dict[str, Any]] = field(default_factory=list)
    recognition_level: RecognitionLevel | None = None
    recognition_valid_until: dt.datetime | None = None
    capacity_status: CapacityStatus | None = None
    total_places: int = 0
    waitlist_length: int = 0
    capacity_notes: str = ""
    eligibility: dict[str, Any] = field(default_factory=dict)
    eligibility_description: str = ""
    etag: str = ""


OFFER_FIELDS = {
    "display_name": ("display_name",),
    "description": ("description",),
    "category": ("category",),
    "target_conditions": ("target_conditions",),
    "service_area": ("service_area",),
    "schedules": ("schedules",),
    "languages": ("languages",),
    "application_process": ("application_process",),
    "contact": ("contact",),
    "cost_options": ("cost_options",),
    "recognition": ("recognition_level", "recognition_valid_until"),
    "capacity": ("capacity_status", "total_places", "waitlist_length", "capacity_notes"),
    "eligibility": ("eligibility",),
    "eligibility_description": ("eligibility_description",),
}


def _check_text(v: Violations, path: str, value: str, limit: int = MAX_TEXT) -> None:
    if len(value) > limit:
        v.add(path, f"at most {limit} characters", "TEXT_TOO_LONG")


def validate_offer(data: OfferInput, fields: set[str]) -> None:  # noqa: PLR0912, PLR0915
    v = Violations()
    if "display_name" in fields:
        if not data.display_name.strip():
            v.add("offer.display_name", "is required", "DISPLAY_NAME_REQUIRED")
        _check_text(v, "offer.display_name", data.display_name, 200)
    if "description" in fields:
        _check_text(v, "offer.description", data.description)
    if "category" in fields and data.category is None:
        v.add("offer.category", "is required", "CATEGORY_REQUIRED")
    if "target_conditions" in fields:
        for i, code in enumerate(data.target_conditions):
            if not eligibility.CODE.fullmatch(code):
                v.add(f"offer.target_conditions[{i}]", "not a condition code", "INVALID_CODE")
    if "service_area" in fields:
        for i, code in enumerate(data.service_area.get("municipality_codes", [])):
            if not eligibility.MUNICIPALITY.fullmatch(code):
                v.add(
                    f"offer.service_area.municipality_codes[{i}]",
                    "must be GM followed by 4 digits",
                    "INVALID_MUNICIPALITY_CODE",
                )
        for i, rng in enumerate(data.service_area.get("postcode_ranges", [])):
            first, last = rng.get("first", ""), rng.get("last", "")
            if not (
                eligibility.POSTCODE.fullmatch(first)
                and eligibility.POSTCODE.fullmatch(last)
                and int(first) <= int(last)
            ):
                v.add(
                    f"offer.service_area.postcode_ranges[{i}]",
                    "must be two 4-digit postcodes, first <= last",
                    "INVALID_POSTCODE",
                )
    if "schedules" in fields:
        for i, s in enumerate(data.schedules):
            path = f"offer.schedules[{i}]"
            if s.get("freq") and s["freq"] not in FREQS:
                v.add(f"{path}.freq", "must be an RFC 5545 FREQ", "INVALID_SCHEDULE")
            if int(s.get("interval") or 0) < 0:
                v.add(f"{path}.interval", "must not be negative", "INVALID_SCHEDULE")
            for j, day in enumerate(s.get("byday", [])):
                if day not in DAYS:
                    v.add(f"{path}.byday[{j}]", "must be MO..SU", "INVALID_SCHEDULE")
            for key in ("opens_at", "closes_at"):
                if s.get(key) and not HHMM.fullmatch(s[key]):
                    v.add(f"{path}.{key}", "must be HH:MM", "INVALID_SCHEDULE")
    if "languages" in fields:
        for i, lang in enumerate(data.languages):
            if not eligibility.LANGUAGE.fullmatch(lang):
                v.add(f"offer.languages[{i}]", "must be an ISO 639 code", "INVALID_LANGUAGE")
    if "contact" in fields:
        email = data.contact.get("email", "")
        if email and not EMAIL.fullmatch(email):
            v.add("offer.contact.email", "not an e-mail address", "INVALID_EMAIL")
    if "cost_options" in fields:
        for i, c in enumerate(data.cost_options):
            path = f"offer.cost_options[{i}]"
            if c.get("funding") not in {f.value for f in Funding}:
                v.add(f"{path}.funding", "is required", "FUNDING_REQUIRED")
            if int(c.get("amount_cents") or 0) < 0:
                v.add(f"{path}.amount_cents", "must not be negative", "INVALID_AMOUNT")
            if c.get("currency") and not CURRENCY.fullmatch(c["currency"]):
                v.add(f"{path}.currency", "must be ISO 4217", "INVALID_CURRENCY")
    if (
        "recognition_level" in fields
        and data.recognition_level is not None
        and data.recognition_valid_until is None
    ):
        v.add(
            "offer.recognition.valid_until",
            "a recognition needs its validity date",
            "RECOGNITION_VALIDITY_REQUIRED",
        )
    if "total_places" in fields:
        for name, value in (
            ("total_places", data.total_places),
            ("waitlist_length", data.waitlist_length),
        ):
            if not 0 <= value <= MAX_PLACES:
                v.add(f"offer.capacity.{name}", f"must be 0 to {MAX_PLACES}", "INVALID_CAPACITY")
        _check_text(v, "offer.capacity.notes", data.capacity_notes, 1000)
    if "application_process" in fields:
        _check_text(v, "offer.application_process", data.application_process)
    if "eligibility" in fields:
        try:
            eligibility.validate(data.eligibility, "offer.eligibility")
        except InvalidArgument as exc:
            for fv in exc.violations:
                v.add(fv.field, fv.description, fv.reason)
    v.raise_if_any()


def _apply_offer(offer: Offer, data: OfferInput, fields: set[str]) -> None:
    for name in fields:
        value = getattr(data, name)
        if name in ("category", "recognition_level", "capacity_status"):
            value = value.value if value is not None else None
            if name == "category" and value is None:
                continue
        setattr(offer, name, value)


def _owned_offer(uow: UnitOfWork, principal: Principal, offer_id: str) -> Offer:
    offer = uow.repo.offer(offer_id, for_update=True)
    if offer is None or offer.care_group_id != care_group_id(principal):
        raise errors.OfferNotFound("offer not found")
    return offer


def _require_owner(principal: Principal, offer: Offer) -> None:
    if not principal.roles & OWNER_ROLES or org_id(principal) != offer.owner_org_id:
        raise errors.NotOfferOwner("only the owning organisation may change this offer")


def _check_etag(etag: str, current: str) -> None:
    if etag and etag != current:
        raise errors.EtagMismatch("the offer or referral has changed; read it again")


def _replayed(
    uow: UnitOfWork, principal: Principal, request_id: str, method: str, fingerprint: str
) -> str | None:
    """The name the first request with this id created, None for a new request; a reuse of
    the id for another method or another request is REQUEST_ID_REUSED."""
    if not request_id:
        return None
    idempotency.check(request_id)
    record = uow.repo.request_record(principal.subject, request_id)
    return idempotency.replayed(record, method, fingerprint)


def _remember(
    uow: UnitOfWork,
    principal: Principal,
    request_id: str,
    method: str,
    name: str,
    fingerprint: str,
) -> None:
    if request_id:
        uow.session.add(
            RequestRecord(
                subject=principal.subject,
                request_id=request_id,
                method=method,
                resource_name=name,
                fingerprint=fingerprint,
            )
        )


def create_offer(
    deps: Deps,
    principal: Principal,
    data: OfferInput,
    offer_id: str = "",
    request_id: str = "",
    *,
    fingerprint: str = "",
) -> Offer:
    """Creates a draft offer. ``fingerprint`` identifies the request (servicekit.idempotency):
    a repeat with the same request_id and fingerprint returns the first offer, another
    fingerprint is REQUEST_ID_REUSED."""
    if not principal.roles & OWNER_ROLES or not principal.organisation:
        raise errors.RoleNotPermitted("only a municipality or provider creates offers")
    if fingerprint:
        fingerprint = idempotency.for_person(fingerprint, principal.on_behalf_of)
    if offer_id and not names.valid_id(offer_id):
        raise InvalidArgument.single("offer_id", "must match [a-z0-9-]{2,63}", "INVALID_OFFER_ID")
    validate_offer(data, {n for names_ in OFFER_FIELDS.values() for n in names_})
    try:
        return _insert_offer(deps, principal, data, offer_id, request_id, fingerprint)
    except IntegrityError as exc:
        # A concurrent create took the request_id or the offer id between the checks and
        # the commit: answer as the checks would have.
        with deps.uow() as uow:
            replay = _replayed(uow, principal, request_id, "CreateOffer", fingerprint)
            existing = uow.repo.offer(replay.removeprefix("offers/")) if replay else None
            if existing is not None:
                return existing
            if offer_id and uow.repo.offer(offer_id) is not None:
                raise errors.OfferExists("an offer with this id exists") from exc
        raise


def _insert_offer(
    deps: Deps,
    principal: Principal,
    data: OfferInput,
    offer_id: str,
    request_id: str,
    fingerprint: str,
) -> Offer:
    now = deps.clock()
    with deps.uow() as uow:
        replay = _replayed(uow, principal, request_id, "CreateOffer", fingerprint)
        if replay is not None:
            existing = uow.repo.offer(replay.removeprefix("offers/"))
            if existing is not None:
                return existing
        new_id = offer_id or f"o-{_new_id()[:16]}"
        if uow.repo.offer(new_id) is not None:
            raise errors.OfferExists("an offer with this id exists")
        offer = Offer(
            id=new_id,
            care_group_id=care_group_id(principal),
            owner_org_id=org_id(principal),
            state=OfferState.DRAFT.value,
            places_taken=0,
            version=1,
            create_time=now,
            update_time=now,
        )
        _apply_offer(offer, data, {n for names_ in OFFER_FIELDS.values() for n in names_})
        uow.repo.add(offer)
        _remember(uow, principal, request_id, "CreateOffer", f"offers/{new_id}", fingerprint)
        uow.commit()
        return offer


def get_offer(deps: Deps, principal: Principal, offer_id: str) -> Offer:
    with deps.uow() as uow:
        offer = uow.repo.offer(offer_id)
        if offer is None or not _may_see_offer(principal, offer):
            raise errors.OfferNotFound("offer not found")
        return offer


def _may_see_offer(principal: Principal, offer: Offer) -> bool:
    if principal.is_service:
        return True
    if offer.care_group_id != care_group_id(principal):
        return False
    if offer.state == OfferState.LISTED.value:
        return True
    return bool(principal.roles & CURATOR_ROLES) or org_id(principal) == offer.owner_org_id


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    next_page_token: str


def list_offers(
    deps: Deps,
    principal: Principal,
    *,
    state: OfferState | None,
    owner_org_id: str,
    page_size: int,
    page_token: str,
) -> Page:
    size = paging.page_size(page_size, maximum=200)
    fp = paging.fingerprint("offers", state, owner_org_id, principal.subject)
    after = positions.after_id(page_token, fp)
    curator = bool(principal.roles & CURATOR_ROLES)
    with deps.uow() as uow:
        items = uow.repo.offers(
            care_group_id(principal),
            states=[state.value] if state else [],
            owner_org_id=owner_org_id,
            visible_owner_org_id=None if curator else org_id(principal),
            after=after,
            limit=size + 1,
        )
    more = len(items) > size
    items = items[:size]
    token = paging.next_token({"after": items[-1].id} if more else None, fp)
    return Page(items, token)


def update_offer(
    deps: Deps, principal: Principal, offer_id: str, data: OfferInput, mask: Sequence[str]
) -> Offer:
    fields: set[str] = set()
    unknown = [i for i, p in enumerate(mask) if p not in OFFER_FIELDS]
    if unknown:
        # The path itself is not repeated: it is the caller's text, of any length.
        raise InvalidArgument(
            [
                FieldViolation(
                    f"update_mask.paths[{i}]", "not an updatable field", "INVALID_UPDATE_MASK"
                )
                for i in unknown
            ]
        )
    for path in mask or OFFER_FIELDS:
        fields.update(OFFER_FIELDS[path])
    validate_offer(data, fields)
    now = deps.clock()
    with deps.uow() as uow:
        offer = _owned_offer(uow, principal, offer_id)
        _require_owner(principal, offer)
        _check_etag(data.etag, offer.etag)
        if offer.state == OfferState.RETIRED.value:
            raise errors.InvalidOfferTransition(
                "a retired offer cannot change", reason="OFFER_RETIRED"
            )
        _apply_offer(offer, data, fields)
        offer.touch(now)
        uow.commit()
        return offer


OFFER_TRANSITIONS = {
    "propose": ({OfferState.DRAFT}, OfferState.PROPOSED),
    "publish": ({OfferState.PROPOSED}, OfferState.LISTED),
    "retire": ({OfferState.DRAFT, OfferState.PROPOSED, OfferState.LISTED}, OfferState.RETIRED),
}


def transition_offer(
    deps: Deps, principal: Principal, offer_id: str, verb: str, etag: str = ""
) -> Offer:
    """Curation: the owner proposes, the care-group admin publishes, either retires."""
    sources, target = OFFER_TRANSITIONS[verb]
    now = deps.clock()
    with deps.uow() as uow:
        offer = _owned_offer(uow, principal, offer_id)
        curator = bool(principal.roles & CURATOR_ROLES)
        owner = bool(principal.roles & OWNER_ROLES) and org_id(principal) == offer.owner_org_id
        if verb == "propose" and not owner:
            raise errors.NotOfferOwner("only the owning organisation proposes its offer")
        if verb == "publish" and not curator:
            raise errors.NotCurator("only the care group's admin lists offers")
        if verb == "retire" and not (owner or curator):
            raise errors.NotOfferOwner("only the owner or the care group's admin retires an offer")
        _check_etag(etag, offer.etag)
        if OfferState(offer.state) not in sources:
            raise errors.InvalidOfferTransition(f"cannot {verb} an offer that is {offer.state}")
        if target is OfferState.LISTED and offer.recognition_expired(now):
            raise errors.InvalidOfferTransition(
                "the offer's recognition has expired", reason="RECOGNITION_EXPIRED"
            )
        offer.state = target.value
        offer.touch(now)
        uow.commit()
        return offer


# ================================================================== eligibility & matching


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


def _referrer_role(principal: Principal, requested: str) -> str:
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
    role = _referrer_role(principal, referrer_role)
    if offer_id:
        offer = get_offer(deps, principal, offer_id)
        rule = offer.eligibility
    else:
        eligibility.validate(rule, "rule")
    return eligibility.evaluate(rule, _with_role(profile, role))


def _with_role(profile: eligibility.Profile, role: str) -> eligibility.Profile:
    return eligibility.Profile(**{**profile.__dict__, "referrer_role": role})


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


@dataclass(frozen=True)
class Match:
    offer: Offer
    score: float
    eligibility: eligibility.Result
    capacity: CapacityStatus
    no_capacity: bool
    reasons: tuple[str, ...]


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


class MenuCache:
    """The listed offers of each care group, reloaded only when the care group's offers
    changed: every write bumps the offer's version, so ``(count, sum(version))`` over the
    care group's offers is a cheap stamp (one aggregate query per FindOffers)."""

    def __init__(self) -> None:
        self._menus: dict[str, tuple[tuple[int, int], Sequence[MenuEntry]]] = {}
        self._lock = threading.Lock()

    def listed(self, uow: UnitOfWork, care_group: str) -> Sequence[MenuEntry]:
        stamp = uow.repo.offers_stamp(care_group)
        cached = self._menus.get(care_group)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        entries = [MenuEntry.of(o) for o in uow.repo.listed_offers(care_group, [])]
        with self._lock:
            self._menus[care_group] = (stamp, entries)
        return entries


STALE_OFFER_ATTEMPTS = 3


class OfferCache:
    """Offers' terms as CreateReferral last read them, each at its version. The insert of a referral
    checks the offer's version in the same statement; if the offer changed meanwhile (any
    write bumps its version), nothing is written, the entry is dropped and the offer read
    again. The offers returned are shared and detached: do not change them."""

    MAX_ENTRIES = 20_000

    def __init__(self) -> None:
        self._offers: dict[str, Offer] = {}

    def get(self, uows: Callable[[], UnitOfWork], offer_id: str) -> Offer | None:
        """The cached offer, or the offer read in a unit of work of its own (so that the
        caller's stays without a session, and its one write without a transaction)."""
        offer = self._offers.get(offer_id)
        if offer is None:
            with uows() as uow:
                offer = uow.repo.offer_terms(offer_id)
            if offer is not None:
                if len(self._offers) >= self.MAX_ENTRIES:
                    self._offers.clear()
                self._offers[offer_id] = offer
        return offer

    def forget(self, offer_id: str) -> None:
        self._offers.pop(offer_id, None)


def find_offers(
    deps: Deps,
    principal: Principal,
    profile: eligibility.Profile,
    *,
    categories: Sequence[OfferCategory] = (),
    fundings: Sequence[Funding] = (),
    eligible_only: bool = False,
    page_size: int = 0,
    page_token: str = "",
    referrer_role: str = "",
) -> tuple[list[Match], str]:
    """Listed offers for the patient's area, ranked by :func:`score` (highest first, then
    display name, then id). The eligibility explanation is built for the returned page."""
    size = paging.page_size(page_size, default=20, maximum=MAX_FIND_PAGE)
    validate_profile(profile)
    if not profile.postcode and not profile.municipality:
        raise InvalidArgument.single(
            "profile.postcode", "a postcode or municipality code is required", "AREA_REQUIRED"
        )
    role = _referrer_role(principal, referrer_role)
    fp = paging.fingerprint(
        "find",
        profile.as_dict(),
        sorted(c.value for c in categories),
        sorted(f.value for f in fundings),
        eligible_only,
        role,
    )
    offset = positions.offset(page_token, fp)
    evaluated = _with_role(profile, role)
    now = deps.clock()
    with deps.uow() as uow:
        entries = deps.menu.listed(uow, care_group_id(principal))
    wanted_categories = {c.value for c in categories}
    wanted_fundings = {f.value for f in fundings}
    wanted = frozenset(c.casefold() for c in profile.conditions)
    languages = frozenset(profile.languages)
    postcode = int(profile.postcode) if profile.postcode else 0
    ranked: list[tuple[float, str, str, MenuEntry]] = []
    verdicts: dict[str, bool] = {}
    for entry in entries:
        if wanted_categories and entry.category not in wanted_categories:
            continue
        if wanted_fundings and not entry.fundings & wanted_fundings:
            continue
        if entry.recognition_until is not None and entry.recognition_until <= now:
            continue  # dropped off the menu on its recognition's validity date
        how = entry.area(postcode, profile.municipality)
        if not how:
            continue
        eligible = verdicts.get(entry.rule_key)
        if eligible is None:
            eligible = verdicts[entry.rule_key] = eligibility.holds(entry.rule, evaluated)
        if eligible_only and not eligible:
            continue
        points = entry.score(wanted, languages, eligible, how, now)
        ranked.append((-points, entry.offer.display_name, entry.offer.id, entry))
    ranked.sort(key=lambda r: (r[0], r[1], r[2]))
    page: list[Match] = []
    for _negative, _name, _id, entry in ranked[offset : offset + size]:
        offer = entry.offer
        result = eligibility.evaluate(offer.eligibility, evaluated)
        points, reasons = score(offer, profile, result.eligible, in_area(offer, profile)[1], now)
        capacity = offer.effective_capacity()
        page.append(
            Match(
                offer,
                points,
                result,
                capacity,
                capacity is CapacityStatus.NO_CAPACITY,
                tuple(reasons),
            )
        )
    more = offset + size < len(ranked)
    return page, paging.next_token({"offset": offset + size} if more else None, fp)


# ================================================================== referrals


@dataclass(frozen=True)
class ReferralView:
    referral: Referral
    history: Sequence[HistoryEntry]


@dataclass(frozen=True)
class ReferralInput:
    offer_id: str
    reason: str
    profile: eligibility.Profile
    draft: bool = False


@dataclass(frozen=True)
class OutcomeInput:
    attendance: str = ""
    sessions_attended: int = 0
    sessions_planned: int = 0
    result_summary: str = ""
    measurements: Sequence[dict[str, Any]] = ()
    enrolment: Enrolment | None = None

    def validate(self, path: str) -> None:
        v = Violations()
        if self.sessions_attended < 0 or self.sessions_planned < 0:
            v.add(f"{path}.sessions_attended", "must not be negative", "INVALID_OUTCOME")
        _check_text(v, f"{path}.result_summary", self.result_summary)
        for i, m in enumerate(self.measurements):
            if not eligibility.CODE.fullmatch(str(m.get("code", ""))):
                v.add(f"{path}.measurements[{i}].code", "is required", "INVALID_MEASUREMENT")
            if not math.isfinite(float(m.get("value", 0.0))):
                v.add(f"{path}.measurements[{i}].value", "must be finite", "INVALID_MEASUREMENT")
        v.raise_if_any()

    def as_dict(self, recorded_by: str, now: dt.datetime) -> dict[str, Any]:
        return {
            "attendance": self.attendance,
            "sessions_attended": self.sessions_attended,
            "sessions_planned": self.sessions_planned,
            "result_summary": self.result_summary,
            "measurements": [dict(m) for m in self.measurements],
            "enrolment": self.enrolment.value if self.enrolment else "",
            "record_time": now.isoformat(),
            "recorded_by": recorded_by,
        }


def _history(
    uow: UnitOfWork,
    referral: Referral,
    principal: Principal,
    kind: str,
    from_status: str | None,
    reason: str,
    now: dt.datetime,
) -> HistoryEntry:
    entry = HistoryEntry(
        referral_id=referral.id,
        kind=kind,
        from_status=from_status,
        to_status=referral.status,
        business_status=referral.business_status,
        reason=reason,
        actor=principal.responsible_user,
        actor_org_id=org_id(principal),
        change_time=now,
    )
    uow.session.add(entry)
    return entry


def _event_payload(
    referral: Referral,
    offer: Offer,
    event_type: str,
    previous: str | None,
    actor: str,
    reason: str,
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "type": event_type,
        "event_time": now.isoformat(),
        "referral": referral.name,
        "patient": f"patients/{referral.patient_id}",
        "offer": f"offers/{referral.offer_id}",
        "offer_category": offer.category,
        "referrer_organisation": f"organisations/{referral.referrer_org_id}",
        "target_organisation": f"organisations/{referral.target_org_id}",
        "care_group": f"organisations/{referral.care_group_id}",
        "status": referral.status,
        "previous_status": previous or "",
        "business_status": referral.business_status or "",
        "enrolment": referral.enrolment,
        "waitlist_position": referral.waitlist_position,
        "outcome": referral.outcome,
        "actor": actor,
        "reason": reason,
    }


@dataclass
class _Pending:
    """Events of one transaction; their cursor ids are drawn just before commit."""

    items: list[tuple[Referral, dict[str, Any]]] = field(default_factory=list)

    def add(self, referral: Referral, payload: dict[str, Any]) -> None:
        self.items.append((referral, payload))

    def flush(self, uow: UnitOfWork, now: dt.datetime) -> None:
        """Writes the events as the transaction's last statements (see OutboxEvent)."""
        uow.session.flush()
        for referral, payload in self.items:
            uow.repo.append_outbox_event(_outbox_values(referral, payload, now))


def _outbox_values(referral: Referral, payload: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    return {
        "event_id": _new_id(),
        "event_type": payload["type"],
        "referral_id": referral.id,
        "patient_id": referral.patient_id,
        "care_group_id": referral.care_group_id,
        "referrer_org_id": referral.referrer_org_id,
        "target_org_id": referral.target_org_id,
        "payload": payload,
        "create_time": now,
    }


def _view(uow: UnitOfWork, referral: Referral) -> ReferralView:
    return ReferralView(referral, list(uow.repo.history(referral.id)))


def validate_referral_input(data: ReferralInput) -> str:
    v = Violations()
    offer_id = ""
    try:
        offer_id = names.parse_one(data.offer_id, "offers", field="referral.offer")
    except InvalidArgument as exc:
        v.items.extend(exc.violations)
    if not data.reason.strip():
        v.add("referral.reason", "is required", "REASON_REQUIRED")
    _check_text(v, "referral.reason", data.reason)
    try:
        validate_profile(data.profile, "referral.profile")
    except InvalidArgument as exc:
        v.items.extend(exc.violations)
    v.raise_if_any()
    return offer_id


def create_referral(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    data: ReferralInput,
    request_id: str = "",
    *,
    fingerprint: str = "",
) -> ReferralView:
    """Refers a patient.

    First what refuses a create whatever the patient: the request's shape, the caller's
    role (for a delegate, the person's: servicekit.delegation), the offer (catalogue data of
    the caller's care group) and a request_id reused for another request. None of these
    depends on the patient, so checking them before identity is asked tells nothing about
    the patient, and identity never logs a permit for a create that could not happen. Then
    identity's Authorize: nothing about the patient is read, written, returned or refused
    before its answer. The offer comes from a cache whose entries the write checks by
    version. Then one atomic write (one statement on PostgreSQL) stores the referral, its
    history, the request record and its outbox event, whose cursor is drawn last (the one
    serialising step). An open duplicate is caught by the unique ``open_key`` rather than
    by an extra query (after the permit: the duplicate is the patient's data).

    ``fingerprint`` identifies the request (servicekit.idempotency; for a delegate, together
    with the person it acts for): it is stored with the request record in that same
    statement, and a repeat of the request_id returns the first referral only when the
    fingerprints match (else REQUEST_ID_REUSED).
    """
    offer_id = validate_referral_input(data)
    if len(request_id) > 100:
        raise InvalidArgument.single("request_id", "at most 100 characters", "REQUEST_ID_TOO_LONG")
    if fingerprint:
        fingerprint = idempotency.for_person(fingerprint, principal.on_behalf_of)
    now = deps.clock()
    refused = _refusal_before_asking(deps, principal, offer_id, now)
    if refused is not None:
        raise refused
    replay = _earlier_request(deps, principal, request_id, fingerprint)
    enforce(deps.identity.authorize(principal, patient_id, Action.CREATE))
    with deps.uow() as uow:
        if replay is not None:
            existing = uow.repo.referral(replay.rsplit("/", 1)[-1])
            if existing is not None:
                return _view(uow, existing)
        key = (request_id, fingerprint)
        prepared = _prepare_referral(deps, uow, principal, patient_id, offer_id, data, key, now)
        for _ in range(STALE_OFFER_ATTEMPTS):
            if isinstance(prepared, Exception):
                raise prepared
            if isinstance(prepared, ReferralView):
                return prepared
            referral, offer, entry, record = prepared
            payload = _event_payload(
                referral, offer, "created", None, principal.responsible_user, "", now
            )
            try:
                written = uow.repo.create_referral(
                    referral, entry, record, offer.version, _outbox_values(referral, payload, now)
                )
            except (IntegrityError, psycopg.IntegrityError) as exc:
                uow.rollback()
                return _after_conflict(deps, principal, patient_id, offer_id, key, exc)
            if written:
                uow.commit()
                if deps.after_create_commit is not None:
                    deps.after_create_commit()
                return ReferralView(referral, [entry])
            deps.offers.forget(offer_id)
            prepared = _prepare_referral(deps, uow, principal, patient_id, offer_id, data, key, now)
        raise Aborted("the offer keeps changing; retry", reason="OFFER_CHANGING")


def _prepare_referral(
    deps: Deps,
    uow: UnitOfWork,
    principal: Principal,
    patient_id: str,
    offer_id: str,
    data: ReferralInput,
    key: tuple[str, str],
    now: dt.datetime,
) -> tuple[Referral, Offer, HistoryEntry, RequestRecord | None] | ReferralView | Exception:
    """What a permitted create reads and builds before it writes; a refusal is returned as
    an error (raised by the caller) rather than raised here. ``key`` is the request_id and
    the request's fingerprint. The offer is read again (it may have changed meanwhile)."""
    request_id, fingerprint = key
    offer = deps.offers.get(deps.uow, offer_id)
    refused = offer_refusal(principal, offer, now)
    if refused is not None:
        return refused
    assert offer is not None
    referral, entry = _new_referral(principal, patient_id, offer, data, now)
    record = (
        RequestRecord(
            subject=principal.subject,
            request_id=request_id,
            method="CreateReferral",
            resource_name=referral.name,
            fingerprint=fingerprint,
            create_time=now,
        )
        if request_id
        else None
    )
    return referral, offer, entry, record


def _refusal_before_asking(
    deps: Deps, principal: Principal, offer_id: str, now: dt.datetime
) -> Exception | None:
    """What refuses a create whatever the patient is: a caller who may not refer, or an
    offer that is not on the caller's menu card."""
    return referrer_refusal(principal) or offer_refusal(
        principal, deps.offers.get(deps.uow, offer_id), now
    )


def _earlier_request(
    deps: Deps, principal: Principal, request_id: str, fingerprint: str
) -> str | None:
    """The referral an earlier request with this request_id created (returned after the
    permit), None for a new one; the id used for another request is REQUEST_ID_REUSED,
    before identity is asked (the caller learns only about its own earlier request)."""
    if not request_id:
        return None
    with deps.uow() as uow:
        return _replayed(uow, principal, request_id, "CreateReferral", fingerprint)


def _new_referral(
    principal: Principal,
    patient_id: str,
    offer: Offer,
    data: ReferralInput,
    now: dt.datetime,
) -> tuple[Referral, HistoryEntry]:
    role = _referrer_role(principal, "")
    result = eligibility.evaluate(offer.eligibility, _with_role(data.profile, role))
    referral = Referral(
        id=_new_id()[:20],
        patient_id=patient_id,
        care_group_id=care_group_id(principal),
        offer_id=offer.id,
        referrer_org_id=org_id(principal),
        referrer_user=principal.responsible_user,
        referrer_role=role,
        target_org_id=offer.owner_org_id,
        reason=data.reason,
        profile=data.profile.as_dict(),
        business_status=None,
        status_reason="",
        enrolment=Enrolment.NOT_ENROLLED.value,
        waitlist_position=0,
        holds_place=False,
        eligibility=result.as_dict(),
        outcome=None,
        version=1,
        create_time=now,
        update_time=now,
    )
    referral.set_status(Status.DRAFT if data.draft else Status.REQUESTED)
    entry = HistoryEntry(
        referral_id=referral.id,
        kind="CREATED",
        from_status=None,
        to_status=referral.status,
        business_status=referral.business_status,
        reason="",
        actor=principal.responsible_user,
        actor_org_id=org_id(principal),
        change_time=now,
    )
    return referral, entry


def _after_conflict(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    offer_id: str,
    key: tuple[str, str],
    exc: Exception,
) -> ReferralView:
    """A create hit a unique key: the same request committed concurrently under this
    request_id (return it; another request under it is REQUEST_ID_REUSED), or an open
    referral for this patient and offer exists (ALREADY_EXISTS naming it to a caller who
    may read it; anyone else gets what reading it would answer: referral.duplicates)."""
    request_id, fingerprint = key
    with deps.uow() as again:
        replayed = _replayed(again, principal, request_id, "CreateReferral", fingerprint)
        if replayed is not None:
            first = again.repo.referral(replayed.rsplit("/", 1)[-1])
            if first is not None:
                return _view(again, first)
        duplicate = again.repo.open_referral(patient_id, offer_id)
        if duplicate is not None:
            # Named only to a caller who may read it (referral.duplicates).
            raise refuse_duplicate(deps.identity, principal, patient_id, duplicate) from exc
    raise exc


def _load_for_patient(
    uow: UnitOfWork,
    principal: Principal,
    patient_id: str,
    referral_id: str,
    *,
    for_update: bool = False,
) -> Referral | None:
    referral = uow.repo.referral(referral_id, for_update=for_update)
    if (
        referral is None
        or referral.patient_id != patient_id
        or (not principal.is_service and referral.care_group_id != care_group_id(principal))
    ):
        return None
    return referral


def get_referral(
    deps: Deps, principal: Principal, patient_id: str, referral_id: str
) -> ReferralView:
    with deps.uow() as uow:
        referral = _load_for_patient(uow, principal, patient_id, referral_id)
        enforce(ask_about(deps.identity, principal, patient_id, referral, Action.READ))
        if referral is None:
            raise errors.ReferralNotFound("referral not found")
        if party_of(principal, referral) is None:
            raise errors.NotReferralParty("not a party to this referral")
        return _view(uow, referral)


def list_referrals(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    *,
    status: Status | None,
    page_size: int,
    page_token: str,
) -> Page:
    """A patient's referrals the caller is party to (one Authorize for that patient), or with
    patient ``-`` every referral the caller is party to (one Authorize per patient listed).

    A caller who can only be a referral's target (a lifestyle provider, sport coach or
    municipality) lists a patient's referrals addressed to its organisation as it reads them
    one by one: one Authorize per referral with its context (the Mitz referral exception),
    so a target without a care relationship sees what it was sent. With none addressed to
    it, one Authorize for the patient gives the answer (a refusal exactly like an unseen or
    missing patient's, or an empty page)."""
    size = paging.page_size(page_size, maximum=200)
    fp = paging.fingerprint("referrals", patient_id, status, principal.subject)
    after = positions.after_id(page_token, fp)
    if patient_id != "-" and only_a_target(principal):
        return _list_addressed(deps, principal, patient_id, status, size, after, fp)
    if patient_id != "-":
        enforce(deps.identity.authorize(principal, patient_id, Action.READ))
    org = org_id(principal)
    if principal.is_patient:
        visibility = {"visible_to_patient": patient_id_of(principal)}
    elif org and principal.roles & (REFERRER_ROLES | TARGET_ROLES):
        visibility = {"visible_to_org": org}
    else:
        raise errors.RoleNotPermitted("this role has no referrals")
    with deps.uow() as uow:
        items = uow.repo.referrals(
            care_group_id(principal),
            patient_id="" if patient_id == "-" else patient_id,
            status=status.value if status else "",
            after=after,
            limit=size + 1,
            **visibility,
        )
        more = len(items) > size
        page = [r for r in items[:size] if party_of(principal, r) is not None]
        if patient_id == "-":
            allowed = set()
            for pid in dict.fromkeys(r.patient_id for r in page):
                decision = deps.identity.authorize(principal, pid, Action.READ)
                if decision.permitted:
                    allowed.add(pid)
            page = [r for r in page if r.patient_id in allowed]
        views = [_view(uow, r) for r in page]
    token = paging.next_token({"after": items[size - 1].id} if more else None, fp)
    return Page(views, token)


def _list_addressed(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    status: Status | None,
    size: int,
    after: str | None,
    fp: str,
) -> Page:
    """:func:`list_referrals` for a caller that can only be a target (see there)."""
    with deps.uow() as uow:
        items = uow.repo.referrals(
            care_group_id(principal),
            patient_id=patient_id,
            status=status.value if status else "",
            after=after,
            limit=size + 1,
            visible_to_org=org_id(principal),
        )
        more = len(items) > size
        addressed = [r for r in items[:size] if party_of(principal, r) is Party.TARGET]
        if not addressed:
            enforce(deps.identity.authorize(principal, patient_id, Action.READ))
        decisions = [
            (r, ask_about(deps.identity, principal, patient_id, r, Action.READ)) for r in addressed
        ]
        page = [r for r, decision in decisions if decision.permitted]
        if decisions and not page:
            enforce(decisions[0][1])
        views = [_view(uow, r) for r in page]
    token = paging.next_token({"after": items[size - 1].id} if more else None, fp)
    return Page(views, token)


def _take_place(offer: Offer, referral: Referral) -> bool:
    if referral.holds_place:
        return True
    if not offer.has_free_place():
        return False
    if offer.counts_places:
        offer.places_taken += 1
    referral.holds_place = True
    referral.enrolment = Enrolment.ENROLLED.value
    return True


def _leave_waitlist(uow: UnitOfWork, offer: Offer, referral: Referral) -> None:
    if referral.waitlist_position > 0:
        position = referral.waitlist_position
        referral.waitlist_position = 0
        offer.waitlist_length = max(0, offer.waitlist_length - 1)
        uow.session.flush()
        uow.repo.move_up_waitlist(offer.id, position)


def _release_place(
    uow: UnitOfWork,
    offer: Offer,
    referral: Referral,
    principal: Principal,
    pending: _Pending,
    now: dt.datetime,
) -> None:
    """Frees the referral's place and gives it to the first on the waitlist."""
    _leave_waitlist(uow, offer, referral)
    if not referral.holds_place:
        return
    referral.holds_place = False
    if offer.counts_places:
        offer.places_taken = max(0, offer.places_taken - 1)
    uow.session.flush()
    waiting = uow.repo.first_waitlisted(offer.id)
    if waiting is not None and waiting.id != referral.id and offer.has_free_place():
        _leave_waitlist(uow, offer, waiting)
        _take_place(offer, waiting)
        waiting.touch(now)
        _history(uow, waiting, principal, "ENROLMENT", waiting.status, "a place became free", now)
        pending.add(
            waiting,
            _event_payload(
                waiting,
                offer,
                "enrolment-changed",
                waiting.status,
                principal.responsible_user,
                "",
                now,
            ),
        )


def transition_referral(  # noqa: PLR0912, PLR0915
    deps: Deps,
    principal: Principal,
    patient_id: str,
    referral_id: str,
    target: Status | None,
    *,
    reason: str = "",
    business_status: BusinessStatus | None = None,
    outcome: OutcomeInput | None = None,
    etag: str = "",
) -> ReferralView:
    v = Violations()
    if target is None:
        v.add("status", "is required", "STATUS_REQUIRED")
    _check_text(v, "reason", reason)
    v.raise_if_any()
    assert target is not None
    if outcome is not None:
        outcome.validate("outcome")
    now = deps.clock()
    with deps.uow() as uow:
        referral = _load_for_patient(uow, principal, patient_id, referral_id, for_update=True)
        enforce(ask_about(deps.identity, principal, patient_id, referral, Action.UPDATE))
        if referral is None:
            raise errors.ReferralNotFound("referral not found")
        party = party_of(principal, referral)
        if party is None:
            raise errors.NotReferralParty("not a party to this referral")
        current = Status(referral.status)
        refusal = check_transition(current, target, party)
        if refusal is TransitionRefusal.NOT_IN_MACHINE:
            raise errors.InvalidTransition(f"{current.value} cannot become {target.value}")
        if refusal is TransitionRefusal.WRONG_PARTY:
            raise errors.WrongParty(f"the {party.value} may not make this change")
        if target in REASON_REQUIRED and not reason.strip():
            raise InvalidArgument.single(
                "reason", f"a reason is required for {target.value}", "REASON_REQUIRED"
            )
        if outcome is not None and target not in OUTCOME_STATES:
            raise InvalidArgument.single(
                "outcome", "feedback comes with acting on a referral", "OUTCOME_NOT_ALLOWED"
            )
        _check_etag(etag, referral.etag)
        offer = uow.repo.offer(referral.offer_id, for_update=True)
        assert offer is not None
        capacity_before = (offer.places_taken, offer.waitlist_length)
        pending = _Pending()
        if target is Status.ACCEPTED and not _take_place(offer, referral):
            offer.waitlist_length += 1
            referral.waitlist_position = offer.waitlist_length
            referral.enrolment = Enrolment.NOT_ENROLLED_ON_WAITLIST.value
        elif target in (Status.IN_PROGRESS, Status.COMPLETED) and not referral.holds_place:
            if not offer.has_free_place():
                raise errors.InvalidTransition(
                    "the course has no free place yet", reason="NO_PLACE_AVAILABLE"
                )
            _leave_waitlist(uow, offer, referral)
            _take_place(offer, referral)
        if target in (
            Status.REJECTED,
            Status.CANCELLED,
            Status.FAILED,
            Status.COMPLETED,
            Status.ENTERED_IN_ERROR,
        ):
            _release_place(uow, offer, referral, principal, pending, now)
            if target is not Status.COMPLETED:
                referral.enrolment = Enrolment.NOT_ENROLLED.value
        referral.set_status(target)
        referral.status_reason = reason
        if business_status is not None:
            referral.business_status = business_status.value
        if outcome is not None:
            referral.outcome = outcome.as_dict(principal.organisation, now)
            if outcome.enrolment is not None:
                referral.enrolment = outcome.enrolment.value
        referral.touch(now)
        if (offer.places_taken, offer.waitlist_length) != capacity_before:
            offer.touch(now)
        _history(uow, referral, principal, "STATUS", current.value, reason, now)
        pending.items.insert(
            0,
            (
                referral,
                _event_payload(
                    referral,
                    offer,
                    "status-changed",
                    current.value,
                    principal.responsible_user,
                    reason,
                    now,
                ),
            ),
        )
        pending.flush(uow, now)
        uow.commit()
        return _view(uow, referral)


def record_outcome(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    referral_id: str,
    outcome: OutcomeInput,
    etag: str = "",
) -> ReferralView:
    outcome.validate("outcome")
    now = deps.clock()
    with deps.uow() as uow:
        referral = _load_for_patient(uow, principal, patient_id, referral_id, for_update=True)
        enforce(ask_about(deps.identity, principal, patient_id, referral, Action.UPDATE))
        if referral is None:
            raise errors.ReferralNotFound("referral not found")
        party = party_of(principal, referral)
        if party is None:
            raise errors.NotReferralParty("not a party to this referral")
        if party is not Party.TARGET:
            raise errors.WrongParty("only the target records feedback")
        if Status(referral.status) not in OUTCOME_STATES:
            raise errors.InvalidTransition(
                "no feedback before the target has acted", reason="OUTCOME_NOT_ALLOWED_IN_STATE"
            )
        _check_etag(etag, referral.etag)
        offer = uow.repo.offer(referral.offer_id)
        assert offer is not None
        referral.outcome = outcome.as_dict(principal.organisation, now)
        if outcome.enrolment is not None:
            referral.enrolment = outcome.enrolment.value
        referral.touch(now)
        _history(uow, referral, principal, "OUTCOME", referral.status, "", now)
        pending = _Pending()
        pending.add(
            referral,
            _event_payload(
                referral,
                offer,
                "outcome-recorded",
                referral.status,
                principal.responsible_user,
                "",
                now,
            ),
        )
        pending.flush(uow, now)
        uow.commit()
        return _view(uow, referral)
