"""Referring a patient, and reading and listing referrals: patient data, so every use case
makes exactly one ``Authorize`` (one access-log entry) once the request is well-formed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from sqlalchemy.exc import IntegrityError

from referral import eligibility, errors
from referral.access import (
    REFERRER_ROLES,
    TARGET_ROLES,
    ask_about,
    care_group_id,
    enforce,
    found_referral,
    lists,
    offer_refusal,
    only_a_target,
    org_id,
    organisation_system,
    party_of,
    patient_id_of,
    referrer_refusal,
)
from referral.caches import STALE_OFFER_ATTEMPTS
from referral.deps import Deps
from referral.duplicates import refuse_duplicate
from referral.errors import Violations
from referral.models import (
    Enrolment,
    HistoryEntry,
    Offer,
    Party,
    Referral,
    RequestRecord,
    Status,
)
from referral.repository import ReferralFilter
from referral.unit_of_work import UnitOfWork
from referral.use_cases.common import check_text, new_id
from referral.use_cases.history import ReferralView, event_payload, outbox_values, view_of
from referral.use_cases.matching import role_of_referrer, validate_profile, with_role
from servicekit import metrics, names
from servicekit.admission import decide
from servicekit.auth import Principal
from servicekit.errors import Aborted, InvalidArgument
from servicekit.idempotency import IdempotentRequest
from servicekit.identity_client import Access, AccessQuestion
from servicekit.paging import Page, PageRequest, PositionKind


@dataclass(frozen=True)
class ReferralInput:
    offer_id: str
    reason: str
    profile: eligibility.Profile
    draft: bool = False


# ``from_status`` of a referral's creation in the transitions counter (servicekit.metrics).
CREATED_FROM = "none"


def validate_referral_input(data: ReferralInput) -> str:
    v = Violations()
    offer_id = ""
    try:
        offer_id = names.parse_one(data.offer_id, "offers", field="referral.offer")
    except InvalidArgument as exc:
        v.items.extend(exc.violations)
    if not data.reason.strip():
        v.add("referral.reason", "is required", "REASON_REQUIRED")
    check_text(v, "referral.reason", data.reason)
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
    request: IdempotentRequest | None = None,
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
    history, the request record and its outbox event (no lock in common with other
    creates: its cursor is given after the commit, by a reader). What identity is asked
    describes what happens: a repeat of an earlier request (same request_id and
    fingerprint) is a read of the stored referral, asked and answered as its
    ``GetReferral``; a create the caller's organisation already
    has an open referral for (one driver statement by the unique ``open_key``, before
    identity is asked) is a read of that referral (referral.duplicates); only a create
    that can happen is asked as a create. A duplicate committed concurrently after that
    check is still caught by the unique ``open_key`` (then the create permit is logged
    as well). The key holds the referring organisation: another organisation's open
    referral for the patient and offer is no duplicate, and the create succeeds without
    anything about it being read or told.

    ``request`` carries the request_id and the request's fingerprint (servicekit.idempotency;
    for a delegate, together with the person it acts for): the request record is written in
    that same statement, and a repeat of the request_id returns the first referral only when
    the fingerprints match (else REQUEST_ID_REUSED).
    """
    offer_id = validate_referral_input(data)
    now = deps.clock()
    refused = _refusal_before_asking(deps, principal, offer_id, now)
    if refused is not None:
        raise refused
    replay = _earlier_request(deps, request)
    if replay is not None:
        # The same request again creates nothing: it reads the stored referral, and is
        # decided and logged as that read (GetReferral's question), not as a create.
        return get_referral(deps, principal, patient_id, replay.rsplit("/", 1)[-1])
    duplicate = _open_duplicate(deps, principal, patient_id, offer_id)
    if duplicate is not None:
        # Refused as a duplicate: what happens is a read of the open referral (its name is
        # told), decided and logged as that read, never as a create (referral.duplicates).
        raise refuse_duplicate(deps.identity, principal, patient_id, duplicate)
    decide(deps.identity, AccessQuestion(principal, patient_id, Access.CREATE))
    with deps.uow() as uow:
        prepared = _prepare_referral(uow, principal, patient_id, offer_id, data, request, now)
        for _ in range(STALE_OFFER_ATTEMPTS):
            if isinstance(prepared, Exception):
                raise prepared
            if isinstance(prepared, ReferralView):
                return prepared
            referral, offer, entry, record = prepared
            payload = event_payload(
                referral, offer, "created", None, principal.responsible_user, "", now
            )
            try:
                written = uow.repo.create_referral(
                    referral, entry, record, offer.version, outbox_values(referral, payload, now)
                )
            except (IntegrityError, psycopg.IntegrityError) as exc:
                uow.rollback()
                return _after_conflict(deps, principal, patient_id, offer_id, request, exc)
            if written:
                uow.commit()
                metrics.domain().referral_transition(CREATED_FROM, referral.status)
                if deps.after_create_commit is not None:
                    deps.after_create_commit()
                return ReferralView(referral, [entry])
            uow.repo.forget_offer(offer_id)
            prepared = _prepare_referral(uow, principal, patient_id, offer_id, data, request, now)
        raise Aborted("the offer keeps changing; retry", reason="OFFER_CHANGING")


