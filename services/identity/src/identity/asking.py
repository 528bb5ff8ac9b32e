"""What ``Authorize`` believes of the caller who asks, when that caller is not a platform
service account (role ``service``) but an end user or a delegate client asking directly.

An end user asking is asking "may I?"; nothing in their request is vouched for by a
service that owns the fact, so:

- the access point logged is the caller's own client id (from the token); an
  ``access_point`` they send is ignored;
- ``purpose`` is kept only when it is one of :data:`PURPOSES`; any other text is dropped,
  so that no free text from a caller reaches the patient's view of their log;
- a claim to hold the record (``record_holder`` naming the caller's own organisation, or
  left empty, which means the same) is believed only for a data category the caller's type
  of organisation produces (:data:`PRODUCERS`); otherwise the answer is DENY
  ``RECORD_HOLDER_NOT_PRODUCER``. Identity cannot know who really holds a record: this
  keeps an end user from obtaining, and the log from recording, a PERMIT for holding
  something their kind of organisation never holds (a lifestyle provider "holding" a GP's
  care plan). The services that hold the data name the real holder.
"""

from __future__ import annotations

from identity.models import DataCategory

PURPOSES = frozenset(
    {
        "treatment",
        "care-coordination",
        "referral",
        "emergency",
        "patient-request",
        "list-measurements",
        "quality-review",
    }
)

# The data categories each type of organisation produces (and so may hold).
PRODUCERS: dict[DataCategory, frozenset[str]] = {
    DataCategory.CARE_PLAN: frozenset({"gp-practice"}),
    DataCategory.REFERRAL: frozenset({"gp-practice"}),
    DataCategory.MEASUREMENTS: frozenset({"gp-practice", "hospital"}),
}

RECORD_HOLDER_NOT_PRODUCER = "RECORD_HOLDER_NOT_PRODUCER"


def purpose_of(purpose: str) -> str:
    """The purpose kept for an end user's question: one of the vocabulary, or ''."""
    return purpose if purpose in PURPOSES else ""


def may_hold(organisation_type: str, category: DataCategory) -> bool:
    producers = PRODUCERS.get(category)
    return producers is None or organisation_type in producers
