"""How long an ingest holds and waits for its record holder's turn, over a real outcomes
server, the real identity service and real tokens: identity is asked one batch question per
kind of access (not one question per patient) while the turn is held, the access log still
has one entry per patient and access, and an ingest that cannot get its turn in time fails
with UNAVAILABLE INGEST_BUSY having asked and written nothing."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import Engine, text

from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes.deps import Deps
from servicekit.identity_client import (
    Access,
    AccessDecision,
    AccessQuestion,
    BatchAccessQuestion,
    IdentityClient,
)
from testkit.access_log import AccessLogReader
from testkit.fixtures import IdentityService, Tokens
from testkit.rpc import failure

from .support import Metadata, enrol, ingest, register_patients, row

PATIENTS = 12


class _Counting:
    """identity, counting the questions of each kind (single, batch) by access."""

    def __init__(self, inner: IdentityClient) -> None:
        self.inner = inner
        self.single: list[Access] = []
        self.batches: list[tuple[Access, int, str]] = []

    def authorize(self, question: AccessQuestion) -> AccessDecision:
        self.single.append(question.access)
        return self.inner.authorize(question)

    def authorize_many(self, question: BatchAccessQuestion) -> dict[str, AccessDecision]:
        self.batches.append((question.access, len(question.patient_ids), question.record_holder_id))
        return self.inner.authorize_many(question)


@pytest.fixture(scope="module")
def patients(
    stub: rpc_grpc.OutcomesServiceStub,
    identity_service: IdentityService,
    tokens: Tokens,
    jansen: Metadata,
) -> list[str]:
    """Enrolled patients of dr.jansen's practice."""
    ours = register_patients(identity_service, tokens.user("dr.jansen"), "turns", PATIENTS)
    for patient in ours:
        enrol(stub, jansen, patient)
    return ours


def test_a_resent_batch_is_one_read_question_and_one_read_entry_per_patient(
    stub: rpc_grpc.OutcomesServiceStub,
    deps: Deps,
    jansen: Metadata,
    patients: list[str],
    access_log: AccessLogReader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [row(p, f"turns-again-{p}-{i}", 50.0 + i) for p in patients for i in range(2)]
    assert ingest(stub, jansen, rows).accepted == 2 * PATIENTS
    counting = _Counting(deps.identity)
    monkeypatch.setattr(deps, "identity", counting)
    access_log.mark()
    reply = ingest(stub, jansen, rows)
    assert (reply.accepted, reply.duplicates) == (0, 2 * PATIENTS)
    assert counting.single == []
    assert counting.batches == [(Access.READ, PATIENTS, "gp-de-linde")]
    assert sorted(access_log.entries()) == [
        (p, "gp-de-linde", "read", "permit", "CARE_RELATIONSHIP") for p in sorted(patients)
    ]


def test_corrections_are_one_update_question_and_one_update_entry_per_patient(
    stub: rpc_grpc.OutcomesServiceStub,
    deps: Deps,
    jansen: Metadata,
    patients: list[str],
    access_log: AccessLogReader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [row(p, f"turns-fix-{p}", 50.0) for p in patients]
    assert ingest(stub, jansen, rows).accepted == PATIENTS
    counting = _Counting(deps.identity)
    monkeypatch.setattr(deps, "identity", counting)
    access_log.mark()
    reply = ingest(stub, jansen, [row(p, f"turns-fix-{p}", 60.0) for p in patients])
    assert (reply.accepted, reply.corrected) == (0, PATIENTS)
    assert counting.single == []
    assert counting.batches == [(Access.UPDATE, PATIENTS, "gp-de-linde")]
    assert sorted(access_log.entries()) == [
        (p, "gp-de-linde", "update", "permit", "CARE_RELATIONSHIP") for p in sorted(patients)
    ]


def test_an_ingest_that_cannot_get_its_turn_in_time_is_ingest_busy_and_leaves_no_trace(
    stub: rpc_grpc.OutcomesServiceStub,
    deps: Deps,
    engine: Engine,
    jansen: Metadata,
    patients: list[str],
    access_log: AccessLogReader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another transaction holds the practice's turn: the ingest waits the lock timeout,
    then fails UNAVAILABLE INGEST_BUSY (retryable), having asked identity nothing and
    written nothing; once the turn is free the same batch goes through."""
    monkeypatch.setattr(deps, "ingest_lock_timeout_seconds", 0.3)
    rows = [row(patients[0], "turns-busy-1", 50.0)]
    access_log.mark()
    with deps.uow() as holding:
        assert holding.repo.lock_holder_measurements("cg-zuidoost", "gp-de-linde", 5)
        with pytest.raises(grpc.RpcError) as caught:
            ingest(stub, jansen, rows)
        got = failure(caught.value)
        assert (got.code, got.reason, got.domain, got.error_infos) == (
            grpc.StatusCode.UNAVAILABLE,
            "INGEST_BUSY",
            "outcomes.carenet",
            1,
        )
        holding.rollback()
    assert access_log.entries() == []
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM measurements WHERE source_record_id = 'turns-busy-1'")
        ).scalar_one()
    assert stored == 0
    assert ingest(stub, jansen, rows).accepted == 1
    assert access_log.entries() == [
        (patients[0], "gp-de-linde", "create", "permit", "CARE_RELATIONSHIP")
    ]


def test_the_lock_timeout_bounds_only_the_wait_for_the_turn(deps: Deps) -> None:
    """The transaction's own lock_timeout is back once the turn is taken, so no later
    statement of the chunk (after identity was asked) fails on it; the ingest's turn and a
    report's turn on the same name are different locks."""
    with deps.uow() as uow:
        uow.session.execute(text("SET LOCAL lock_timeout = '7s'"))
        assert uow.repo.lock_holder_measurements("cg-zuidoost", "gp-timeout-check", 0.2)
        setting = uow.session.execute(text("SELECT current_setting('lock_timeout')"))
        assert setting.scalar_one() == "7s"
        with deps.uow() as other:
            other.repo.lock_report_history("cg-zuidoost", "gp-timeout-other")
            assert other.repo.lock_holder_measurements("cg-zuidoost", "gp-timeout-other", 0.2)
            other.rollback()
        with deps.uow() as other:
            assert (
                other.repo.lock_holder_measurements("cg-zuidoost", "gp-timeout-check", 0.2) is False
            )
            other.rollback()
        uow.rollback()


def test_another_care_groups_lookalike_id_does_not_hold_a_practices_turn(
    stub: rpc_grpc.OutcomesServiceStub,
    deps: Deps,
    jansen: Metadata,
    patients: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A care group's admin chooses its organisations' ids. ``gp-noord-83toqva`` has the
    same 32-bit ``hashtext`` as ``gp-de-linde`` (found by search in seconds); while an
    ingest of that cg-noord organisation holds its turn, De Linde's ingest still goes on:
    a turn's key is 64 bits of the care group and the holder, which nobody can aim at."""
    with deps.uow() as probe:
        hashes = probe.session.execute(
            text("SELECT hashtext('gp-noord-83toqva'), hashtext('gp-de-linde')")
        ).one()
        assert hashes[0] == hashes[1]  # the collision this test is about
        probe.rollback()
    monkeypatch.setattr(deps, "ingest_lock_timeout_seconds", 0.3)
    with deps.uow() as holding:
        assert holding.repo.lock_holder_measurements("cg-noord", "gp-noord-83toqva", 5)
        result = ingest(stub, jansen, [row(patients[0], "turns-lookalike-1", 51.0)])
        assert result.accepted == 1
        holding.rollback()
