"""Identity's RPCs end to end over a real server, with real tokens from the local issuer."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer
from testkit.rpc import Failure, failure

Stub = rpc_grpc.IdentityServiceStub


def _fails(call: object, request: object, metadata: object) -> Failure:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=metadata, timeout=5)  # type: ignore[operator]
    fail = failure(caught.value)
    assert fail.error_infos == 1, "every error carries exactly one ErrorInfo"
    assert fail.domain == "identity.carenet"
    return fail


def _whole_log(stub: Stub, patient: str, metadata: object) -> list[pb.AccessLogEntry]:
    """Every entry of a patient's access log, page by page."""
    entries: list[pb.AccessLogEntry] = []
    token = ""
    while True:
        page = stub.ListAccessLogEntries(
            rpc.ListAccessLogEntriesRequest(patient=patient, page_size=500, page_token=token),
            metadata=metadata,  # type: ignore[arg-type]
            timeout=10,
        )
        entries.extend(page.access_log_entries)
        token = page.next_page_token
        if not token:
            return entries


def _new_bsn() -> str:
    while True:
        head = f"{uuid.uuid4().int % 10**8:08d}"
        total = sum(w * int(d) for w, d in zip((9, 8, 7, 6, 5, 4, 3, 2), head, strict=True))
        check = total % 11
        if check < 10 and head[0] != "0":
            return head + str(check)


def test_an_invalid_bsn_is_an_invalid_argument_naming_the_field(stub: Stub, tokens: Tokens) -> None:
    fail = _fails(
        stub.RegisterPatient,
        rpc.RegisterPatientRequest(bsn="111222334"),
        bearer(tokens.user("dr.jansen")),
    )
    assert fail.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fail.reason == "INVALID_BSN"
    assert fail.field_violations == ("bsn",)
    assert "111222334" not in fail.message


def test_a_seven_digit_agb_code_is_an_invalid_argument_naming_the_field(
    stub: Stub, tokens: Tokens
) -> None:
    request = rpc.CreateOrganisationRequest(
        organisation_id="gp-zeven",
        organisation=pb.Organisation(
            display_name="Praktijk Zeven", type=pb.ORGANISATION_TYPE_GP_PRACTICE, agb_code="1234567"
        ),
    )
    fail = _fails(stub.CreateOrganisation, request, bearer(tokens.user("admin.zuidoost")))
    assert fail.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fail.reason == "INVALID_AGB_CODE"
    assert fail.field_violations == ("organisation.agb_code",)


def test_other_malformed_identifiers_are_named_too(stub: Stub, tokens: Tokens) -> None:
    request = rpc.CreateOrganisationRequest(
        organisation_id="Bad Id",
        organisation=pb.Organisation(
            display_name="", type=pb.ORGANISATION_TYPE_MUNICIPALITY, cbs_municipality_code="0772"
        ),
    )
    fail = _fails(stub.CreateOrganisation, request, bearer(tokens.user("admin.zuidoost")))
    assert set(fail.field_violations) == {
        "organisation_id",
        "organisation.display_name",
        "organisation.cbs_municipality_code",
    }


