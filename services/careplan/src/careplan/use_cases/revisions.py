"""The plan's history: its immutable revisions, oldest first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from careplan.deps import Deps
from careplan.use_cases import versions
from servicekit.auth import Principal
from servicekit.identity_client import Access
from servicekit.paging import Page, PageRequest, Position


@dataclass(frozen=True)
class Revision:
    patient_id: str
    version: int
    author: str
    organisation_id: str
    create_time: dt.datetime
    change_summary: str
    changed_fields: list[str]


# A page of revisions continues after a version.
POSITION = {"after": int}


def valid_position(position: Position) -> bool:
    """Whether a page position names a version a plan can have."""
    after: int = position["after"]
    return 0 <= after <= versions.MAX_VERSION


def list_revisions(
    deps: Deps, principal: Principal, patient_id: str, request: PageRequest
) -> Page[Revision]:
    """One page of the revisions, oldest first."""
    versions.read_and_authorize(deps, principal, patient_id, Access.READ)
    with deps.uow() as uow:
        rows = uow.repo.revisions(patient_id, request.after(0), request.limit)
        items = [
            Revision(
                patient_id=r.patient_id,
                version=r.version,
                author=r.author,
                organisation_id=r.organisation_id,
                create_time=r.create_time,
                change_summary=r.change_summary,
                changed_fields=[f for f in r.changed_fields.split(",") if f],
            )
            for r in rows
        ]
    return Page.after_key(items, request, lambda r: r.version)
