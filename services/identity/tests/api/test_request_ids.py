"""``request_id`` on every create of identity: the same id with the same request returns the
first resource and creates nothing more; the same id with another request is INVALID_ARGUMENT
REQUEST_ID_REUSED, never the first resource. And two identical active care relationships
cannot exist: the second create is ALREADY_EXISTS naming the first."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from sqlalchemy import Engine, text

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from servicekit.db import make_engine
from servicekit.idempotency import fingerprint_of
from testkit.fixtures import Tokens, bearer

from .calls import FullError, fails

Stub = rpc_grpc.IdentityServiceStub


@pytest.fixture(scope="module")
def db(identity_db: str) -> Iterator[Engine]:
    engine = make_engine(identity_db)
    yield engine
    engine.dispose()


def _count(db: Engine, sql: str, **params: object) -> int:
    with db.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def _new_bsn() -> str:
    while True:
        head = f"{uuid.uuid4().int % 10**8:08d}"
        total = sum(w * int(d) for w, d in zip((9, 8, 7, 6, 5, 4, 3, 2), head, strict=True))
        if total % 11 < 10 and head[0] != "0":
            return head + str(total % 11)


def _reused(fail: FullError) -> None:
    assert fail.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fail.reason == "REQUEST_ID_REUSED"
    assert [field for field, _, _ in fail.field_violations] == ["request_id"]


def _municipality(org_id: str, request_id: str, code: str) -> rpc.CreateOrganisationRequest:
    return rpc.CreateOrganisationRequest(
        organisation_id=org_id,
        request_id=request_id,
        organisation=pb.Organisation(
            display_name="Gemeente Test",
            type=pb.ORGANISATION_TYPE_MUNICIPALITY,
            cbs_municipality_code=code,
        ),
    )


def test_create_organisation_with_a_reused_request_id(
    stub: Stub, tokens: Tokens, db: Engine
) -> None:
    admin = bearer(tokens.user("admin.zuidoost"))
    request_id, first_id, other_id = (f"gm-{uuid.uuid4().hex[:8]}" for _ in range(3))
    request = _municipality(first_id, request_id, "GM0753")
    first = stub.CreateOrganisation(request, metadata=admin, timeout=5)
    assert stub.CreateOrganisation(request, metadata=admin, timeout=5) == first
    _reused(fails(stub.CreateOrganisation, _municipality(other_id, request_id, "GM0753"), admin))
    _reused(fails(stub.CreateOrganisation, _municipality(first_id, request_id, "GM0754"), admin))
    organisations = "SELECT count(*) FROM organisations WHERE id IN (:a, :b)"
    assert _count(db, organisations, a=first_id, b=other_id) == 1


def test_register_patient_with_a_reused_request_id(stub: Stub, tokens: Tokens, db: Engine) -> None:
    gp = bearer(tokens.user("dr.jansen"))
    request_id = uuid.uuid4().hex
    request = rpc.RegisterPatientRequest(bsn=_new_bsn(), request_id=request_id)
    first = stub.RegisterPatient(request, metadata=gp, timeout=5)
    assert stub.RegisterPatient(request, metadata=gp, timeout=5).name == first.name
    # Another patient under the same id: refused, and not registered.
    other = rpc.RegisterPatientRequest(bsn=_new_bsn(), request_id=request_id)
    _reused(fails(stub.RegisterPatient, other, gp))
    lookup = fails(stub.LookupPatient, rpc.LookupPatientRequest(bsn=other.bsn), gp)
    assert lookup.code == grpc.StatusCode.PERMISSION_DENIED
    # The stored fingerprint is keyed: a plain hash of a request holding a BSN would give
    # the BSN away to anyone who can read the table.
    with db.connect() as conn:
        stored = conn.execute(
            text("SELECT fingerprint FROM request_records WHERE request_id = :r"), {"r": request_id}
        ).scalar_one()
    assert len(stored) == 64
    assert stored != fingerprint_of(request)


def _relationship(
    patient: str, organisation: str, request_id: str = ""
) -> rpc.CreateCareRelationshipRequest:
    return rpc.CreateCareRelationshipRequest(
        parent=patient,
        request_id=request_id,
        care_relationship=pb.CareRelationship(
            organisation=f"organisations/{organisation}",
            kind=pb.CARE_RELATIONSHIP_KIND_TREATING,
        ),
    )


def _fresh_patient(stub: Stub, gp: object) -> str:
    reply = stub.RegisterPatient(
        rpc.RegisterPatientRequest(bsn=_new_bsn()),
        metadata=gp,  # type: ignore[arg-type]
        timeout=5,
    )
    name: str = reply.name
    return name


def test_create_care_relationship_with_a_reused_request_id(
    stub: Stub, tokens: Tokens, db: Engine
) -> None:
    gp = bearer(tokens.user("dr.jansen"))
    patient, other_patient = _fresh_patient(stub, gp), _fresh_patient(stub, gp)
    request_id = uuid.uuid4().hex
    request = _relationship(patient, "hosp-catharina", request_id)
    first = stub.CreateCareRelationship(request, metadata=gp, timeout=5)
    assert stub.CreateCareRelationship(request, metadata=gp, timeout=5) == first
    # The same id for another patient (the reported case, on referrals) or organisation.
    _reused(
        fails(
            stub.CreateCareRelationship,
            _relationship(other_patient, "hosp-catharina", request_id),
            gp,
        )
    )
    _reused(
        fails(stub.CreateCareRelationship, _relationship(patient, "gli-beweegfit", request_id), gp)
    )
    rows = "SELECT count(*) FROM care_relationships WHERE patient_id IN (:a, :b)"
    ids = {"a": patient.removeprefix("patients/"), "b": other_patient.removeprefix("patients/")}
    assert _count(db, rows, **ids) == 3  # two coordinating (registration), one treating


def _consent(patient: str, category: int, request_id: str) -> rpc.CreateConsentRequest:
    return rpc.CreateConsentRequest(
        parent=patient,
        request_id=request_id,
        consent=pb.Consent(
            record_holder=pb.OrganisationSelector(category=pb.ORGANISATION_TYPE_GP_PRACTICE),
            data_category=category,  # type: ignore[arg-type]
            requester=pb.OrganisationSelector(category=pb.ORGANISATION_TYPE_HOSPITAL),
        ),
    )


def test_create_consent_with_a_reused_request_id(stub: Stub, tokens: Tokens, db: Engine) -> None:
    gp = bearer(tokens.user("dr.jansen"))
    patient = _fresh_patient(stub, gp)
    request_id = uuid.uuid4().hex
    request = _consent(patient, pb.DATA_CATEGORY_CARE_PLAN, request_id)
    first = stub.CreateConsent(request, metadata=gp, timeout=5)
    again = stub.CreateConsent(request, metadata=gp, timeout=5)
    assert again.name == first.name
    _reused(
        fails(stub.CreateConsent, _consent(patient, pb.DATA_CATEGORY_MEASUREMENTS, request_id), gp)
    )
    rows = "SELECT count(*) FROM consents WHERE patient_id = :p"
    assert _count(db, rows, p=patient.removeprefix("patients/")) == 1


def test_a_second_identical_active_care_relationship_is_already_exists_naming_the_first(
    stub: Stub, tokens: Tokens, db: Engine
) -> None:
    gp = bearer(tokens.user("dr.jansen"))
    patient = _fresh_patient(stub, gp)
    first = stub.CreateCareRelationship(
        _relationship(patient, "hosp-catharina", uuid.uuid4().hex), metadata=gp, timeout=5
    )
    fail = fails(
        stub.CreateCareRelationship,
        _relationship(patient, "hosp-catharina", uuid.uuid4().hex),
        gp,
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.ALREADY_EXISTS, "CARE_RELATIONSHIP_EXISTS")
    assert fail.metadata == {"care_relationship": first.name}
    # Also when the hospital records it for itself, and without any request_id.
    fail = fails(
        stub.CreateCareRelationship,
        _relationship(patient, "hosp-catharina"),
        bearer(tokens.user("dr.smit")),
    )
    assert fail.metadata == {"care_relationship": first.name}
    rows = "SELECT count(*) FROM care_relationships WHERE patient_id = :p AND organisation_id = :o"
    assert _count(db, rows, p=patient.removeprefix("patients/"), o="hosp-catharina") == 1
    # Once the first has ended, a new one may start.
    stub.EndCareRelationship(
        rpc.EndCareRelationshipRequest(name=first.name), metadata=gp, timeout=5
    )
    again = stub.CreateCareRelationship(
        _relationship(patient, "hosp-catharina"), metadata=gp, timeout=5
    )
    assert again.name != first.name
