"""Concurrent writers: the etag decides, and no accepted update is ever lost."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer
from testkit.rpc import failure

from ..conftest import CarePlanServer
from .conftest import get, update

P2 = "patients/p-0002/carePlan"
WRITERS = 8
UPDATES = 100


@pytest.fixture(scope="module")
def plan_p2(stub: rpc_grpc.CarePlanServiceStub, tokens: Tokens) -> pb.CarePlan:
    created: pb.CarePlan = stub.CreateCarePlan(
        rpc.CreateCarePlanRequest(
            parent="patients/p-0002", care_plan=pb.CarePlan(what_matters=["Blijven werken"])
        ),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=10,
    )
    return created


def test_two_updates_with_the_same_etag_exactly_one_succeeds(
    stub: rpc_grpc.CarePlanServiceStub, tokens: Tokens, plan_p2: pb.CarePlan
) -> None:
    patient = tokens.patient("pat.yilmaz")
    base = get(stub, patient, P2)
    barrier = threading.Barrier(2)

    def write(text: str) -> grpc.StatusCode:
        plan = pb.CarePlan()
        plan.CopyFrom(base)
        plan.what_matters[:] = [text]
        barrier.wait()
        try:
            update(stub, patient, plan, "what_matters")
        except grpc.RpcError as exc:
            fail = failure(exc)
            assert fail.reason == "ETAG_MISMATCH"
            return fail.code
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(write, ["eerste", "tweede"]), key=lambda c: c.name)
    assert codes == [grpc.StatusCode.ABORTED, grpc.StatusCode.OK]
    assert get(stub, patient, P2).version == base.version + 1


@pytest.mark.slow
def test_eight_writers_of_a_hundred_updates_lose_no_accepted_update(
    careplan_service: CarePlanServer, tokens: Tokens, plan_p2: pb.CarePlan
) -> None:
    patient = tokens.patient("pat.yilmaz")
    accepted: dict[int, str] = {}
    aborted: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        with grpc.insecure_channel(careplan_service.target) as channel:
            stub = rpc_grpc.CarePlanServiceStub(channel)
            plan = get(stub, patient, P2)
            for i in range(UPDATES):
                text = f"w{w}-u{i}"
                plan.what_matters[:] = [text]
                try:
                    plan = update(stub, patient, plan, "what_matters")
                except grpc.RpcError as exc:
                    fail = failure(exc)
                    assert (fail.code, fail.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
                    with lock:
                        aborted.append(text)
                    plan = get(stub, patient, P2)
                    continue
                with lock:
                    assert plan.version not in accepted
                    accepted[plan.version] = text

    with grpc.insecure_channel(careplan_service.target) as channel:
        start = get(rpc_grpc.CarePlanServiceStub(channel), patient, P2).version
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) + len(aborted) == WRITERS * UPDATES
    assert len(accepted) > WRITERS
    with careplan_service.deps.uow() as uow:
        history = uow.repo.revisions("p-0002", start, 10 * WRITERS * UPDATES)
        written = {r.version: r.document["content"]["what_matters"] for r in history}
    # Every accepted update is in the history, at its version, and nothing else is.
    assert written == {v: [text] for v, text in accepted.items()}
    assert sorted(written) == list(range(start + 1, max(written) + 1))
    assert not set(aborted) & {t for (t,) in written.values()}


def test_the_same_item_edit_sent_twice_at_once_is_written_once_and_both_get_its_plan(
    stub: rpc_grpc.CarePlanServiceStub, tokens: Tokens, plan_p2: pb.CarePlan
) -> None:
    patient = tokens.patient("pat.yilmaz")
    base = get(stub, patient, P2)
    request = rpc.CreateGoalRequest(
        parent=P2,
        goal=pb.Goal(description="Elke dag de trap nemen"),
        etag=base.etag,
        request_id="concurrent-retry",
    )
    barrier = threading.Barrier(2)

    def send(_: int) -> pb.CarePlan:
        barrier.wait()
        reply: pb.CarePlan = stub.CreateGoal(request, metadata=bearer(patient), timeout=10)
        return reply

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(send, range(2))
    assert first == second
    assert first.version == base.version + 1
    assert get(stub, patient, P2).version == base.version + 1
    assert [g.description for g in first.goals].count("Elke dag de trap nemen") == 1
