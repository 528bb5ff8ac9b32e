"""The table is well formed, covers every RPC that carries a patient (found in the proto
descriptors, not in a list kept by hand), and docs/authorization.md is generated from it."""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor

from carenet.identity.v1 import identity_service_pb2
from carenet.outcomes.v1 import outcomes_service_pb2
from carenet.referral.v1 import referral_service_pb2

from . import discovery, render
from .personas import PERSONAS
from .table import load, problems


def test_the_table_is_well_formed() -> None:
    found = problems(load(), set(PERSONAS), discovery.all_rpcs())
    assert not found, "\n".join(found)


def test_every_rpc_that_carries_a_patient_has_rows() -> None:
    covered = {row.rpc for row in load()}
    missing = sorted(set(discovery.patient_rpcs()) - covered)
    assert not missing, f"RPCs that carry a patient and have no row in the table: {missing}"


def test_the_discovery_sees_each_way_a_request_carries_a_patient() -> None:
    found = discovery.patient_rpcs()
    # a field named patient, a list of patients, a BSN
    assert found["identity.Authorize"] == ["patient"]
    assert found["identity.BatchAuthorize"] == ["patients"]
    assert "bsn" in found["identity.LookupPatient"]
    # a patients/... name or parent, also nested and in a resource that carries its name
    assert found["careplan.GetCarePlan"] == ["name"]
    assert "requests.parent" in found["outcomes.BatchCreateEnrolments"]
    assert "rows.patient" in found["outcomes.IngestMeasurements"]
    assert "care_plan" in found["careplan.UpdateCarePlan"]
    # a name of another collection is not a patient, nor is the patient id of the caller
    # (identity's Subject, who is asking)
    for rpc in ("referral.GetOffer", "outcomes.GetReport", "outcomes.RecordCosts"):
        assert rpc not in found, rpc
    subject = identity_service_pb2.DESCRIPTOR.message_types_by_name["AuthorizeRequest"]
    assert "subject" in subject.fields_by_name
    assert not any(path.startswith("subject.") for path in found["identity.Authorize"])


def test_a_new_patient_field_would_be_noticed() -> None:
    """The completeness check is not a list of today's RPCs: a request that gained a
    patient (here: FindOffers' request read as if it had one) is found."""
    methods = referral_service_pb2.DESCRIPTOR.services_by_name["ReferralService"].methods_by_name
    assert discovery.patient_fields(methods["FindOffers"]) == []
    with_patient = outcomes_service_pb2.DESCRIPTOR.message_types_by_name["EnrolmentResult"]
    assert isinstance(with_patient, Descriptor)
    assert "patient" in discovery._carries(with_patient, None, frozenset())


def test_the_documentation_is_generated_from_the_table() -> None:
    written = render.DOC_FILE.read_text(encoding="utf-8")
    assert written == render.render(load()), (
        "docs/authorization.md is not the table's: run "
        "`.venv/bin/python -m tests.authz.render` and commit it"
    )
