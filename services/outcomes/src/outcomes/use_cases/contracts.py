"""Contracts between a care group and an insurer: created by the care group's administrator
(request_id makes a retried create write nothing), read by the care group's report readers
and the contract's own insurer."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from outcomes import errors, positions
from outcomes.base import ADMIN, INSURER, REPORT_READERS, care_group_of, organisation_of
from outcomes.contract_terms import (
    PRINCIPLES,
    ContractInput,
    contract_indicators,
    validate_contract,
)
from outcomes.deps import Deps
from outcomes.models import Contract, canonical_json
from outcomes.unit_of_work import UnitOfWork
from servicekit.auth import Principal
from servicekit.errors import Violations
from servicekit.idempotency import IdempotentRequest
from servicekit.paging import Page, PageRequest


def create_contract(
    deps: Deps,
    principal: Principal,
    contract_id: str,
    data: ContractInput,
    request: IdempotentRequest | None = None,
) -> Contract:
    """Creates a contract. ``request`` carries its request_id and fingerprint
    (servicekit.idempotency): the same request_id with the same fingerprint returns the
    first contract and writes nothing; with another fingerprint it is INVALID_ARGUMENT
    ``REQUEST_ID_REUSED``."""
    if not principal.has_role(ADMIN):
        raise errors.RoleNotPermitted("only the care group's administrator creates contracts")
    request = request or IdempotentRequest.of(principal, "", "CreateContract", "")
    care_group = care_group_of(principal)
    v = Violations()
    validate_contract(contract_id, data, v)
    now = deps.clock()
    try:
        with deps.uow() as uow:
            indicator_terms = contract_indicators(uow, data, v)
            v.raise_if_any()
            replay = _replay(uow, care_group, request)
            if replay is not None:
                return replay
            if uow.repo.contract(contract_id) is not None:
                raise _exists(contract_id)
            assert data.period_start is not None and data.period_end is not None
            terms = {
                "indicators": indicator_terms,
                "financing": dict(data.financing),
                "principles": {k: data.principles[k] for k in PRINCIPLES},
            }
            contract = Contract(
                id=contract_id,
                care_group_id=care_group,
                insurer_id=data.insurer_id,
                display_name=data.display_name.strip(),
                period_start=data.period_start,
                period_end=data.period_end,
                terms_json=canonical_json(terms),
                request_id=request.request_id or None,
                fingerprint=request.fingerprint if request.request_id else "",
                version=1,
                create_time=now,
                update_time=now,
            )
            uow.repo.add(contract)
            uow.commit()
            return contract
    except IntegrityError:
        # A concurrent create took the request_id or the contract id between the checks
        # and the commit: answer as the checks would have now.
        with deps.uow() as uow:
            replay = _replay(uow, care_group, request)
            if replay is not None:
                return replay
        raise _exists(contract_id) from None


def _replay(uow: UnitOfWork, care_group: str, request: IdempotentRequest) -> Contract | None:
    """The contract a request with this request_id created, if it was this request (another
    request with the same id is REQUEST_ID_REUSED)."""
    name = request.replayed(uow.repo.contract_requests(care_group))
    return uow.repo.contract(name.removeprefix("contracts/")) if name else None


def _exists(contract_id: str) -> errors.ContractExists:
    return errors.ContractExists(
        "a contract with this id exists", metadata={"contract": f"contracts/{contract_id}"}
    )


def visible_contract(uow: UnitOfWork, principal: Principal, contract_id: str) -> Contract:
    """The contract, if the caller may see it; otherwise NOT_FOUND (never a hint it exists)."""
    if not principal.roles & REPORT_READERS:
        raise errors.RoleNotPermitted("this role does not read contracts")
    contract = uow.repo.contract(contract_id)
    if contract is None or contract.care_group_id != care_group_of(principal):
        raise errors.ContractNotFound("contract not found")
    if (
        principal.has_role(INSURER)
        and not principal.has_role(ADMIN)
        and not contract.visible_to_insurer(organisation_of(principal))
    ):
        raise errors.ContractNotFound("contract not found")
    return contract


def get_contract(deps: Deps, principal: Principal, contract_id: str) -> Contract:
    with deps.uow() as uow:
        return visible_contract(uow, principal, contract_id)


def list_contracts(deps: Deps, principal: Principal, page: PageRequest) -> Page[Contract]:
    if not principal.roles & REPORT_READERS:
        raise errors.RoleNotPermitted("this role does not read contracts")
    insurer = (
        organisation_of(principal)
        if principal.has_role(INSURER) and not principal.has_role(ADMIN)
        else None
    )
    with deps.uow() as uow:
        items = uow.repo.contracts(
            care_group_of(principal), insurer, positions.after_contract(page.position), page.limit
        )
    return Page.of(items, page, lambda c: {"id": c.id})