def _prepare_referral(
    uow: UnitOfWork,
    principal: Principal,
    patient_id: str,
    offer_id: str,
    data: ReferralInput,
    request: IdempotentRequest | None,
    now: dt.datetime,
) -> tuple[Referral, Offer, HistoryEntry, RequestRecord | None] | ReferralView | Exception:
    """What a permitted create reads and builds before it writes; a refusal is returned as
    an error (raised by the caller) rather than raised here. The offer is read again (it may
    have changed meanwhile)."""
    offer = uow.repo.offer_for_referral(offer_id, care_group_id(principal))
    refused = offer_refusal(principal, offer, now)
    if refused is not None:
        return refused
    assert offer is not None
    referral, entry = _new_referral(principal, patient_id, offer, data, now)
    record = (
        RequestRecord.of(request, referral.name, now)
        if request is not None and request.request_id
        else None
    )
    return referral, offer, entry, record


def _refusal_before_asking(
    deps: Deps, principal: Principal, offer_id: str, now: dt.datetime
) -> Exception | None:
    """What refuses a create whatever the patient is: a caller who may not refer, or an
    offer that is not on the caller's menu card."""
    refused = referrer_refusal(principal)
    if refused is not None:
        return refused
    with deps.uow() as uow:
        return offer_refusal(
            principal, uow.repo.offer_for_referral(offer_id, care_group_id(principal)), now
        )


def _open_duplicate(
    deps: Deps, principal: Principal, patient_id: str, offer_id: str
) -> Referral | None:
    """The caller's organisation's open referral of the patient for the offer, if any: a
    create it would make is refused as a duplicate. One driver statement when there is
    none (the usual case); nothing of it is answered before identity decides the read."""
    org = org_id(principal)
    with deps.uow() as uow:
        if not uow.repo.has_open_referral(patient_id, offer_id, org):
            return None
        return uow.repo.open_referral(patient_id, offer_id, org)


def _earlier_request(deps: Deps, request: IdempotentRequest | None) -> str | None:
    """The referral an earlier request with this request_id created (returned after the
    permit), None for a new one; the id used for another request is REQUEST_ID_REUSED,
    before identity is asked (the caller learns only about its own earlier request)."""
    if request is None or not request.request_id:
        return None
    with deps.uow() as uow:
        return request.replayed(uow.repo)


def _new_referral(
    principal: Principal,
    patient_id: str,
    offer: Offer,
    data: ReferralInput,
    now: dt.datetime,
) -> tuple[Referral, HistoryEntry]:
    role = role_of_referrer(principal, "")
    result = eligibility.evaluate(offer.eligibility, with_role(data.profile, role))
    referral = Referral(
        id=new_id()[:20],
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
    request: IdempotentRequest | None,
    exc: Exception,
) -> ReferralView:
    """A create hit a unique key: the same request committed concurrently under this
    request_id (return it; another request under it is REQUEST_ID_REUSED), or the caller's
    organisation has an open referral for this patient and offer (ALREADY_EXISTS naming it
    to a caller who may read it; anyone else gets what reading it would answer:
    referral.duplicates). Only the caller's own organisation's referral is looked up."""
    with deps.uow() as again:
        earlier = request.replayed(again.repo) if request else None
        if earlier is not None:
            first = again.repo.referral(earlier.rsplit("/", 1)[-1])
            if first is not None:
                return view_of(again, first)
        duplicate = again.repo.open_referral(patient_id, offer_id, org_id(principal))
        if duplicate is not None:
            # Named only to a caller who may read it (referral.duplicates).
            raise refuse_duplicate(deps.identity, principal, patient_id, duplicate) from exc
    raise exc


