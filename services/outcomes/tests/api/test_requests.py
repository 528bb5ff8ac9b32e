"""Requests that are reused or malformed (issue 11, points 10 and 12), over a real server
with real tokens: a request_id reused for another contract, Timestamps no Timestamp can
hold, and page tokens whose position has the wrong type."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import text

from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes.deps import Deps
from servicekit import paging
from testkit.fixtures import Tokens, bearer
from testkit.rpc import Failure, failure

from .support import Metadata, enrolment_request, row
from .test_access import END, START, contract

# seconds beyond 9999-12-31, nanos of 1e9 and of -1
BAD_TIMES = {
    "year-10000": Timestamp(seconds=253_402_300_800),
    "nanos-1e9": Timestamp(seconds=1_700_000_000, nanos=1_000_000_000),
    "nanos-minus-1": Timestamp(seconds=1_700_000_000, nanos=-1),
}


@pytest.fixture(scope="module")
def admin(tokens: Tokens) -> Metadata:
    return bearer(tokens.user("admin.zuidoost"))


def _fails(call: Callable[[], Any]) -> Failure:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    fail = failure(caught.value)
    assert fail.error_infos == 1 and fail.domain == "outcomes.carenet"
    return fail


# ----------------------------------------------------------------- request_id (point 10)


def _contracts(deps: Deps, request_id: str) -> int:
    with deps.uow() as uow:
        return int(
            uow.session.execute(
                text("SELECT COUNT(*) FROM contracts WHERE request_id = :r"), {"r": request_id}
            ).scalar_one()
        )


def test_create_contract_with_a_reused_request_id_replays_the_same_request_only(
    stub: rpc_grpc.OutcomesServiceStub, admin: Metadata, deps: Deps
) -> None:
    first = rpc.CreateContractRequest(
        contract_id="req-vgz", contract=contract("ins-vgz"), request_id="R-contract"
    )
    created = stub.CreateContract(first, metadata=admin, timeout=10)
    again = stub.CreateContract(first, metadata=admin, timeout=10)
    assert again == created
    assert _contracts(deps, "R-contract") == 1
    other = rpc.CreateContractRequest(
        contract_id="req-other", contract=contract("ins-other"), request_id="R-contract"
    )
    fail = _fails(lambda: stub.CreateContract(other, metadata=admin, timeout=10))
    assert (fail.code, fail.reason, fail.field_violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
        ("request_id",),
    )
    assert "req-vgz" not in fail.message
    assert _contracts(deps, "R-contract") == 1
    names = [
        c.name for c in stub.ListContracts(rpc.ListContractsRequest(), metadata=admin).contracts
    ]
    assert "contracts/req-other" not in names


# ----------------------------------------------------------------- Timestamps (point 12)


def _contract_with(field: str, value: Timestamp) -> pb.Contract:
    c = contract("ins-vgz")
    getattr(c, field).CopyFrom(value)
    return c


def _enrolment_with(value: Timestamp) -> rpc.CreateEnrolmentRequest:
    request = enrolment_request("p-0001")
    request.enrolment.start_time.CopyFrom(value)
    return request


CALLS: dict[str, tuple[str, Callable[[rpc_grpc.OutcomesServiceStub, Timestamp], Any]]] = {
    "CreateEnrolment": (
        "enrolment.start_time",
        lambda s, t: s.CreateEnrolment(_enrolment_with(t), metadata=JANSEN[0], timeout=10),
    ),
    "BatchCreateEnrolments": (
        "requests[1].enrolment.start_time",
        lambda s, t: s.BatchCreateEnrolments(
            rpc.BatchCreateEnrolmentsRequest(
                requests=[enrolment_request("p-0001"), _enrolment_with(t)]
            ),
            metadata=JANSEN[0],
            timeout=10,
        ),
    ),
    "CreateContract": (
        "contract.period_end",
        lambda s, t: s.CreateContract(
            rpc.CreateContractRequest(contract_id="ts-c", contract=_contract_with("period_end", t)),
            metadata=ADMIN[0],
            timeout=10,
        ),
    ),
    "ComputeIndicators": (
        "period_start",
        lambda s, t: s.ComputeIndicators(
            rpc.ComputeIndicatorsRequest(period_start=t, period_end=END),
            metadata=ADMIN[0],
            timeout=10,
        ),
    ),
    "GetSourceDiscrepancies": (
        "period_end",
        lambda s, t: s.GetSourceDiscrepancies(
            rpc.GetSourceDiscrepanciesRequest(period_start=START, period_end=t),
            metadata=ADMIN[0],
            timeout=10,
        ),
    ),
    "RecordCosts": (
        "cost_record.period_start",
        lambda s, t: s.RecordCosts(
            rpc.RecordCostsRequest(
                parent="contracts/req-vgz",
                cost_record=pb.CostRecord(period_start=t, period_end=END, actual_cost="10"),
            ),
            metadata=ADMIN[0],
            timeout=10,
        ),
    ),
    "EvaluateContract": (
        "period_start",
        lambda s, t: s.EvaluateContract(
            rpc.EvaluateContractRequest(
                contract="contracts/req-vgz", period_start=t, period_end=END
            ),
            metadata=ADMIN[0],
            timeout=10,
        ),
    ),
}
# Filled by the fixture below (the calls are declared at import, the tokens come later).
JANSEN: list[Metadata] = []
ADMIN: list[Metadata] = []


@pytest.fixture(scope="module", autouse=True)
def _callers(admin: Metadata, jansen: Metadata) -> None:
    ADMIN[:] = [admin]
    JANSEN[:] = [jansen]


@pytest.mark.parametrize("bad", sorted(BAD_TIMES))
@pytest.mark.parametrize("rpc_name", sorted(CALLS))
def test_a_timestamp_out_of_range_is_invalid_argument_naming_the_field(
    stub: rpc_grpc.OutcomesServiceStub, rpc_name: str, bad: str
) -> None:
    field, call = CALLS[rpc_name]
    fail = _fails(lambda: call(stub, BAD_TIMES[bad]))
    assert (fail.code, fail.reason, fail.field_violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_TIMESTAMP",
        (field,),
    )


def test_an_ingest_row_with_an_out_of_range_time_is_rejected_alone(
    stub: rpc_grpc.OutcomesServiceStub, jansen: Metadata
) -> None:
    stub.CreateEnrolment(enrolment_request("p-0001"), metadata=jansen, timeout=10)
    rows = [row("p-0001", "ts-ok-1")]
    for n, value in enumerate(BAD_TIMES.values()):
        bad = row("p-0001", f"ts-bad-{n}")
        bad.measure_time.CopyFrom(value)
        rows.append(bad)
    rows.append(row("p-0001", "ts-ok-2"))
    reply = stub.IngestMeasurements(
        iter([rpc.IngestMeasurementsRequest(rows=rows)]), metadata=jansen, timeout=30
    )
    assert (reply.accepted, reply.rejected) == (2, 3)
    assert [(r.row, r.reason, r.field) for r in reply.results] == [
        (n, "INVALID_MEASURE_TIME", "measure_time") for n in (1, 2, 3)
    ]


# ----------------------------------------------------------------- page tokens


def _token(position: dict[str, Any], *filters: object) -> str:
    """A token signed with this process's key (the test server's, which has no key set) and
    the list's own fingerprint: only the position's types are wrong."""
    return paging.next_token(position, paging.fingerprint(*filters))


LISTS: dict[str, Callable[[rpc_grpc.OutcomesServiceStub, str], Any]] = {
    "ListEnrolments": lambda s, t: s.ListEnrolments(
        rpc.ListEnrolmentsRequest(parent="patients/p-0001", page_token=t),
        metadata=JANSEN[0],
        timeout=10,
    ),
    "ListMeasurements": lambda s, t: s.ListMeasurements(
        rpc.ListMeasurementsRequest(parent="patients/p-0001", page_token=t),
        metadata=JANSEN[0],
        timeout=10,
    ),
    "ListIndicatorDefinitions": lambda s, t: s.ListIndicatorDefinitions(
        rpc.ListIndicatorDefinitionsRequest(page_token=t), metadata=ADMIN[0], timeout=10
    ),
    "ListContracts": lambda s, t: s.ListContracts(
        rpc.ListContractsRequest(page_token=t), metadata=ADMIN[0], timeout=10
    ),
    "ListReports": lambda s, t: s.ListReports(
        rpc.ListReportsRequest(page_token=t), metadata=ADMIN[0], timeout=10
    ),
}
WRONG_POSITIONS: dict[str, list[str]] = {
    "ListEnrolments": [
        _token({"id": "12"}, "enrolments", "p-0001"),
        _token({"id": -1}, "enrolments", "p-0001"),
        _token({"after": 3}, "enrolments", "p-0001"),
    ],
    "ListMeasurements": [
        _token({"id": "12"}, "measurements", "p-0001"),
        _token({"id": 2**64}, "measurements", "p-0001"),
        _token({}, "measurements", "p-0001"),
    ],
    "ListIndicatorDefinitions": [
        _token({"c": 5, "v": 1}, "definitions"),
        _token({"c": "DM2_HBA1C_MEASURED", "v": "1"}, "definitions"),
    ],
    "ListContracts": [_token({"id": 7}, "contracts"), _token({"id": ""}, "contracts")],
    "ListReports": [
        _token({"t": "yesterday", "id": "x"}, "reports", ""),
        _token({"t": "2026-01-01T00:00:00", "id": "x"}, "reports", ""),
        _token({"t": 1, "id": "x"}, "reports", ""),
    ],
}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_a_page_token_with_a_position_of_the_wrong_type_is_invalid_argument(
    stub: rpc_grpc.OutcomesServiceStub, name: str
) -> None:
    for token in [*WRONG_POSITIONS[name], "not-a-token", "eyJwIjp7fX0.AAAA"]:
        fail = _fails(functools.partial(LISTS[name], stub, token))
        assert (fail.code, fail.reason, fail.field_violations) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_PAGE_TOKEN",
            ("page_token",),
        ), token


def test_a_page_token_pages_through_a_list(
    stub: rpc_grpc.OutcomesServiceStub, admin: Metadata
) -> None:
    seen: list[str] = []
    token = ""
    while True:
        page = stub.ListIndicatorDefinitions(
            rpc.ListIndicatorDefinitionsRequest(page_size=5, page_token=token),
            metadata=admin,
            timeout=10,
        )
        seen += [d.name for d in page.indicator_definitions]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) >= 16


def _moment(year: int, month: int = 1, day: int = 1) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(dt.datetime(year, month, day, tzinfo=dt.UTC))
    return out


# Valid Timestamps whose periods no indicator can look back from (year 1, year 9999).
FAR_PERIODS = {
    "year-1": (_moment(1), _moment(1, 6)),
    "year-9999": (_moment(9999), _moment(9999, 12, 31)),
}
PERIOD_CALLS: dict[str, tuple[str, Callable[[rpc_grpc.OutcomesServiceStub, Any, Any], Any]]] = {
    "ComputeIndicators": (
        "period_start",
        lambda s, a, b: s.ComputeIndicators(
            rpc.ComputeIndicatorsRequest(period_start=a, period_end=b),
            metadata=ADMIN[0],
            timeout=10,
        ),
    ),
    "GetSourceDiscrepancies": (
        "period_start",
        lambda s, a, b: s.GetSourceDiscrepancies(
            rpc.GetSourceDiscrepanciesRequest(period_start=a, period_end=b),
            metadata=ADMIN[0],
            timeout=10,
        ),
    ),
    "EvaluateContract": (
        "period_start",
        lambda s, a, b: s.EvaluateContract(
            rpc.EvaluateContractRequest(contract="contracts/req-vgz", period_start=a, period_end=b),
            metadata=ADMIN[0],
            timeout=10,
        ),
    ),
    "CreateContract": (
        "contract.period_start",
        lambda s, a, b: s.CreateContract(
            rpc.CreateContractRequest(
                contract_id="far-c",
                contract=_far_contract(a, b),
            ),
            metadata=ADMIN[0],
            timeout=10,
        ),
    ),
    "RecordCosts": (
        "cost_record.period_start",
        lambda s, a, b: s.RecordCosts(
            rpc.RecordCostsRequest(
                parent="contracts/req-vgz",
                cost_record=pb.CostRecord(period_start=a, period_end=b, actual_cost="10"),
            ),
            metadata=ADMIN[0],
            timeout=10,
        ),
    ),
}


def _far_contract(start: Timestamp, end: Timestamp) -> pb.Contract:
    c = contract("ins-vgz")
    c.period_start.CopyFrom(start)
    c.period_end.CopyFrom(end)
    return c


@pytest.mark.parametrize("period", sorted(FAR_PERIODS))
@pytest.mark.parametrize("rpc_name", sorted(PERIOD_CALLS))
def test_a_period_outside_1900_to_2200_is_invalid_argument(
    stub: rpc_grpc.OutcomesServiceStub, rpc_name: str, period: str
) -> None:
    field, call = PERIOD_CALLS[rpc_name]
    start, end = FAR_PERIODS[period]
    fail = _fails(lambda: call(stub, start, end))
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PERIOD")
    assert field in fail.field_violations


# ----------------------------------------------------------------- numbers out of range


def test_numbers_no_formula_can_hold_are_invalid_argument_naming_the_field(
    stub: rpc_grpc.OutcomesServiceStub, admin: Metadata
) -> None:
    """A NaN target was stored, and amounts such as 1e999999 made the financing and SROI
    formulas overflow (INTERNAL)."""
    nan = contract("ins-vgz")
    nan.indicators[0].target = float("nan")
    fail = _fails(
        lambda: stub.CreateContract(
            rpc.CreateContractRequest(contract_id="nan-c", contract=nan), metadata=admin
        )
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_NUMBER")
    assert fail.field_violations == ("contract.indicators[0].target",)
    huge = contract("ins-vgz")
    huge.indicators[0].payment = "1e999999"
    fail = _fails(
        lambda: stub.CreateContract(
            rpc.CreateContractRequest(contract_id="huge-c", contract=huge), metadata=admin
        )
    )
    assert (fail.reason, fail.field_violations) == (
        "INVALID_DECIMAL",
        ("contract.indicators[0].payment",),
    )
    fail = _fails(
        lambda: stub.RecordCosts(
            rpc.RecordCostsRequest(
                parent="contracts/req-vgz",
                cost_record=pb.CostRecord(
                    period_start=START, period_end=END, actual_cost="1e999999"
                ),
            ),
            metadata=admin,
        )
    )
    assert (fail.reason, fail.field_violations) == (
        "INVALID_DECIMAL",
        ("cost_record.actual_cost",),
    )
    sroi = rpc.CalculateSroiRequest(
        investments=[rpc.SroiInvestment(stakeholder="a", amount="1e-999999")],
        outcomes=[
            rpc.SroiOutcome(
                stakeholder="s",
                quantity="1e999999",
                financial_proxy="1e999999",
                duration_years=50,
            )
        ],
        discount_rate="0.5",
    )
    fail = _fails(lambda: stub.CalculateSroi(sroi, metadata=admin))
    assert fail.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(fail.field_violations) >= {
        "investments[0].amount",
        "outcomes[0].quantity",
        "outcomes[0].financial_proxy",
    }


def test_an_indicator_version_no_column_can_hold_is_not_found(
    stub: rpc_grpc.OutcomesServiceStub, admin: Metadata
) -> None:
    """A version beyond a PostgreSQL integer made the query fail (INTERNAL)."""
    for version in ("2147483648", "99999999999999999999", "0"):
        request = rpc.GetIndicatorDefinitionRequest(
            name=f"indicators/DM2_HBA1C_MEASURED/versions/{version}"
        )
        fail = _fails(functools.partial(stub.GetIndicatorDefinition, request, metadata=admin))
        assert (fail.code, fail.reason) == (grpc.StatusCode.NOT_FOUND, "INDICATOR_NOT_FOUND")
