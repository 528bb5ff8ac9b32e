"""Minimisation: who sees how much of what identity holds about a patient.

Authorization (:mod:`identity.policy`) decides *whether* a caller may read a patient's
registration; these rules decide *how much* of it the answer holds. A role sees the least it
needs for its part in the patient's care (the service README has the full table):

- ``GetPatient`` (and the patient that ``RegisterPatient`` and ``LookupPatient`` return):
  the patient themselves and clinicians (gp, practice nurse, specialist) get the whole
  resource; a lifestyle provider, sport coach or municipality officer gets the name and
  the care group only, which is what delivering an offer or support needs. No role ever gets
  the BSN: identity stores only its keyed hash.
- ``ListCareRelationships``: the patient sees all their relationships; a clinician of the
  coordinating organisation (an active coordinating relationship) sees all of them, because
  it coordinates the care; any other clinician sees their own organisation's relationships
  and who coordinates; a lifestyle provider, sport coach or municipality officer sees only
  their own organisation's relationships, never the patient's GP, hospital or social-domain
  relationships with others.
"""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.auth import CLINICIAN_ROLES, Principal

PATIENT_FIELDS = frozenset({"name", "care_group", "create_time", "update_time"})
# What a non-clinical role needs to deliver an offer or support: whom it is for.
PATIENT_FIELDS_NON_CLINICAL = frozenset({"name", "care_group"})


def patient_fields(principal: Principal) -> frozenset[str]:
    """The fields of a Patient the (already authorized) caller gets."""
    if principal.is_patient or principal.roles & CLINICIAN_ROLES:
        return PATIENT_FIELDS
    return PATIENT_FIELDS_NON_CLINICAL


@dataclass(frozen=True)
class RelationshipScope:
    """Which of a patient's care relationships a caller sees: all of them, or those of one
    organisation (plus, with ``with_coordinating``, the coordinating ones)."""

    everything: bool
    organisation_id: str = ""
    with_coordinating: bool = False


def relationship_scope(principal: Principal, *, coordinating: bool) -> RelationshipScope:
    """The relationships the (already authorized) caller sees; ``coordinating`` says whether
    the caller's organisation has an active coordinating relationship with the patient."""
    if principal.is_patient:
        return RelationshipScope(everything=True)
    own = principal.organisation.removeprefix("organisations/")
    if principal.roles & CLINICIAN_ROLES:
        if coordinating:
            return RelationshipScope(everything=True)
        return RelationshipScope(everything=False, organisation_id=own, with_coordinating=True)
    return RelationshipScope(everything=False, organisation_id=own)
