"""The authorization decision table of ``Authorize``.

The rules are read top to bottom; the first that matches decides. Anything no rule
permits is denied (fail closed).

| # | when                                                                  | decision | basis                         | reason                  |
|---|-----------------------------------------------------------------------|----------|-------------------------------|-------------------------|
| 1 | the subject is an insurer analyst                                     | DENY     |                               | INSURER_NO_PATIENT_DATA |
| S | an organisation's system acting as itself (delegate, naming nobody):  | S1-S5    |                               |                         |
|   | rules S1-S5 below decide, and no other rule applies                   |          |                               |                         |
| 2 | the subject is the patient                                            | PERMIT   | SELF                          | OWN_DATA                |
| 3 | the subject is another patient                                        | DENY     |                               | NOT_OWN_DATA            |
| 4 | an auditor asks for the access log                                    | PERMIT   | AUDIT                         | AUDITOR                 |
| 5 | the subject has no care role (auditor, care-group admin, service)     | DENY     |                               | ROLE_NOT_PERMITTED      |
| 6 | the subject's organisation is unknown or of another care group        | DENY     |                               | UNKNOWN_ORGANISATION    |
| 7 | measurements are read or updated without naming their record holder   | DENY     |                               | RECORD_HOLDER_REQUIRED  |
| 8 | a referral's target organisation reads or updates that referral       | PERMIT   | REFERRAL_TARGET               | REFERRAL_TARGET         |
|   | (only in a referral context from the referral service)                |          |                               |                         |
| 9 | the record holder itself, with an active care relationship            | PERMIT   | CARE_RELATIONSHIP             | CARE_RELATIONSHIP       |
| 10| another organisation with an active care relationship and a consent   | PERMIT   | CARE_RELATIONSHIP_AND_CONSENT | CONSENT                 |
|   | covering record holder × data category × requester                    |          |                               |                         |
| 11| an emergency reason is given by a role other than a clinician         | DENY     |                               | EMERGENCY_NOT_PERMITTED |
| 12| a clinician gives an emergency reason that is not a real reason       | DENY     |                               | EMERGENCY_REASON_INSUFFICIENT |
| 13| a clinician (gp, practice nurse, specialist) gives a real reason      | PERMIT   | EMERGENCY (flagged)           | EMERGENCY_ACCESS        |
| 14| no active care relationship                                           | DENY     |                               | NO_CARE_RELATIONSHIP    |
| 15| otherwise                                                             | DENY     |                               | NO_CONSENT              |

An empty record holder means the subject's own organisation, except for measurements
(rule 7): they are held by the organisation that measured them, and a question about
reading or updating them that does not say which one is refused, never decided as if the
asker held them. Creating measurements (bulk ingest) records the subject's own.

A real emergency reason (rules 12 and 13) names a situation of a small vocabulary and
explains it (``unconscious-patient: admitted unconscious at the ER, no relatives``); filler
is refused (see :mod:`identity.emergency`). Code cannot check that a reason is true: every
emergency access is flagged in the log for the privacy officer's review, the real control.

Rule 8 is the Mitz referral exception: the referral message may reach its target without a
consent profile; any further sharing needs one. Rules 11-13 come after the normal bases, so
an emergency is flagged only when nothing else would have permitted the access.

Rule S is an organisation's system client (realm role ``delegate``, e.g. a practice's KIS)
calling as itself, without naming a person in ``x-carenet-on-behalf-of`` (a delegate acting
for a person is decided with that person's roles, never ``delegate``). It may read the
referral data its own organisation holds or receives, as its organisation's clinicians
may, and nothing else:

| #  | when                                                                 | decision | basis             | reason               |
|----|----------------------------------------------------------------------|----------|-------------------|----------------------|
| S1 | anything but reading referral data (other categories, any write)    | DENY     |                   | ROLE_NOT_PERMITTED   |
| S2 | its organisation is unknown or of another care group                 | DENY     |                   | UNKNOWN_ORGANISATION |
| S3 | its organisation is the referral's target (context from the referral | PERMIT   | REFERRAL_TARGET   | REFERRAL_TARGET      |
|    | service, as rule 8)                                                  |          |                   |                      |
| S4 | another organisation holds the referral data                         | DENY     |                   | ROLE_NOT_PERMITTED   |
| S5 | its organisation holds it, with an active care relationship          | PERMIT   | CARE_RELATIONSHIP | CARE_RELATIONSHIP    |
|    | otherwise                                                            | DENY     |                   | NO_CARE_RELATIONSHIP |

Writes as itself are never permitted: they need a named person (the header), whose roles
then decide. No consent, emergency or other basis opens anything else to a system as itself.

A patient identity does not know in the subject's care group (none such, or another care
group's) is decided by :func:`decide_unknown_patient`: exactly as a patient who exists and
has no care relationship or consent with anyone, except that nothing is permitted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from identity import emergency
from identity.models import Action, ConsentTerms, DataCategory, OrgRef, RelationshipWindow
from servicekit.auth import CLINICIAN_ROLES, DELEGATE_ROLE

CARE_ROLES = frozenset(
    {"gp", "practice-nurse", "specialist", "sport-coach", "municipality-officer", "provider"}
)


class Decision(enum.StrEnum):
    PERMIT = "permit"
    DENY = "deny"


class Basis(enum.StrEnum):
    NONE = ""
    SELF = "self"
    CARE_RELATIONSHIP = "care-relationship"
    CARE_RELATIONSHIP_AND_CONSENT = "care-relationship-and-consent"
    REFERRAL_TARGET = "referral-target"
    EMERGENCY = "emergency"
    AUDIT = "audit"


@dataclass(frozen=True)
class Question:
    """Everything the table looks at, already resolved from the database."""

    roles: frozenset[str]
    subject_patient_id: str
    subject_organisation: OrgRef | None
    subject_care_group_id: str
    patient_id: str
    data_category: DataCategory
    action: Action
    record_holder: OrgRef | None
    relationships: Sequence[RelationshipWindow]
    consents: Sequence[ConsentTerms]
    referral_target_id: str
    emergency_reason: str
    now: dt.datetime


@dataclass(frozen=True)
class Answer:
    decision: Decision
    basis: Basis
    reason: str
    emergency: bool = False

    @property
    def permitted(self) -> bool:
        return self.decision is Decision.PERMIT


def _deny(reason: str) -> Answer:
    return Answer(Decision.DENY, Basis.NONE, reason)


def _by_kind_of_subject(q: Question) -> Answer | None:
    """Rules 1, S and 2-4: subjects that are no organisation's care staff."""
    if "insurer-analyst" in q.roles:
        return _deny("INSURER_NO_PATIENT_DATA")
    if DELEGATE_ROLE in q.roles:
        return _organisation_system(q)
    if "patient" in q.roles and q.subject_patient_id:
        if q.subject_patient_id == q.patient_id:
            return Answer(Decision.PERMIT, Basis.SELF, "OWN_DATA")
        return _deny("NOT_OWN_DATA")
    if "auditor" in q.roles and q.data_category is DataCategory.ACCESS_LOG:
        return Answer(Decision.PERMIT, Basis.AUDIT, "AUDITOR")
    return None