def test_an_organisation_is_created_once_per_request_id_and_updated_with_an_etag(
    stub: Stub, tokens: Tokens
) -> None:
    admin = bearer(tokens.user("admin.zuidoost"))
    org_id = f"gm-{uuid.uuid4().hex[:8]}"
    request = rpc.CreateOrganisationRequest(
        organisation_id=org_id,
        request_id=f"req-{org_id}",
        organisation=pb.Organisation(
            display_name="Gemeente Best",
            type=pb.ORGANISATION_TYPE_MUNICIPALITY,
            cbs_municipality_code="GM0753",
        ),
    )
    first = stub.CreateOrganisation(request, metadata=admin, timeout=5)
    again = stub.CreateOrganisation(request, metadata=admin, timeout=5)
    assert first.name == again.name == f"organisations/{org_id}"
    assert first.care_group == "organisations/cg-zuidoost"
    fail = _fails(
        stub.CreateOrganisation,
        rpc.CreateOrganisationRequest(organisation_id=org_id, organisation=request.organisation),
        admin,
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.ALREADY_EXISTS, "ORGANISATION_EXISTS")
    updated = stub.UpdateOrganisation(
        rpc.UpdateOrganisationRequest(
            organisation=pb.Organisation(
                name=first.name, display_name="Gemeente Best (Noord-Brabant)", etag=first.etag
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        metadata=admin,
        timeout=5,
    )
    assert updated.display_name == "Gemeente Best (Noord-Brabant)"
    assert updated.etag != first.etag
    stale = rpc.UpdateOrganisationRequest(
        organisation=pb.Organisation(name=first.name, display_name="Stale", etag=first.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
    )
    fail = _fails(stub.UpdateOrganisation, stale, admin)
    assert (fail.code, fail.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    # PERMISSION_DENIED takes precedence over a stale etag.
    fail = _fails(stub.UpdateOrganisation, stale, bearer(tokens.user("dr.jansen")))
    assert fail.code == grpc.StatusCode.PERMISSION_DENIED


def test_only_the_care_groups_admin_creates_organisations(stub: Stub, tokens: Tokens) -> None:
    request = rpc.CreateOrganisationRequest(
        organisation_id="gp-nope",
        organisation=pb.Organisation(
            display_name="Nope", type=pb.ORGANISATION_TYPE_GP_PRACTICE, agb_code="01234567"
        ),
    )
    fail = _fails(stub.CreateOrganisation, request, bearer(tokens.user("dr.jansen")))
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_PERMITTED")


def test_another_tenants_organisation_is_not_found_and_its_patient_is_refused(
    stub: Stub, tokens: Tokens, noord_practice: str
) -> None:
    foreign = bearer(tokens.user("dr.noord"))
    fail = _fails(
        stub.GetOrganisation, rpc.GetOrganisationRequest(name="organisations/gp-de-linde"), foreign
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.NOT_FOUND, "ORGANISATION_NOT_FOUND")
    # A patient is refused like one without a relationship: no answer tells it exists.
    fail = _fails(stub.GetPatient, rpc.GetPatientRequest(name="patients/p-0001"), foreign)
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, "NO_CARE_RELATIONSHIP")


def test_a_registered_patient_is_found_by_bsn_but_the_bsn_never_comes_back(
    stub: Stub, tokens: Tokens
) -> None:
    gp = bearer(tokens.user("dr.jansen"))
    bsn = _new_bsn()
    request_id = uuid.uuid4().hex
    patient = stub.RegisterPatient(
        rpc.RegisterPatientRequest(bsn=bsn, request_id=request_id), metadata=gp, timeout=5
    )
    again = stub.RegisterPatient(
        rpc.RegisterPatientRequest(bsn=bsn, request_id=request_id), metadata=gp, timeout=5
    )
    assert again.name == patient.name
    found = stub.LookupPatient(
        rpc.LookupPatientRequest(bsn=bsn, purpose="intake"), metadata=gp, timeout=5
    )
    assert found.name == patient.name
    assert bsn not in str(found) and bsn not in patient.name
    fail = _fails(
        stub.LookupPatient, rpc.LookupPatientRequest(bsn=bsn), bearer(tokens.user("dr.noord"))
    )
    assert fail.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
    # The registering practice got a care relationship.
    rels = stub.ListCareRelationships(
        rpc.ListCareRelationshipsRequest(parent=patient.name), metadata=gp, timeout=5
    )
    assert [r.organisation for r in rels.care_relationships] == ["organisations/gp-de-linde"]


def _fresh_patient_with_hospital_consent(stub: Stub, tokens: Tokens) -> tuple[str, str]:
    """A new patient of gp-de-linde treated at the hospital, who consents to the hospital reading
    the GP's care plan. The consent is recorded by the GP for the patient."""
    gp = bearer(tokens.user("dr.jansen"))
    patient = stub.RegisterPatient(
        rpc.RegisterPatientRequest(bsn=_new_bsn()), metadata=gp, timeout=5
    )
    stub.CreateCareRelationship(
        rpc.CreateCareRelationshipRequest(
            parent=patient.name,
            care_relationship=pb.CareRelationship(
                organisation="organisations/hosp-catharina", kind=pb.CARE_RELATIONSHIP_KIND_TREATING
            ),
        ),
        metadata=gp,
        timeout=5,
    )
    consent = stub.CreateConsent(
        rpc.CreateConsentRequest(
            parent=patient.name,
            consent=pb.Consent(
                record_holder=pb.OrganisationSelector(category=pb.ORGANISATION_TYPE_GP_PRACTICE),
                data_category=pb.DATA_CATEGORY_CARE_PLAN,
                requester=pb.OrganisationSelector(category=pb.ORGANISATION_TYPE_HOSPITAL),
            ),
        ),
        metadata=gp,
        timeout=5,
    )
    assert consent.state == pb.CONSENT_STATE_ACTIVE
    return patient.name, consent.name


def test_a_withdrawal_takes_effect_on_the_next_authorize(stub: Stub, tokens: Tokens) -> None:
    patient, consent = _fresh_patient_with_hospital_consent(stub, tokens)
    specialist = bearer(tokens.user("dr.smit"))
    ask = rpc.AuthorizeRequest(
        patient=patient,
        data_category=pb.DATA_CATEGORY_CARE_PLAN,
        action=pb.ACTION_READ,
        record_holder="organisations/gp-de-linde",
    )
    assert stub.Authorize(ask, metadata=specialist, timeout=5).decision == pb.DECISION_PERMIT
    withdrawn = stub.WithdrawConsent(
        rpc.WithdrawConsentRequest(name=consent),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=5,
    )
    assert withdrawn.state == pb.CONSENT_STATE_WITHDRAWN
    reply = stub.Authorize(ask, metadata=specialist, timeout=5)
    assert (reply.decision, reply.reason) == (pb.DECISION_DENY, "NO_CONSENT")
    fail = _fails(
        stub.WithdrawConsent,
        rpc.WithdrawConsentRequest(name=consent),
        bearer(tokens.user("dr.jansen")),
    )
    assert (fail.code, fail.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CONSENT_ALREADY_WITHDRAWN",
    )
    events = stub.ListConsentEvents(
        rpc.ListConsentEventsRequest(parent=patient),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=5,
    )
    assert [e.type for e in events.consent_events] == [
        pb.CONSENT_EVENT_TYPE_GIVEN,
        pb.CONSENT_EVENT_TYPE_WITHDRAWN,
    ]


def test_a_patient_manages_their_own_consent_and_sees_who_accessed_their_data(
    stub: Stub, tokens: Tokens
) -> None:
    patient_token = bearer(tokens.patient("pat.yilmaz"))
    created = stub.CreateConsent(
        rpc.CreateConsentRequest(
            parent="patients/p-0002",
            consent=pb.Consent(
                record_holder=pb.OrganisationSelector(organisation="organisations/gp-de-linde"),
                data_category=pb.DATA_CATEGORY_REFERRAL,
                requester=pb.OrganisationSelector(organisation="organisations/gm-eindhoven"),
            ),
        ),
        metadata=patient_token,
        timeout=5,
    )
    assert created.recorded_by
    listed = stub.ListConsents(
        rpc.ListConsentsRequest(parent="patients/p-0002"), metadata=patient_token, timeout=5
    )
    assert created.name in [c.name for c in listed.consents]
    # Another patient may not touch it.
    fail = _fails(
        stub.WithdrawConsent,
        rpc.WithdrawConsentRequest(name=created.name),
        bearer(tokens.patient("pat.dewit")),
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWN_DATA")
    stub.WithdrawConsent(
        rpc.WithdrawConsentRequest(name=created.name, etag=created.etag),
        metadata=patient_token,
        timeout=5,
    )
    entries = _whole_log(stub, "patients/p-0002", patient_token)
    events = [e.event for e in entries]
    assert "CREATE_CONSENT" in events
    assert "WITHDRAW_CONSENT" in events
    assert all(e.patient == "patients/p-0002" for e in entries)
    # The denied attempt by the other patient is in the log too.
    assert any(e.decision == pb.DECISION_DENY and e.reason == "NOT_OWN_DATA" for e in entries)


def test_reading_the_log_is_itself_logged_and_limited_to_patients_and_auditors(
    stub: Stub, tokens: Tokens
) -> None:
    patient_token = bearer(tokens.patient("pat.dewit"))
    first = _whole_log(stub, "patients/p-0001", patient_token)
    second = _whole_log(stub, "patients/p-0001", patient_token)
    reads_before = [e for e in first if e.event == "LIST_ACCESS_LOG"]
    reads_after = [e for e in second if e.event == "LIST_ACCESS_LOG"]
    # Reading page by page logs every page read.
    assert len(reads_after) > len(reads_before)
    assert reads_after[-1].user == reads_after[-1].responsible_user != ""
    fail = _fails(
        stub.ListAccessLogEntries,
        rpc.ListAccessLogEntriesRequest(patient="patients/p-0001"),
        bearer(tokens.patient("pat.yilmaz")),
    )
    assert fail.code == grpc.StatusCode.PERMISSION_DENIED
    fail = _fails(
        stub.ListAccessLogEntries,
        rpc.ListAccessLogEntriesRequest(),
        bearer(tokens.user("dr.jansen")),
    )
    assert fail.code == grpc.StatusCode.PERMISSION_DENIED
    audit = stub.ListAccessLogEntries(
        rpc.ListAccessLogEntriesRequest(page_size=5),
        metadata=bearer(tokens.user("auditor.dekker")),
        timeout=5,
    )
    assert len(audit.access_log_entries) == 5
    assert audit.next_page_token
    following = stub.ListAccessLogEntries(
        rpc.ListAccessLogEntriesRequest(page_size=5, page_token=audit.next_page_token),
        metadata=bearer(tokens.user("auditor.dekker")),
        timeout=5,
    )
    assert following.access_log_entries[0].name != audit.access_log_entries[0].name
    verified = stub.VerifyAccessLog(
        rpc.VerifyAccessLogRequest(), metadata=bearer(tokens.user("auditor.dekker")), timeout=30
    )
    assert verified.intact
    assert verified.entries_checked > 0


def test_an_emergency_access_is_permitted_for_a_clinician_and_flagged(
    stub: Stub, tokens: Tokens
) -> None:
    reply = stub.Authorize(
        rpc.AuthorizeRequest(
            patient="patients/p-0003",
            data_category=pb.DATA_CATEGORY_CARE_PLAN,
            action=pb.ACTION_READ,
            emergency_reason="unconscious-patient: admitted unconscious at the emergency department",
        ),
        metadata=bearer(tokens.user("dr.smit")),
        timeout=5,
    )
    assert (reply.decision, reply.basis, reply.emergency) == (
        pb.DECISION_PERMIT,
        pb.BASIS_EMERGENCY,
        True,
    )


def test_only_services_may_ask_for_someone_else(stub: Stub, tokens: Tokens) -> None:
    request = rpc.AuthorizeRequest(
        patient="patients/p-0001",
        data_category=pb.DATA_CATEGORY_CARE_PLAN,
        action=pb.ACTION_READ,
        subject=pb.Subject(
            user="x",
            organisation="organisations/gp-de-linde",
            care_group="organisations/cg-zuidoost",
            roles=["gp"],
        ),
    )
    fail = _fails(stub.Authorize, request, bearer(tokens.user("coach.visser")))
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, "SUBJECT_NOT_ALLOWED")


def test_batch_authorize_decides_and_logs_each_patient(stub: Stub, tokens: Tokens) -> None:
    reply = stub.BatchAuthorize(
        rpc.BatchAuthorizeRequest(
            patients=["patients/p-0001", "patients/p-0003", "patients/nobody"],
            data_category=pb.DATA_CATEGORY_MEASUREMENTS,
            action=pb.ACTION_CREATE,
        ),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=5,
    )
    decisions = {d.patient: (d.decision, d.reason) for d in reply.decisions}
    assert decisions == {
        "patients/p-0001": (pb.DECISION_PERMIT, "CARE_RELATIONSHIP"),
        "patients/p-0003": (pb.DECISION_DENY, "NO_CARE_RELATIONSHIP"),
        "patients/nobody": (pb.DECISION_DENY, "NO_CARE_RELATIONSHIP"),
    }
    assert len({d.access_log_entry for d in reply.decisions}) == 3


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (
            rpc.AuthorizeRequest(
                patient="p-0001", data_category=pb.DATA_CATEGORY_CARE_PLAN, action=pb.ACTION_READ
            ),
            "patient",
        ),
        (rpc.AuthorizeRequest(patient="patients/p-0001", action=pb.ACTION_READ), "data_category"),
        (
            rpc.AuthorizeRequest(
                patient="patients/p-0001", data_category=pb.DATA_CATEGORY_CARE_PLAN
            ),
            "action",
        ),
        (
            rpc.AuthorizeRequest(
                patient="patients/p-0001",
                data_category=99,  # type: ignore[arg-type]
                action=pb.ACTION_READ,
            ),
            "data_category",
        ),
    ],
)
def test_malformed_authorize_requests_name_the_field(
    stub: Stub, tokens: Tokens, request_: rpc.AuthorizeRequest, field: str
) -> None:
    fail = _fails(stub.Authorize, request_, bearer(tokens.user("dr.jansen")))
    assert fail.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in fail.field_violations


def test_an_oversized_page_size_is_capped_and_a_negative_one_refused(
    stub: Stub, tokens: Tokens
) -> None:
    """AIP-158: a page size above the maximum (1000) is capped, not refused."""
    auth = bearer(tokens.user("dr.jansen"))
    capped = stub.ListOrganisations(rpc.ListOrganisationsRequest(page_size=100_000), metadata=auth)
    everything = stub.ListOrganisations(rpc.ListOrganisationsRequest(page_size=1000), metadata=auth)
    assert list(capped.organisations) == list(everything.organisations)
    assert capped.organisations
    fail = _fails(stub.ListOrganisations, rpc.ListOrganisationsRequest(page_size=-1), auth)
    assert (fail.code, fail.reason, fail.field_violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_SIZE",
        ("page_size",),
    )
