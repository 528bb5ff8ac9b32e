"""What a create answers when the caller's organisation already has an open referral of the
patient for the offer.

At most one referral per patient, offer and referring organisation is open (the unique
``open_key`` of ``referral.models.Referral``): another organisation's open referral is no
duplicate, so a create never reveals that one exists (the caller gets a new referral, as
when there is none). A duplicate is always a referral of the caller's own organisation.

The open referral is the patient's data, held by the organisation that made it. A create
names it (ALREADY_EXISTS ``DUPLICATE_OPEN_REFERRAL`` with ``existing_referral``) only to a
caller who may read it: identity is asked the question a ``GetReferral`` of that referral
asks (its referral context and its record holder, the referring organisation; one
access-log entry), and the caller must be a party to it. Anyone else gets exactly what that
``GetReferral`` answers them: identity's refusal (e.g. ``NO_CONSENT``) or
``NOT_A_PARTY_TO_REFERRAL``, never the referral's name.

A create finds the duplicate before it asks identity about a create
(referral.use_cases.referrals), so this read is the one question a refused duplicate asks
and the access log says what happened: the open referral was read, nothing was created.
Only a duplicate committed concurrently, between that check and the write, is refused
after a create permit.
"""

from __future__ import annotations

from referral import errors
from referral.access import party_of, question_about
from referral.models import Referral
from servicekit.admission import decide
from servicekit.auth import Principal
from servicekit.identity_client import Access, IdentityClient


def refuse_duplicate(
    identity: IdentityClient, principal: Principal, patient_id: str, duplicate: Referral
) -> Exception:
    """The error a create answers for ``duplicate``; raises the read's refusal instead when
    the caller may not read it."""
    decide(identity, question_about(principal, patient_id, duplicate, Access.READ))
    if party_of(principal, duplicate) is None:
        return errors.NotReferralParty("not a party to this referral")
    return errors.DuplicateReferral(
        f"an open referral exists: {duplicate.name}",
        metadata={"existing_referral": duplicate.name},
    )