def load_for_patient(
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
    """One referral, to a party to it (its referrer's or target's people, the patient).

    Who may be a party is checked before identity is asked, so that identity logs only a
    read that can happen: a caller that can be no referral's party (no clinician or target
    role in an organisation and not a patient: an insurer, the care group's admin or
    auditor, a KIS acting as itself) is PERMISSION_DENIED ``ROLE_NOT_PERMITTED``; a
    referral the caller is not a party to is answered exactly as one that does not exist
    (NOT_FOUND ``REFERRAL_NOT_FOUND``, whether or not the patient exists or is of the
    caller's care group). Neither asks identity, so neither is logged. A party's read is
    then decided by identity with the referral's context and record holder (one entry)."""
    if not may_be_a_party(principal):
        raise errors.RoleNotPermitted("this role reads no single referral")
    with deps.uow() as uow:
        found = load_for_patient(uow, principal, patient_id, referral_id)
        if found is not None and party_of(principal, found) is None:
            found = None
        if found is None:
            raise errors.ReferralNotFound("referral not found")
        referral = found_referral(deps.identity, principal, patient_id, found, Access.READ)
        return view_of(uow, referral)


def may_be_a_party(principal: Principal) -> bool:
    """Whether the caller could be a party to some referral (:func:`party_of`)."""
    if principal.is_patient:
        return True
    return bool(org_id(principal)) and bool(principal.roles & (REFERRER_ROLES | TARGET_ROLES))


def list_referrals(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    *,
    status: Status | None,
    page: PageRequest,
) -> Page[ReferralView]:
    """A patient's referrals the caller is party to (one Authorize for that patient), or with
    patient ``-`` every referral the caller is party to, each asked about with its context
    and record holder (one Authorize per referral listed, the question WatchReferralEvents
    asks, so a target without a care relationship lists what it was sent and the list shows
    what the stream shows); a referral identity does not permit is left out.

    A caller who can only be a referral's target (a lifestyle provider, sport coach or
    municipality) lists a patient's referrals addressed to its organisation as it reads them
    one by one: one Authorize per referral with its context (the Mitz referral exception),
    so a target without a care relationship sees what it was sent. With none addressed to
    it, one Authorize for the patient gives the answer (a refusal exactly like an unseen or
    missing patient's, or an empty page). Newest first (then by id)."""
    if patient_id != "-" and only_a_target(principal):
        return _list_addressed(deps, principal, patient_id, status, page)
    if patient_id != "-":
        decide(deps.identity, AccessQuestion(principal, patient_id, Access.READ))
    where = ReferralFilter(
        care_group_id(principal),
        patient_id="" if patient_id == "-" else patient_id,
        status=status.value if status else "",
    )
    org = org_id(principal)
    if principal.is_patient:
        where = replace(where, visible_to_patient=patient_id_of(principal))
    elif org and (
        principal.roles & (REFERRER_ROLES | TARGET_ROLES) or organisation_system(principal)
    ):
        where = replace(where, visible_to_org=org)
    else:
        raise errors.RoleNotPermitted("this role has no referrals")
    with deps.uow() as uow:
        items = uow.repo.referrals(where, before=_before(page), limit=page.limit)
        fetched = Page.of(items, page, _position)
        shown = [r for r in fetched.items if lists(principal, r)]
        if patient_id == "-":
            # Across patients, each referral is asked about as WatchReferralEvents asks about
            # it (its context and record holder): the list shows what the stream shows.
            shown = [
                r
                for r in shown
                if ask_about(deps.identity, principal, r.patient_id, r, Access.READ).permitted
            ]
        return Page([view_of(uow, r) for r in shown], fetched.next)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _position(referral: Referral) -> dict[str, Any]:
    micros = (referral.create_time - _EPOCH) // dt.timedelta(microseconds=1)
    return {"time": micros, "after": referral.id}


def _before(page: PageRequest) -> tuple[dt.datetime, str] | None:
    if page.position is None:
        return None
    time = _EPOCH + dt.timedelta(microseconds=page.position["time"])
    return time, str(page.position["after"])


def valid_referral_position(position: dict[str, Any]) -> bool:
    """A position this list could have made (its token is refused otherwise)."""
    return bool(0 <= position["time"] < 2**62 and 0 < len(position["after"]) <= 63)


# ListReferrals' position: the last referral's create time (microseconds since the epoch) and id.
REFERRAL_POSITION = PositionKind({"time": int, "after": str}, valid_referral_position)


def _list_addressed(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    status: Status | None,
    page: PageRequest,
) -> Page[ReferralView]:
    """:func:`list_referrals` for a caller that can only be a target (see there)."""
    with deps.uow() as uow:
        where = ReferralFilter(
            care_group_id(principal),
            patient_id=patient_id,
            status=status.value if status else "",
            visible_to_org=org_id(principal),
        )
        items = uow.repo.referrals(where, before=_before(page), limit=page.limit)
        fetched = Page.of(items, page, _position)
        addressed = [r for r in fetched.items if party_of(principal, r) is Party.TARGET]
        if not addressed:
            decide(deps.identity, AccessQuestion(principal, patient_id, Access.READ))
        decisions = [
            (r, ask_about(deps.identity, principal, patient_id, r, Access.READ)) for r in addressed
        ]
        shown = [r for r, decision in decisions if decision.permitted]
        if decisions and not shown:
            enforce(decisions[0][1])
        return Page([view_of(uow, r) for r in shown], fetched.next)
