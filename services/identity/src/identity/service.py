"""The former import path of the use cases, kept for code outside this service that still
imports it (other services' API tests register patients and organisations through it).
New code imports :mod:`identity.use_cases` modules directly."""

from __future__ import annotations

from identity.use_cases.authorization import AuthorizeInput, AuthorizeResult, authorize
from identity.use_cases.consents import ConsentInput
from identity.use_cases.deps import Deps, Provisioner
from identity.use_cases.organisations import (
    OrganisationInput,
    bootstrap_care_group,
    create_organisation,
)
from identity.use_cases.patients import register_patient

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
