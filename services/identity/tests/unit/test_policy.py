"""The decision table of identity.policy, rule by rule, with plain objects."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from identity.models import (
    Action,
    Consent,
    ConsentTerms,
    DataCategory,
    OrgRef,
    RelationshipWindow,
)
from identity.policy import Basis, Decision, Question, decide

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
GP = OrgRef("gp-a", "gp-practice", "cg")
HOSPITAL = OrgRef("hosp-a", "hospital", "cg")
FOREIGN = OrgRef("hosp-x", "hospital", "cg-other")


def _relationship(org: OrgRef, *, ended: bool = False) -> RelationshipWindow:
    return RelationshipWindow(
        organisation_id=org.id,
        start_time=NOW - dt.timedelta(days=30),
        end_time=NOW - dt.timedelta(days=1) if ended else None,
    )


def _consent(category: str = "care-plan", requester: str = "hospital") -> ConsentTerms:
    return Consent(
        id="c",
        patient_id="p1",
        record_holder_type="gp-practice",
        record_holder_id=None,
        data_category=category,
        requester_type=requester,
        requester_id=None,
        start_time=NOW - dt.timedelta(days=30),
        end_time=None,
        withdraw_time=None,
        recorded_by="p",
    ).terms


def _q(**kw: object) -> Question:
    values: dict[str, object] = {
        "roles": frozenset({"specialist"}),
        "subject_patient_id": "",
        "subject_organisation": HOSPITAL,
        "subject_care_group_id": "cg",
        "patient_id": "p1",
        "data_category": DataCategory.CARE_PLAN,
        "action": Action.READ,
        "record_holder": GP,
        "relationships": [_relationship(HOSPITAL)],
        "consents": [_consent()],
        "referral_target_id": "",
        "emergency_reason": "",
        "now": NOW,
    }
    values.update(kw)
    return Question(**values)  # type: ignore[arg-type]


def test_an_insurer_never_gets_patient_data_even_with_relationship_and_consent() -> None:
    answer = decide(_q(roles=frozenset({"insurer-analyst", "gp"})))
    assert (answer.decision, answer.reason) == (Decision.DENY, "INSURER_NO_PATIENT_DATA")


def test_a_patient_may_access_their_own_data() -> None:
    answer = decide(
        _q(roles=frozenset({"patient"}), subject_patient_id="p1", subject_organisation=None)
    )
    assert (answer.decision, answer.basis) == (Decision.PERMIT, Basis.SELF)


def test_a_patient_may_not_access_another_patients_data() -> None:
    answer = decide(
        _q(roles=frozenset({"patient"}), subject_patient_id="p2", subject_organisation=None)
    )
    assert (answer.decision, answer.reason) == (Decision.DENY, "NOT_OWN_DATA")


def test_the_record_holder_with_a_care_relationship_needs_no_consent() -> None:
    answer = decide(
        _q(
            subject_organisation=GP,
            record_holder=None,
            relationships=[_relationship(GP)],
            consents=[],
        )
    )
    assert (answer.decision, answer.basis) == (Decision.PERMIT, Basis.CARE_RELATIONSHIP)


def test_another_organisation_needs_a_care_relationship_and_a_covering_consent() -> None:
    assert decide(_q()).basis is Basis.CARE_RELATIONSHIP_AND_CONSENT
    assert decide(_q(consents=[])).reason == "NO_CONSENT"
    assert decide(_q(relationships=[])).reason == "NO_CARE_RELATIONSHIP"
    assert (
        decide(_q(relationships=[_relationship(HOSPITAL, ended=True)])).reason
        == "NO_CARE_RELATIONSHIP"
    )
    assert decide(_q(consents=[_consent(category="measurements")])).reason == "NO_CONSENT"
    assert decide(_q(consents=[_consent(requester="municipality")])).reason == "NO_CONSENT"


def test_the_referral_target_may_read_and_update_that_referral_without_consent() -> None:
    base = {
        "data_category": DataCategory.REFERRAL,
        "relationships": [],
        "consents": [],
        "referral_target_id": HOSPITAL.id,
    }
    assert decide(_q(**base)).basis is Basis.REFERRAL_TARGET
    assert decide(_q(**base, action=Action.UPDATE)).basis is Basis.REFERRAL_TARGET
    assert decide(_q(**base, action=Action.CREATE)).decision is Decision.DENY
    assert (
        decide(_q(**(base | {"data_category": DataCategory.CARE_PLAN}))).decision is Decision.DENY
    )
    assert decide(_q(**(base | {"referral_target_id": "someone-else"}))).decision is Decision.DENY


def test_a_clinician_in_an_emergency_is_permitted_and_flagged() -> None:
    answer = decide(
        _q(
            relationships=[],
            consents=[],
            emergency_reason="unconscious-patient: brought in unconscious at the ER",
        )
    )
    assert (answer.decision, answer.basis, answer.emergency) == (
        Decision.PERMIT,
        Basis.EMERGENCY,
        True,
    )


def test_an_emergency_is_not_flagged_when_a_normal_basis_permits() -> None:
    answer = decide(_q(emergency_reason="just in case"))
    assert (answer.basis, answer.emergency) == (Basis.CARE_RELATIONSHIP_AND_CONSENT, False)


@pytest.mark.parametrize("role", ["sport-coach", "municipality-officer", "provider"])
def test_only_clinicians_may_claim_an_emergency(role: str) -> None:
    answer = decide(
        _q(roles=frozenset({role}), relationships=[], consents=[], emergency_reason="urgent")
    )
    assert answer.decision is Decision.DENY


@pytest.mark.parametrize(
    "roles",
    [frozenset(), frozenset({"auditor"}), frozenset({"care-group-admin"}), frozenset({"service"})],
)
def test_roles_without_a_care_role_are_denied(roles: frozenset[str]) -> None:
    assert decide(_q(roles=roles)).reason == "ROLE_NOT_PERMITTED"


def test_an_auditor_may_read_the_access_log() -> None:
    answer = decide(_q(roles=frozenset({"auditor"}), data_category=DataCategory.ACCESS_LOG))
    assert answer.basis is Basis.AUDIT


def test_an_organisation_of_another_care_group_is_denied() -> None:
    assert decide(_q(subject_organisation=FOREIGN)).reason == "UNKNOWN_ORGANISATION"
    assert decide(_q(subject_organisation=None)).reason == "UNKNOWN_ORGANISATION"


def test_every_question_gets_a_decision_and_permits_always_carry_a_basis() -> None:
    roles = [
        "gp",
        "specialist",
        "sport-coach",
        "provider",
        "insurer-analyst",
        "auditor",
        "patient",
        "service",
    ]
    for role, category, action, related, consented in itertools.product(
        roles, list(DataCategory), list(Action), (True, False), (True, False)
    ):
        answer = decide(
            _q(
                roles=frozenset({role}),
                subject_patient_id="p1" if role == "patient" else "",
                data_category=category,
                action=action,
                relationships=[_relationship(HOSPITAL)] if related else [],
                consents=[_consent(category=category.value)] if consented else [],
            )
        )
        assert answer.decision in (Decision.PERMIT, Decision.DENY)
        assert answer.reason
        assert (answer.decision is Decision.PERMIT) == (answer.basis is not Basis.NONE)
