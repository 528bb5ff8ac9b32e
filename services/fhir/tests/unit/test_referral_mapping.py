"""ServiceRequest, Task and HealthcareService over every enum value (no platform)."""

from __future__ import annotations

import pytest
from fhir_api.resources import referral
from fhir_api.resources.common import Codes
from google.protobuf.timestamp_pb2 import Timestamp

from carenet.referral.v1 import referral_pb2 as pb

from ..valuesets import DAYS_OF_WEEK, GRAVITY_CAPACITY, GRAVITY_TASK_STATUS, REQUEST_STATUS, valid

CODES = Codes("https://carenet.example/fhir")
STATUSES = [v for v in pb.ReferralStatus.values() if v]
REFERRER = "organisations/gp-de-linde"
TARGET = "organisations/gli-beweegfit"


def _referral(status: int, **fields: object) -> pb.Referral:
    return pb.Referral(
        name="patients/p-0001/referrals/r-1",
        offer="offers/o-1",
        reason="BMI 31, wil meer bewegen",
        status=status,  # type: ignore[arg-type]
        referrer_organisation=REFERRER,
        target_organisation=TARGET,
        create_time=Timestamp(seconds=1_700_000_000),
        update_time=Timestamp(seconds=1_700_000_500),
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("status", STATUSES, ids=pb.ReferralStatus.Name)
def test_every_referral_status_is_a_gravity_task_status(status: int) -> None:
    found = _referral(status)
    task = valid(referral.task(found, CODES))
    request = valid(referral.service_request(found, CODES))
    assert task["status"] in GRAVITY_TASK_STATUS
    # each carenet status is its own Task status, spelled alike
    assert task["status"] == pb.ReferralStatus.Name(status).removeprefix(  # type: ignore[arg-type]
        "REFERRAL_STATUS_"
    ).lower().replace("_", "-")
    assert request["status"] in REQUEST_STATUS
    assert task["intent"] == request["intent"] == "order"
    assert task["code"]["coding"] == [
        {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
    ]
    assert task["focus"] == {"reference": "ServiceRequest/p-0001.r-1"}
    assert task["for"] == request["subject"] == {"reference": "Patient/p-0001"}
    assert task["requester"] == {"reference": "Organization/gp-de-linde"}
    assert task["owner"] == {"reference": "Organization/gli-beweegfit"}
    assert task["authoredOn"] == request["authoredOn"] == "2023-11-14T22:13:20Z"


def test_the_task_statuses_are_distinct_and_the_service_request_follows_gravity() -> None:
    tasks = {referral.task(_referral(s), CODES)["status"] for s in STATUSES}
    assert len(tasks) == len(STATUSES)
    requests = {
        pb.ReferralStatus.Name(s): referral.service_request(_referral(s), CODES)["status"]
        for s in STATUSES
    }
    assert requests == {
        "REFERRAL_STATUS_DRAFT": "draft",
        "REFERRAL_STATUS_REQUESTED": "active",
        "REFERRAL_STATUS_ACCEPTED": "active",
        "REFERRAL_STATUS_REJECTED": "active",
        "REFERRAL_STATUS_CANCELLED": "revoked",
        "REFERRAL_STATUS_IN_PROGRESS": "active",
        "REFERRAL_STATUS_ON_HOLD": "active",
        "REFERRAL_STATUS_FAILED": "active",
        "REFERRAL_STATUS_COMPLETED": "completed",
        "REFERRAL_STATUS_ENTERED_IN_ERROR": "entered-in-error",
    }


@pytest.mark.parametrize(
    "status",
    [
        pb.REFERRAL_STATUS_REJECTED,
        pb.REFERRAL_STATUS_CANCELLED,
        pb.REFERRAL_STATUS_ON_HOLD,
        pb.REFERRAL_STATUS_FAILED,
    ],
    ids=pb.ReferralStatus.Name,
)
def test_a_closed_or_paused_task_always_says_why(status: int) -> None:
    assert referral.task(_referral(status), CODES)["statusReason"]["text"]
    given = referral.task(_referral(status, status_reason="Geen plek"), CODES)
    assert given["statusReason"] == {"text": "Geen plek"}
    for business in (b for b in pb.BusinessStatus.values() if b):
        task = valid(referral.task(_referral(status, business_status=business), CODES))
        assert task["statusReason"]["text"] == referral.BUSINESS_STATUS_TEXT[business]
        coding = task["businessStatus"]["coding"][0]
        assert (
            coding["system"] == "https://carenet.example/fhir/CodeSystem/referral-business-status"
        )


def test_an_open_task_has_no_invented_reason() -> None:
    assert "statusReason" not in referral.task(_referral(pb.REFERRAL_STATUS_ACCEPTED), CODES)


def test_a_cancellation_by_the_target_leaves_the_request_to_the_requester() -> None:
    def cancelled_by(organisation: str) -> pb.Referral:
        change = pb.StatusChange(
            from_status=pb.REFERRAL_STATUS_REQUESTED,
            to_status=pb.REFERRAL_STATUS_CANCELLED,
            actor_organisation=organisation,
        )
        return _referral(pb.REFERRAL_STATUS_CANCELLED, history=[change])

    assert referral.service_request(cancelled_by(REFERRER), CODES)["status"] == "revoked"
    assert referral.service_request(cancelled_by(TARGET), CODES)["status"] == "active"
    assert referral.task(cancelled_by(TARGET), CODES)["status"] == "cancelled"


def test_a_waitlisted_referral_says_so_and_where() -> None:
    found = _referral(
        pb.REFERRAL_STATUS_ACCEPTED,
        enrolment=pb.ENROLMENT_NOT_ENROLLED_ON_WAITLIST,
        waitlist_position=3,
    )
    task = valid(referral.task(found, CODES))
    assert task["businessStatus"]["coding"][0]["code"] == "waitlisted"
    assert "3" in task["businessStatus"]["text"]


def test_feedback_is_task_output_for_every_attendance_and_enrolment() -> None:
    for attendance in pb.Attendance.values():
        for enrolment in pb.Enrolment.values():
            outcome = pb.ReferralOutcome(
                attendance=attendance,
                enrolment=enrolment,
                sessions_attended=7,
                sessions_planned=10,
                result_summary="5 kg afgevallen",
                measurements=[pb.Measurement(code="weight-change", value=-5, unit="kg")],
            )
            task = valid(
                referral.task(_referral(pb.REFERRAL_STATUS_COMPLETED, outcome=outcome), CODES)
            )
            outputs = {o["type"]["coding"][0]["code"]: o for o in task["output"]}
            assert outputs["sessions-attended"]["valueInteger"] == 7
            assert outputs["sessions-planned"]["valueInteger"] == 10
            assert outputs["result-summary"]["valueString"] == "5 kg afgevallen"
            assert outputs["measurement-weight-change"]["valueQuantity"] == {
                "value": -5,
                "unit": "kg",
                "system": "http://unitsofmeasure.org",
                "code": "kg",
            }
            assert ("attendance" in outputs) == bool(attendance)
            assert ("enrolment" in outputs) == bool(enrolment)


def test_every_offer_value_is_a_valid_healthcare_service() -> None:
    for category in pb.OfferCategory.values():
        for level in pb.RecognitionLevel.values():
            for capacity in pb.CapacityStatus.values():
                offer = pb.Offer(
                    name="offers/o-1",
                    display_name="GLI CooL",
                    owner_organisation=TARGET,
                    category=category,
                    state=pb.OFFER_STATE_LISTED,
                    recognition=pb.Recognition(level=level),
                    capacity=pb.Capacity(status=capacity, notes="2 plaatsen"),
                    cost_options=[
                        pb.CostOption(funding=f, amount_cents=1250 * f) for f in pb.Funding.values()
                    ],
                    languages=["nl", "en"],
                    schedules=[
                        pb.Schedule(byday=["MO", "TH"], opens_at="09:30", closes_at="11:00")
                    ],
                )
                service = valid(referral.healthcare_service(offer, CODES))
                assert service["providedBy"] == {"reference": "Organization/gli-beweegfit"}
                assert set(service["availableTime"][0]["daysOfWeek"]) <= DAYS_OF_WEEK
                assert service["availableTime"][0]["availableStartTime"] == "09:30:00"
                if capacity:
                    [ext] = service["extension"]
                    code = ext["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
                    assert code in GRAVITY_CAPACITY
                else:
                    assert "extension" not in service
    for state in pb.OfferState.values():
        offer = pb.Offer(name="offers/o-1", display_name="x", state=state)
        assert valid(referral.healthcare_service(offer, CODES))["active"] == (
            state == pb.OFFER_STATE_LISTED
        )
