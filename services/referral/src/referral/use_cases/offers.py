"""The menu card: creating, reading, listing and changing offers (catalogue data: no
``Authorize``, writes limited to the owning organisation)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from referral import eligibility, errors
from referral.access import (
    care_group_id,
    org_id,
)
from referral.deps import Deps
from referral.errors import Violations
from referral.models import (
    CapacityStatus,
    Funding,
    Offer,
    OfferCategory,
    OfferState,
    RecognitionLevel,
)
from referral.unit_of_work import UnitOfWork
from referral.use_cases.common import (
    check_etag,
    check_text,
    new_id,
)
from servicekit import names
from servicekit.auth import Principal
from servicekit.errors import FieldViolation, InvalidArgument
from servicekit.idempotency import IdempotentRequest
from servicekit.paging import Page, PageRequest

OWNER_ROLES = frozenset({"municipality-officer", "sport-coach", "provider"})


CURATOR_ROLES = frozenset({"care-group-admin"})


# Places and declared waitlist of an offer: the counters (32-bit columns) grow by one per
# referral taking a place or joining the waitlist, so they must start far below their limit.
MAX_PLACES = 100_000


FREQS = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})


DAYS = frozenset({"MO", "TU", "WE", "TH", "FR", "SA", "SU"})


HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


CURRENCY = re.compile(r"^[A-Z]{3}$")


EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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


def validate_offer(data: OfferInput, fields: set[str]) -> None:  # noqa: PLR0912, PLR0915
    v = Violations()
    if "display_name" in fields:
        if not data.display_name.strip():
            v.add("offer.display_name", "is required", "DISPLAY_NAME_REQUIRED")
        check_text(v, "offer.display_name", data.display_name, 200)
    if "description" in fields:
        check_text(v, "offer.description", data.description)
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
        check_text(v, "offer.capacity.notes", data.capacity_notes, 1000)
    if "application_process" in fields:
        check_text(v, "offer.application_process", data.application_process)
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


def owned_offer(uow: UnitOfWork, principal: Principal, offer_id: str) -> Offer:
    offer = uow.repo.offer(offer_id, for_update=True)
    if offer is None or offer.care_group_id != care_group_id(principal):
        raise errors.OfferNotFound("offer not found")
    return offer


def _require_owner(principal: Principal, offer: Offer) -> None:
    if not principal.roles & OWNER_ROLES or org_id(principal) != offer.owner_org_id:
        raise errors.NotOfferOwner("only the owning organisation may change this offer")


def create_offer(
    deps: Deps,
    principal: Principal,
    data: OfferInput,
    offer_id: str = "",
    request: IdempotentRequest | None = None,
) -> Offer:
    """Creates a draft offer. With a ``request`` (its request_id and fingerprint,
    servicekit.idempotency) a repeat of the same request returns the first offer, another
    request under the same id is REQUEST_ID_REUSED."""
    if not principal.roles & OWNER_ROLES or not principal.organisation:
        raise errors.RoleNotPermitted("only a municipality or provider creates offers")
    if offer_id and not names.valid_id(offer_id):
        raise InvalidArgument.single("offer_id", "must match [a-z0-9-]{2,63}", "INVALID_OFFER_ID")
    validate_offer(data, {n for names_ in OFFER_FIELDS.values() for n in names_})
    try:
        return _insert_offer(deps, principal, data, offer_id, request)
    except IntegrityError as exc:
        # A concurrent create took the request_id or the offer id between the checks and
        # the commit: answer as the checks would have.
        with deps.uow() as uow:
            replay = request.replayed(uow.repo) if request else None
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
    request: IdempotentRequest | None,
) -> Offer:
    now = deps.clock()
    with deps.uow() as uow:
        replay = request.replayed(uow.repo) if request else None
        if replay is not None:
            existing = uow.repo.offer(replay.removeprefix("offers/"))
            if existing is not None:
                return existing
        created_id = offer_id or f"o-{new_id()[:16]}"
        if uow.repo.offer(created_id) is not None:
            raise errors.OfferExists("an offer with this id exists")
        offer = Offer(
            id=created_id,
            care_group_id=care_group_id(principal),
            owner_org_id=org_id(principal),
            state=OfferState.DRAFT.value,
            state_reason="",
            places_taken=0,
            version=1,
            create_time=now,
            update_time=now,
        )
        _apply_offer(offer, data, {n for names_ in OFFER_FIELDS.values() for n in names_})
        uow.repo.add(offer)
        if request is not None:
            request.remember(uow.repo, f"offers/{created_id}")
        uow.commit()
        return offer


def get_offer(deps: Deps, principal: Principal, offer_id: str) -> Offer:
    with deps.uow() as uow:
        offer = uow.repo.offer(offer_id)
        if offer is None or not may_see_offer(principal, offer):
            raise errors.OfferNotFound("offer not found")
        return offer


def may_see_offer(principal: Principal, offer: Offer) -> bool:
    if principal.is_service:
        return True
    if offer.care_group_id != care_group_id(principal):
        return False
    if offer.state == OfferState.LISTED.value:
        return True
    return bool(principal.roles & CURATOR_ROLES) or org_id(principal) == offer.owner_org_id


def list_offers(
    deps: Deps,
    principal: Principal,
    *,
    state: OfferState | None,
    owner_org_id: str,
    page: PageRequest,
) -> Page[Offer]:
    """The care group's offers the caller may see, by id (non-listed ones only for their
    owner and the admin)."""
    curator = bool(principal.roles & CURATOR_ROLES)
    with deps.uow() as uow:
        items = uow.repo.offers(
            care_group_id(principal),
            states=[state.value] if state else [],
            owner_org_id=owner_org_id,
            visible_owner_org_id=None if curator else org_id(principal),
            after=page.after(),
            limit=page.limit,
        )
    return Page.after_key(items, page, lambda o: o.id)


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
        offer = owned_offer(uow, principal, offer_id)
        _require_owner(principal, offer)
        check_etag(data.etag, offer.etag)
        if offer.state == OfferState.RETIRED.value:
            raise errors.InvalidOfferTransition(
                "a retired offer cannot change", reason="OFFER_RETIRED"
            )
        _apply_offer(offer, data, fields)
        offer.touch(now)
        uow.commit()
        return offer
