"""Rule S of the decision table (identity.policy): an organisation's system client (realm
role ``delegate``, a practice's KIS) acting as itself reads the referral data its own
organisation holds or receives, and nothing else."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from identity.models import Action, Consent, DataCategory, OrgRef, RelationshipWindow
from identity.policy import Basis, Decision, Question, decide, decide_unknown_patient

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PRACTICE = OrgRef("gp-de-linde", "gp-practice", "cg")
OTHER_PRACTICE = OrgRef("gp-het-anker", "gp-practice", "cg")
FOREIGN_PRACTICE = OrgRef("gp-noord", "gp-practice", "cg-noord")


def _related(org: OrgRef, *, ended: bool = False) -> RelationshipWindow:
    return RelationshipWindow(
        organisation_id=org.id,
        start_time=NOW - dt.timedelta(days=30),
        end_time=NOW - dt.timedelta(days=1) if ended else None,
    )


def _consent_to_practices(category: DataCategory) -> Consent:
    """A consent that would open ``category`` of any GP practice to any GP practice."""
    return Consent(
        id="c",
        patient_id="p1",
        record_holder_type="gp-practice",
        record_holder_id=None,
        data_category=category.value,
        requester_type="gp-practice",
        requester_id=None,
        start_time=NOW - dt.timedelta(days=30),
        end_time=None,
        withdraw_time=None,
        recorded_by="p",
    )


SYSTEM = Question(
    roles=frozenset({"delegate"}),
    subject_patient_id="",
    subject_organisation=PRACTICE,
    subject_care_group_id="cg",
    patient_id="p1",
    data_category=DataCategory.REFERRAL,
    action=Action.READ,
    record_holder=None,
    relationships=(_related(PRACTICE), _related(OTHER_PRACTICE)),
    consents=(),
    referral_target_id="",
    emergency_reason="",
    now=NOW,
)


def _outcome(q: Question) -> tuple[Decision, Basis, str]:
    answer = decide(q)
    return answer.decision, answer.basis, answer.reason


def test_the_system_reads_referral_data_its_organisation_holds() -> None:
    assert _outcome(SYSTEM) == (Decision.PERMIT, Basis.CARE_RELATIONSHIP, "CARE_RELATIONSHIP")
    named = dataclasses.replace(SYSTEM, record_holder=PRACTICE)
    assert _outcome(named) == (Decision.PERMIT, Basis.CARE_RELATIONSHIP, "CARE_RELATIONSHIP")


def test_the_system_reads_a_referral_its_organisation_receives() -> None:
    received = dataclasses.replace(
        SYSTEM,
        record_holder=OTHER_PRACTICE,
        relationships=(_related(OTHER_PRACTICE),),
        referral_target_id=PRACTICE.id,
    )
    assert _outcome(received) == (Decision.PERMIT, Basis.REFERRAL_TARGET, "REFERRAL_TARGET")


def test_the_system_never_reads_another_organisations_referral_data() -> None:
    """Even where the patient's consent would open it to the practice's clinicians."""
    other = dataclasses.replace(
        SYSTEM,
        record_holder=OTHER_PRACTICE,
        consents=(_consent_to_practices(DataCategory.REFERRAL).terms,),
    )
    assert _outcome(other) == (Decision.DENY, Basis.NONE, "ROLE_NOT_PERMITTED")
    addressed_elsewhere = dataclasses.replace(other, referral_target_id="gli-beweegfit")
    assert _outcome(addressed_elsewhere) == (Decision.DENY, Basis.NONE, "ROLE_NOT_PERMITTED")


@pytest.mark.parametrize(
    "category",
    [
        DataCategory.CARE_PLAN,
        DataCategory.MEASUREMENTS,
        DataCategory.PATIENT_RECORD,
        DataCategory.CONSENT,
        DataCategory.ACCESS_LOG,
    ],
)
def test_the_system_reads_no_other_category_as_itself(category: DataCategory) -> None:
    """Not even held by its own organisation, with a care relationship, a consent, or a
    real emergency reason."""
    q = dataclasses.replace(
        SYSTEM,
        data_category=category,
        record_holder=PRACTICE,
        consents=(_consent_to_practices(category).terms,),
        emergency_reason="unconscious-patient: admitted unconscious at the ER, no relatives",
    )
    assert _outcome(q) == (Decision.DENY, Basis.NONE, "ROLE_NOT_PERMITTED")


@pytest.mark.parametrize("action", [Action.CREATE, Action.UPDATE])
def test_the_system_writes_nothing_as_itself(action: Action) -> None:
    own = dataclasses.replace(SYSTEM, action=action)
    assert _outcome(own) == (Decision.DENY, Basis.NONE, "ROLE_NOT_PERMITTED")
    received = dataclasses.replace(own, referral_target_id=PRACTICE.id)
    assert _outcome(received) == (Decision.DENY, Basis.NONE, "ROLE_NOT_PERMITTED")


def test_no_care_relationship_no_referral_data() -> None:
    ended = dataclasses.replace(SYSTEM, relationships=(_related(PRACTICE, ended=True),))
    assert _outcome(ended) == (Decision.DENY, Basis.NONE, "NO_CARE_RELATIONSHIP")
    none = dataclasses.replace(SYSTEM, relationships=())
    assert _outcome(none) == (Decision.DENY, Basis.NONE, "NO_CARE_RELATIONSHIP")


def test_an_organisation_of_another_care_group_is_unknown() -> None:
    foreign = dataclasses.replace(SYSTEM, subject_organisation=FOREIGN_PRACTICE)
    assert _outcome(foreign) == (Decision.DENY, Basis.NONE, "UNKNOWN_ORGANISATION")
    missing = dataclasses.replace(SYSTEM, subject_organisation=None)
    assert _outcome(missing) == (Decision.DENY, Basis.NONE, "UNKNOWN_ORGANISATION")


def test_care_roles_beside_delegate_open_nothing_more() -> None:
    """A system client's token with a care role beside ``delegate`` still decides as a
    system acting as itself (a person acted for never carries ``delegate``)."""
    q = dataclasses.replace(
        SYSTEM, roles=frozenset({"delegate", "gp"}), data_category=DataCategory.CARE_PLAN
    )
    assert _outcome(q) == (Decision.DENY, Basis.NONE, "ROLE_NOT_PERMITTED")


def test_an_unknown_patient_is_answered_like_one_without_a_relationship() -> None:
    answer = decide_unknown_patient(dataclasses.replace(SYSTEM, referral_target_id=PRACTICE.id))
    assert (answer.decision, answer.reason) == (Decision.DENY, "NO_CARE_RELATIONSHIP")
    write = decide_unknown_patient(dataclasses.replace(SYSTEM, action=Action.UPDATE))
    assert (write.decision, write.reason) == (Decision.DENY, "ROLE_NOT_PERMITTED")