def decide(q: Question) -> Answer:
    settled = _by_kind_of_subject(q)
    if settled is not None:
        return settled
    if not q.roles & CARE_ROLES:
        return _deny("ROLE_NOT_PERMITTED")
    org = q.subject_organisation
    if org is None or org.care_group_id != q.subject_care_group_id:
        return _deny("UNKNOWN_ORGANISATION")
    if (
        q.data_category is DataCategory.MEASUREMENTS
        and q.action is not Action.CREATE
        and q.record_holder is None
    ):
        return _deny("RECORD_HOLDER_REQUIRED")
    if (
        q.referral_target_id
        and q.referral_target_id == org.id
        and q.data_category is DataCategory.REFERRAL
        and q.action in (Action.READ, Action.UPDATE)
    ):
        return Answer(Decision.PERMIT, Basis.REFERRAL_TARGET, "REFERRAL_TARGET")
    related = any(r.organisation_id == org.id and r.active_at(q.now) for r in q.relationships)
    holder = q.record_holder or org
    if related and holder.id == org.id:
        return Answer(Decision.PERMIT, Basis.CARE_RELATIONSHIP, "CARE_RELATIONSHIP")
    if related and any(
        c.covers(record_holder=holder, data_category=q.data_category, requester=org, moment=q.now)
        for c in q.consents
    ):
        return Answer(Decision.PERMIT, Basis.CARE_RELATIONSHIP_AND_CONSENT, "CONSENT")
    if q.emergency_reason.strip():
        return _emergency(q)
    if not related:
        return _deny("NO_CARE_RELATIONSHIP")
    return _deny("NO_CONSENT")


def _organisation_system(q: Question) -> Answer:
    """Rules S1-S5: an organisation's system client acting as itself reads the referral
    data its organisation holds or receives, and nothing else (a person's roles are never
    ``delegate``, so this is never a delegate acting for a person)."""
    if q.data_category is not DataCategory.REFERRAL or q.action is not Action.READ:
        return _deny("ROLE_NOT_PERMITTED")
    org = q.subject_organisation
    if org is None or org.care_group_id != q.subject_care_group_id:
        return _deny("UNKNOWN_ORGANISATION")
    if q.referral_target_id and q.referral_target_id == org.id:
        return Answer(Decision.PERMIT, Basis.REFERRAL_TARGET, "REFERRAL_TARGET")
    holder = q.record_holder or org
    if holder.id != org.id:
        return _deny("ROLE_NOT_PERMITTED")
    if any(r.organisation_id == org.id and r.active_at(q.now) for r in q.relationships):
        return Answer(Decision.PERMIT, Basis.CARE_RELATIONSHIP, "CARE_RELATIONSHIP")
    return _deny("NO_CARE_RELATIONSHIP")


def _emergency(q: Question) -> Answer:
    """Rules 11-13: break the glass, for clinicians with a real reason only."""
    if not q.roles & CLINICIAN_ROLES:
        return _deny("EMERGENCY_NOT_PERMITTED")
    if not is_real_emergency_reason(q.emergency_reason):
        return _deny("EMERGENCY_REASON_INSUFFICIENT")
    return Answer(Decision.PERMIT, Basis.EMERGENCY, "EMERGENCY_ACCESS", emergency=True)


def decide_unknown_patient(q: Question) -> Answer:
    """The answer for a patient identity does not know in the subject's care group: the one
    for a patient who exists without any care relationship, consent or referral, so that the
    answer never tells whether the patient exists; what that would permit (the patient's
    own id, an auditor, an emergency) is refused as NO_CARE_RELATIONSHIP."""
    answer = decide(dataclasses.replace(q, relationships=(), consents=(), referral_target_id=""))
    return _deny("NO_CARE_RELATIONSHIP") if answer.permitted else answer


def is_real_emergency_reason(reason: str) -> bool:
    """A situation of the vocabulary and an explanation that is not filler (see
    :mod:`identity.emergency`)."""
    return emergency.is_real_reason(reason)
