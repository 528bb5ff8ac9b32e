"""Authorize through the real API, as a service asking for end users (the way referral,
careplan and outcomes call it), over roles x care relationship x consent state x tenant.

Every cell is asserted, and every call must leave exactly one complete access-log entry.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from sqlalchemy import Engine, text

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.models import DataCategory, OrganisationType, RelationshipKind
from identity.use_cases import consents, relationships
from identity.use_cases.deps import Deps
from identity.use_cases.patients import register_patient
from servicekit.delegation import PERSON_ROLES
from servicekit.principals import care_group_admin
from testkit.fakes import fake_principal
from testkit.fixtures import OTHER_TENANT, Tokens, bearer
from testkit.rpc import failure

NOW = dt.datetime.now(dt.UTC)
PAST = NOW - dt.timedelta(days=60)
ADMIN = care_group_admin("cg-zuidoost", "matrix-admin", client_id="test")
# Every role a person holds (servicekit.delegation.PERSON_ROLES), then the patient asking
# about themself and about another patient.
ROLES = [*sorted(PERSON_ROLES), "patient-self", "patient-other"]
RELATIONSHIPS = ["none", "active", "ended"]
CONSENTS = ["none", "active", "expired", "withdrawn", "wrong-category", "wrong-requester"]
TENANTS = ["own", "other"]


def _bsn(n: int) -> str:
    """A BSN that passes the 11-test, distinct per n."""
    base = 100_000_000 + n * 97
    while True:
        digits = f"{base:09d}"
        total = sum(w * int(d) for w, d in zip((9, 8, 7, 6, 5, 4, 3, 2), digits[:8], strict=True))
        if (total - int(digits[8])) % 11 == 0:
            return digits
        base += 1


@dataclass(frozen=True)
class Cell:
    role: str
    relationship: str
    consent: str
    tenant: str


def expected(cell: Cell) -> tuple[str, str]:
    """The decision table of identity.policy, restated for a hospital clinician asking for
    care-plan data held by the GP practice. Another care group's patient is answered as one
    without any relationship, and never permitted (not even to a token naming it)."""
    if cell.role == "insurer-analyst":
        return "DENY", "INSURER_NO_PATIENT_DATA"
    if cell.role == "patient-self":
        return ("PERMIT", "OWN_DATA") if cell.tenant == "own" else ("DENY", "NO_CARE_RELATIONSHIP")
    if cell.role == "patient-other":
        return "DENY", "NOT_OWN_DATA"
    if cell.role in ("auditor", "care-group-admin"):
        return "DENY", "ROLE_NOT_PERMITTED"
    if cell.relationship != "active" or cell.tenant == "other":
        return "DENY", "NO_CARE_RELATIONSHIP"
    if cell.consent == "active":
        return "PERMIT", "CONSENT"
    return "DENY", "NO_CONSENT"


@pytest.fixture(scope="module")
def patients(identity_service_deps: Deps, noord_practice: str) -> dict[tuple[str, str, str], str]:
    """One fresh patient per (relationship, consent, tenant), set up through the service layer."""
    deps = identity_service_deps
    run = uuid.uuid4().hex[:6]
    noord_admin = care_group_admin(OTHER_TENANT, "noord-admin", client_id="test")
    result: dict[tuple[str, str, str], str] = {}
    for n, (rel, consent, tenant) in enumerate(itertools.product(RELATIONSHIPS, CONSENTS, TENANTS)):
        pid = f"m-{run}-{n}"
        # The care group's admin registers (it alone chooses ids, and has no relationship
        # of its own), so that the coordinating practice below is the one coordinator.
        registrar = ADMIN if tenant == "own" else noord_admin
        register_patient(deps, registrar, _bsn(n * 31 + int(run, 16) % 1000), pid)
        if tenant == "own":
            relationships.create_care_relationship(
                deps, ADMIN, pid, "gp-de-linde", RelationshipKind.COORDINATING, PAST, None
            )
            if rel != "none":
                end = NOW - dt.timedelta(days=1) if rel == "ended" else None
                relationships.create_care_relationship(
                    deps, ADMIN, pid, "hosp-catharina", RelationshipKind.TREATING, PAST, end
                )
            patient = fake_principal(f"pat-{pid}", roles=["patient"], patient=pid, client_id="test")
            if consent != "none":
                category = (
                    DataCategory.MEASUREMENTS
                    if consent == "wrong-category"
                    else DataCategory.CARE_PLAN
                )
                requester = (
                    OrganisationType.MUNICIPALITY
                    if consent == "wrong-requester"
                    else OrganisationType.HOSPITAL
                )
                end = NOW - dt.timedelta(days=1) if consent == "expired" else None
                created = consents.create_consent(
                    deps,
                    patient,
                    pid,
                    consents.ConsentInput(
                        category,
                        record_holder_type=OrganisationType.GP_PRACTICE,
                        requester_type=requester,
                        start_time=PAST,
                        end_time=end,
                    ),
                )
                if consent == "withdrawn":
                    consents.withdraw_consent(deps, patient, pid, created.id)
        result[(rel, consent, tenant)] = pid
    return result


@pytest.fixture(scope="module")
def identity_service_deps(identity_service: object) -> Deps:
    deps: Deps = identity_service.deps  # type: ignore[attr-defined]
    return deps


def _subject(role: str, pid: str) -> pb.Subject:
    if role == "patient-self":
        return pb.Subject(
            user="u-self",
            care_group="organisations/cg-zuidoost",
            roles=["patient"],
            patient=f"patients/{pid}",
        )
    if role == "patient-other":
        return pb.Subject(
            user="u-other",
            care_group="organisations/cg-zuidoost",
            roles=["patient"],
            patient="patients/p-0002",
        )
    org = {
        "insurer-analyst": "ins-vgz",
        "care-group-admin": "cg-zuidoost",
        "auditor": "cg-zuidoost",
    }.get(role, "hosp-catharina")
    return pb.Subject(
        user=f"u-{role}",
        organisation=f"organisations/{org}",
        care_group="organisations/cg-zuidoost",
        roles=[role],
        on_behalf_of="",
        client_id="carenet-kis",
    )


def _log_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM access_log")).scalar_one())


@pytest.fixture(scope="module")
def log_engine(identity_db: str) -> Iterator[Engine]:
    from servicekit.db import make_engine

    engine = make_engine(identity_db)
    yield engine
    engine.dispose()


CELLS = [Cell(*c) for c in itertools.product(ROLES, RELATIONSHIPS, CONSENTS, TENANTS)]


def test_the_decision_table_holds_in_every_cell(
    stub: rpc_grpc.IdentityServiceStub,
    tokens: Tokens,
    patients: dict[tuple[str, str, str], str],
) -> None:
    metadata = bearer(tokens.client("svc-referral"))
    wrong: list[str] = []
    for cell in CELLS:
        pid = patients[(cell.relationship, cell.consent, cell.tenant)]
        request = rpc.AuthorizeRequest(
            patient=f"patients/{pid}",
            data_category=pb.DATA_CATEGORY_CARE_PLAN,
            action=pb.ACTION_READ,
            record_holder="organisations/gp-de-linde",
            subject=_subject(cell.role, pid),
            purpose="care",
        )
        want = expected(cell)
        try:
            reply = stub.Authorize(request, metadata=metadata, timeout=5)
            got = (pb.Decision.Name(reply.decision).removeprefix("DECISION_"), reply.reason)
            if reply.decision == pb.DECISION_PERMIT and reply.basis == pb.BASIS_UNSPECIFIED:
                wrong.append(f"{cell}: permit without basis")
        except grpc.RpcError as err:
            fail = failure(err)
            got = (fail.code.name, fail.reason)
        if got != want:
            wrong.append(f"{cell}: want {want}, got {got}")
    assert not wrong, "\n".join(wrong)
    assert len(CELLS) == 11 * 3 * 6 * 2


def test_every_authorize_writes_exactly_one_complete_entry(
    stub: rpc_grpc.IdentityServiceStub,
    tokens: Tokens,
    patients: dict[tuple[str, str, str], str],
    log_engine: Engine,
) -> None:
    pid = patients[("active", "active", "own")]
    metadata = bearer(tokens.client("svc-referral"))
    subject = pb.Subject(
        user="nurse-1",
        organisation="organisations/hosp-catharina",
        care_group="organisations/cg-zuidoost",
        roles=["specialist"],
        client_id="carenet-kis",
    )
    request = rpc.AuthorizeRequest(
        patient=f"patients/{pid}",
        data_category=pb.DATA_CATEGORY_CARE_PLAN,
        action=pb.ACTION_READ,
        record_holder="organisations/gp-de-linde",
        subject=subject,
        purpose="follow-up",
        access_point="kis-frontend",
    )
    before = _log_count(log_engine)
    reply = stub.Authorize(request, metadata=metadata, timeout=5)
    assert _log_count(log_engine) == before + 1
    entry_id = int(reply.access_log_entry.split("/")[1])
    with log_engine.connect() as conn:
        row = (
            conn.execute(text("SELECT * FROM access_log WHERE id = :id"), {"id": entry_id})
            .mappings()
            .one()
        )
    assert row["event"] == "AUTHORIZE"
    assert row["patient_id"] == pid
    assert row["user_id"] == "nurse-1"
    assert row["responsible_user"] == "nurse-1"
    assert row["organisation_id"] == "hosp-catharina"
    assert row["roles"] == "specialist"
    assert row["data_category"] == "care-plan"
    assert row["action"] == "read"
    assert row["purpose"] == "follow-up"
    assert row["decision"] == "permit"
    assert row["basis"] == "care-relationship-and-consent"
    assert row["emergency"] is False
    assert row["access_point"] == "kis-frontend"
    assert row["event_time"] is not None
    assert len(row["entry_hash"]) == 64
    # A denial is logged too, and so is an attempt on another care group's patient.
    denied = rpc.AuthorizeRequest(
        patient=f"patients/{patients[('none', 'none', 'own')]}",
        data_category=pb.DATA_CATEGORY_CARE_PLAN,
        action=pb.ACTION_READ,
        record_holder="organisations/gp-de-linde",
        subject=subject,
    )
    before = _log_count(log_engine)
    assert stub.Authorize(denied, metadata=metadata, timeout=5).decision == pb.DECISION_DENY
    assert _log_count(log_engine) == before + 1
    foreign = rpc.AuthorizeRequest(
        patient=f"patients/{patients[('none', 'none', 'other')]}",
        data_category=pb.DATA_CATEGORY_CARE_PLAN,
        action=pb.ACTION_READ,
        subject=subject,
    )
    before = _log_count(log_engine)
    reply = stub.Authorize(foreign, metadata=metadata, timeout=5)
    assert (reply.decision, reply.reason) == (pb.DECISION_DENY, "NO_CARE_RELATIONSHIP")
    assert reply.access_log_entry
    assert _log_count(log_engine) == before + 1
