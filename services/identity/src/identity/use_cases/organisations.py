"""Organisations: creating (and provisioning), reading, listing and updating them; care
groups are bootstrapped by the operator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from identity import errors
from identity.models import (
    Organisation,
    OrganisationType,
)
from identity.use_cases.common import (
    ADMIN_ROLES,
    NO_REQUEST_ID,
    care_group_of,
    names_org,
)
from identity.use_cases.deps import Deps
from servicekit import dutch, names
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument, Violations
from servicekit.idempotency import IdempotentRequest
from servicekit.paging import Page, PageRequest


@dataclass(frozen=True)
class OrganisationInput:
    display_name: str
    type: OrganisationType | None
    care_group_id: str = ""
    agb_code: str = ""
    ura: str = ""
    uzovi: str = ""
    cbs_municipality_code: str = ""
    etag: str = ""


def _validate_organisation(
    data: OrganisationInput, v: Violations, prefix: str = "organisation"
) -> None:
    if not data.display_name.strip():
        v.add(f"{prefix}.display_name", "is required", "DISPLAY_NAME_REQUIRED")
    elif len(data.display_name) > 200:
        v.add(f"{prefix}.display_name", "must be at most 200 characters", "DISPLAY_NAME_TOO_LONG")
    if data.type is None:
        v.add(f"{prefix}.type", "is required", "ORGANISATION_TYPE_REQUIRED")
    if data.agb_code and not dutch.is_agb(data.agb_code):
        v.add(f"{prefix}.agb_code", "an AGB code has exactly 8 digits", "INVALID_AGB_CODE")
    if data.type in (OrganisationType.GP_PRACTICE, OrganisationType.HOSPITAL) and not data.agb_code:
        v.add(f"{prefix}.agb_code", "is required for practices and hospitals", "AGB_CODE_REQUIRED")
    if data.ura and not dutch.is_ura(data.ura):
        v.add(f"{prefix}.ura", "a URA has at most 8 digits", "INVALID_URA")
    if data.uzovi and not dutch.is_uzovi(data.uzovi):
        v.add(f"{prefix}.uzovi", "a UZOVI code has exactly 4 digits", "INVALID_UZOVI")
    if data.type is OrganisationType.INSURER and not data.uzovi:
        v.add(f"{prefix}.uzovi", "is required for insurers", "UZOVI_REQUIRED")
    if data.uzovi and data.type not in (OrganisationType.INSURER, None):
        v.add(f"{prefix}.uzovi", "only insurers have a UZOVI code", "UZOVI_NOT_ALLOWED")
    code = data.cbs_municipality_code
    if code and not dutch.is_cbs_municipality(code):
        v.add(
            f"{prefix}.cbs_municipality_code",
            "a CBS municipality code is GM followed by 4 digits",
            "INVALID_CBS_MUNICIPALITY_CODE",
        )
    if data.type is OrganisationType.MUNICIPALITY and not code:
        v.add(
            f"{prefix}.cbs_municipality_code", "is required for municipalities", "CBS_CODE_REQUIRED"
        )
    if code and data.type not in (OrganisationType.MUNICIPALITY, None):
        v.add(
            f"{prefix}.cbs_municipality_code",
            "only municipalities have one",
            "CBS_CODE_NOT_ALLOWED",
        )


def _require_admin_of(principal: Principal, care_group_id: str) -> None:
    if not principal.roles & ADMIN_ROLES or principal.care_group != names_org(care_group_id):
        raise errors.RoleNotPermitted("only the care group's administrator may do this")


def create_organisation(
    deps: Deps,
    principal: Principal,
    data: OrganisationInput,
    organisation_id: str,
    *,
    provision_service_account: bool = False,
    request: IdempotentRequest = NO_REQUEST_ID,
) -> Organisation:
    v = Violations()
    if not names.valid_id(organisation_id):
        v.add(
            "organisation_id",
            "2-63 lower-case letters, digits and dashes",
            "INVALID_ORGANISATION_ID",
        )
    _validate_organisation(data, v)
    v.raise_if_any()
    care_group_id = (
        organisation_id if data.type is OrganisationType.CARE_GROUP else care_group_of(principal)
    )
    if data.type is OrganisationType.CARE_GROUP:
        raise errors.RoleNotPermitted(
            "care groups are created by the platform operator (identity bootstrap-care-group)"
        )
    _require_admin_of(principal, care_group_id)
    with deps.uow() as uow:
        replay = request.replayed(uow.repo)
        if replay is not None:
            existing = uow.repo.organisation(names.parse_one(replay, "organisations"))
            if existing is None:
                raise errors.OrganisationNotFound("organisation not found")
            return existing
        if uow.repo.organisation(organisation_id) is not None:
            raise errors.OrganisationExists(
                "an organisation with this id exists",
                metadata={"organisation": names_org(organisation_id)},
            )
        org = _new_organisation(organisation_id, data, care_group_id, deps.clock())
        if provision_service_account:
            if deps.provisioner is None:
                raise errors.ProvisioningUnavailable("Keycloak admin access is not configured")
            org.service_account_client_id = deps.provisioner.provision(org)
        uow.repo.add(org)
        request.remember(uow.repo, names_org(org.id))
        uow.commit()
        return org


def _new_organisation(
    organisation_id: str, data: OrganisationInput, care_group_id: str, now: dt.datetime
) -> Organisation:
    assert data.type is not None
    return Organisation(
        id=organisation_id,
        display_name=data.display_name.strip(),
        type=data.type.value,
        care_group_id=care_group_id,
        agb_code=data.agb_code or None,
        ura=data.ura or None,
        uzovi=data.uzovi or None,
        cbs_municipality_code=data.cbs_municipality_code or None,
        version=1,
        create_time=now,
        update_time=now,
    )


def bootstrap_care_group(deps: Deps, organisation_id: str, data: OrganisationInput) -> Organisation:
    """Creates a care group (a tenant). Operator-only: reachable from the CLI, not the API."""
    v = Violations()
    if not names.valid_id(organisation_id):
        v.add(
            "organisation_id",
            "2-63 lower-case letters, digits and dashes",
            "INVALID_ORGANISATION_ID",
        )
    _validate_organisation(data, v)
    v.raise_if_any()
    with deps.uow() as uow:
        existing = uow.repo.organisation(organisation_id)
        if existing is not None:
            return existing
        org = _new_organisation(organisation_id, data, organisation_id, deps.clock())
        uow.repo.add(org)
        uow.commit()
        return org


def get_organisation(deps: Deps, principal: Principal, organisation_id: str) -> Organisation:
    with deps.uow() as uow:
        org = uow.repo.organisation(organisation_id)
        if org is None or org.care_group_id != care_group_of(principal):
            raise errors.OrganisationNotFound("organisation not found")
        return org


def list_organisations(
    deps: Deps, principal: Principal, type_: OrganisationType | None, page: PageRequest
) -> Page[Organisation]:
    with deps.uow() as uow:
        items = uow.repo.organisations(
            care_group_of(principal), type_.value if type_ else None, page.after(), page.limit
        )
        return Page.after_key(items, page, lambda item: item.id)


def update_organisation(
    deps: Deps,
    principal: Principal,
    organisation_id: str,
    data: OrganisationInput,
    mask: Sequence[str],
) -> Organisation:
    allowed = {"display_name", "agb_code", "ura", "uzovi", "cbs_municipality_code"}
    unknown = [p for p in mask if p not in allowed]
    if unknown:
        raise InvalidArgument.single(
            "update_mask", f"cannot update {', '.join(unknown)}", "FIELD_NOT_UPDATABLE"
        )
    with deps.uow() as uow:
        org = uow.repo.organisation(organisation_id)
        if org is None or org.care_group_id != care_group_of(principal):
            raise errors.OrganisationNotFound("organisation not found")
        _require_admin_of(principal, org.care_group_id)
        if data.etag and data.etag != org.etag:
            raise errors.EtagMismatch("the organisation has changed; read it again")
        paths = list(mask) or sorted(allowed)
        merged = OrganisationInput(
            display_name=data.display_name if "display_name" in paths else org.display_name,
            type=OrganisationType(org.type),
            agb_code=data.agb_code if "agb_code" in paths else (org.agb_code or ""),
            ura=data.ura if "ura" in paths else (org.ura or ""),
            uzovi=data.uzovi if "uzovi" in paths else (org.uzovi or ""),
            cbs_municipality_code=data.cbs_municipality_code
            if "cbs_municipality_code" in paths
            else (org.cbs_municipality_code or ""),
        )
        v = Violations()
        _validate_organisation(merged, v)
        v.raise_if_any()
        org.display_name = merged.display_name.strip()
        org.agb_code = merged.agb_code or None
        org.ura = merged.ura or None
        org.uzovi = merged.uzovi or None
        org.cbs_municipality_code = merged.cbs_municipality_code or None
        org.touch(deps.clock())
        uow.commit()
        return org
