"""Who the caller is to a referral, and what referral asks identity about one.

The rules that decide a question about referral data before or besides identity's
``Authorize``: who may refer, who can only be a target, the caller's relation to a
referral (:func:`party_of`), the question about one referral (:func:`ask_about`: its
context and its record holder, the referring organisation), and the offer checks that
refuse a create whatever the patient (:func:`offer_refusal`). They are read on the
principal the call runs as: for a delegate, the person it acts for (servicekit.delegation).
"""

from __future__ import annotations

import datetime as dt

from referral import errors
from referral.models import Offer, Party, Referral
from servicekit import authorization
from servicekit.admission import admit
from servicekit.auth import CLINICIAN_ROLES, Principal
from servicekit.identity_client import (
    Access,
    AccessDecision,
    AccessQuestion,
    IdentityClient,
    ReferralContext,
)

TARGET_ROLES = frozenset({"municipality-officer", "sport-coach", "provider"})
REFERRER_ROLES = CLINICIAN_ROLES


def org_id(principal: Principal) -> str:
    return principal.organisation.removeprefix("organisations/")


def care_group_id(principal: Principal) -> str:
    return principal.care_group.removeprefix("organisations/")


def patient_id_of(principal: Principal) -> str:
    return principal.patient.removeprefix("patients/")


def party_of(principal: Principal, referral: Referral) -> Party | None:
    """The caller's relation to a referral (same care group assumed)."""
    if principal.is_patient:
        return Party.PATIENT if patient_id_of(principal) == referral.patient_id else None
    org = org_id(principal)
    if not org:
        return None
    if org == referral.referrer_org_id and principal.roles & REFERRER_ROLES:
        return Party.REFERRER
    if org == referral.target_org_id and principal.roles & TARGET_ROLES:
        return Party.TARGET
    return None


def organisation_system(principal: Principal) -> bool:
    """A delegate system client (a practice's KIS, realm role ``delegate``) calling as
    itself rather than for a person: it lists and follows the referrals its organisation
    made or receives (each read still decided and logged by identity), and nothing else."""
    return principal.is_delegate and not principal.acts_for_person and bool(principal.organisation)


def lists(principal: Principal, referral: Referral) -> bool:
    """Whether the caller's lists show the referral (before identity is asked): a party to
    it, or the system of the referring or target organisation (:func:`organisation_system`)."""
    if party_of(principal, referral) is not None:
        return True
    return organisation_system(principal) and org_id(principal) in (
        referral.referrer_org_id,
        referral.target_org_id,
    )


def only_a_target(principal: Principal) -> bool:
    """A caller that can be a referral's target and never its referrer (a lifestyle
    provider, sport coach or municipality of an organisation)."""
    return (
        not principal.is_patient
        and bool(principal.organisation)
        and bool(principal.roles & TARGET_ROLES)
        and not principal.roles & REFERRER_ROLES
    )


def context_of(referral: Referral) -> ReferralContext:
    return ReferralContext(referral.name, referral.target_org_id, referral.referrer_org_id)


def question_about(
    principal: Principal, patient_id: str, referral: Referral | None, access: Access
) -> AccessQuestion:
    """The question about an access to one referral of the patient: with the referral's
    context (the Mitz referral exception for its target) and its record holder, the
    referring organisation, so that any other organisation needs the patient's consent for
    referral data. A referral not found (or not of this patient) is asked about as the
    patient's referral data in general, like an unseen patient's."""
    if referral is None:
        return AccessQuestion(principal, patient_id, access)
    return AccessQuestion(
        principal,
        patient_id,
        access,
        record_holder_id=referral.referrer_org_id,
        referral=context_of(referral),
    )


def ask_about(
    identity: IdentityClient,
    principal: Principal,
    patient_id: str,
    referral: Referral | None,
    access: Access,
) -> AccessDecision:
    """identity's decision on :func:`question_about` (refused or not: for lists)."""
    return identity.authorize(question_about(principal, patient_id, referral, access))


def found_referral(
    identity: IdentityClient,
    principal: Principal,
    patient_id: str,
    referral: Referral | None,
    access: Access,
) -> Referral:
    """The step before a use case touches one referral (servicekit.admission): identity
    decides and logs :func:`question_about`, a refusal is raised, and only then a referral
    that was not found is NOT_FOUND."""
    return admit(
        identity,
        question_about(principal, patient_id, referral, access),
        referral,
        missing=lambda: errors.ReferralNotFound("referral not found"),
    )


def enforce(decision: AccessDecision) -> None:
    """Refuses what identity did not permit: PERMISSION_DENIED with identity's reason and a
    message fixed per reason (servicekit.authorization.refusal). identity answers a patient
    it does not know (none such, another care group's) exactly as one the caller may not
    see, and nothing referral answers before this depends on whether the patient or the
    referral exists (issue 11, point 6)."""
    authorization.require(decision)


def referrer_refusal(principal: Principal) -> Exception | None:
    """Only a clinician of an organisation refers (for a delegate: the person)."""
    if not principal.roles & REFERRER_ROLES or not principal.organisation:
        return errors.RoleNotPermitted("only a GP practice or hospital clinician refers")
    return None


def offer_refusal(principal: Principal, offer: Offer | None, now: dt.datetime) -> Exception | None:
    """An offer the caller cannot refer to: not on its care group's menu card."""
    if offer is None or offer.care_group_id != care_group_id(principal):
        return errors.OfferNotFoundField("no such offer on the menu card")
    if not offer.on_menu(now):
        reason = "RECOGNITION_EXPIRED" if offer.recognition_expired(now) else "OFFER_NOT_LISTED"
        return errors.OfferNotListed("the offer is not on the menu card", reason=reason)
    return None
