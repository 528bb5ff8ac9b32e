"""The former import path of the use cases, kept for code outside this service that still
imports it (other services' API tests register patients and organisations through it), with
the former ``request_id`` keyword. New code imports :mod:`identity.use_cases` modules
directly and passes an ``IdempotentRequest`` (servicekit.idempotency)."""

from __future__ import annotations

from identity.models import Organisation, Patient
from identity.use_cases import organisations, patients
from identity.use_cases.authorization import AuthorizeInput, AuthorizeResult, authorize
from identity.use_cases.common import idempotent
from identity.use_cases.consents import ConsentInput
from identity.use_cases.deps import Deps, Provisioner
from identity.use_cases.organisations import OrganisationInput, bootstrap_care_group
from servicekit.auth import Principal

__all__ = [
    "AuthorizeInput",
    "AuthorizeResult",
    "ConsentInput",
    "Deps",
    "OrganisationInput",
    "Provisioner",
    "authorize",
    "bootstrap_care_group",
    "create_organisation",
    "register_patient",
]


def create_organisation(
    deps: Deps,
    principal: Principal,
    data: OrganisationInput,
    organisation_id: str,
    *,
    provision_service_account: bool = False,
    request_id: str = "",
) -> Organisation:
    return organisations.create_organisation(
        deps,
        principal,
        data,
        organisation_id,
        provision_service_account=provision_service_account,
        request=idempotent(deps, principal, request_id, "CreateOrganisation"),
    )


def register_patient(
    deps: Deps, principal: Principal, bsn: str, patient_id: str = "", request_id: str = ""
) -> Patient:
    return patients.register_patient(
        deps, principal, bsn, patient_id, idempotent(deps, principal, request_id, "RegisterPatient")
    )
