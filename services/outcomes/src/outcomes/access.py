"""Who may read and write a patient's enrolments and measurements: identity is asked (data
category MEASUREMENTS) before every read or write.

**Record holders.** A measurement's record holder is the organisation that submitted it
(the ingesting user's organisation: the measurement is a copy of that organisation's
record); an enrolment's is its practice. A read asks identity once per distinct record
holder of the patient's data, naming that holder, so that identity applies the rule that
fits: a caller reading its own organisation's record needs a care relationship, a caller
reading another organisation's record needs a care relationship *and* the patient's consent
for that record holder, data category and requester. Only the data of holders that permit
is returned; each question is one decision and one access-log entry at identity. A patient
with no data of this kind is asked about as the caller's own organisation's record (named as
record holder), so that the answer still depends on the caller's care relationship.

**One access per record holder.** A read of a patient's measurements (or enrolments) is one
access per record holder whose records it reaches for: each holder's records are a record
of their own, under their own consent, so each gets one decision and one access-log entry,
which says whether that holder's records were read (PERMIT: ``CARE_RELATIONSHIP`` for the
caller's own organisation's, ``CONSENT`` for another's) or withheld (DENY ``NO_CONSENT``).
The caller's own organisation's record is asked about first. A refusal that does not depend
on the holder (no care relationship, a role that reads no patient data) ends the read at
the first holder: the call reads nothing, so it logs one DENY and asks about no other
holder.

**One refusal.** A refusal is identity's (servicekit.authorization.refusal): PERMISSION_DENIED
with identity's reason and that reason's fixed message. identity answers a patient it does
not know (none such, or another care group's) exactly as one the caller has no care
relationship with, so a patient the caller may not see and one who does not exist get the
same error here, and the same row reason in an ingest or a batch of enrolments.
"""

from __future__ import annotations

from collections.abc import Sequence

from outcomes.base import organisation_of, refuse_insurer
from outcomes.deps import Deps
from servicekit.admission import decide
from servicekit.auth import Principal
from servicekit.identity_client import Access, AccessDecision, AccessQuestion, refusal

# identity's refusals that depend on whose record is read: another holder may still permit.
PER_HOLDER_REFUSALS = frozenset({"NO_CONSENT"})


def permitted_holders(
    deps: Deps, principal: Principal, patient_id: str, holders: Sequence[str], purpose: str
) -> list[str]:
    """The record holders among ``holders`` whose records of the patient the caller may
    read, asking identity once per holder, the caller's own organisation first (an empty
    holder, none recorded, is never readable). A refusal other than ``NO_CONSENT`` is raised
    at once; when identity permits none, its refusal of the first is raised."""
    refuse_insurer(principal)
    own = organisation_of(principal)
    named = [h for h in dict.fromkeys(holders) if h]
    named.sort(key=lambda h: h != own)  # the caller's own organisation's record first
    decisions: list[tuple[str, AccessDecision]] = []
    for holder in named or [own]:
        decision = deps.identity.authorize(
            AccessQuestion(principal, patient_id, Access.READ, holder, purpose)
        )
        decisions.append((holder, decision))
        if not decision.permitted and decision.reason not in PER_HOLDER_REFUSALS:
            # The same refusal for every holder: the call reads nothing, and asks (and
            # logs) no access it does not make.
            raise refusal(decision)
    permitted = [h for h, d in decisions if d.permitted]
    if not permitted:
        raise refusal(decisions[0][1])
    return permitted if named else []


def require_permit(deps: Deps, principal: Principal, patient_id: str, purpose: str) -> None:
    """A create in the caller's own organisation's record of the patient."""
    decide(deps.identity, AccessQuestion(principal, patient_id, Access.CREATE, purpose=purpose))
