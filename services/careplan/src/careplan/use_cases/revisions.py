"""The plan's history: its immutable revisions, oldest first.

A caller who sees only part of the plan (:mod:`careplan.minimisation`) sees every revision
(its version, organisation and time), but its summary and changed groups describe what
changed in the caller's part of the two versions (``no visible change`` when nothing did),
and its author only when the author is of the caller's organisation (or the service
itself), so a revision tells nothing the caller's part of each version does not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from careplan import minimisation
from careplan.deps import Deps
from careplan.merge import describe
from careplan.models import CarePlanRevisionRow, PlanContent, view_from_document
from careplan.use_cases import versions
from servicekit.auth import Principal
from servicekit.identity_client import Access
from servicekit.paging import Page, PageRequest, Position, PositionKind
from servicekit.views import view_of

CREATED = "created"
NO_VISIBLE_CHANGE = "no visible change"


@dataclass(frozen=True)
class Revision:
    patient_id: str
    version: int
    author: str
    organisation_id: str
    create_time: dt.datetime
    change_summary: str
    changed_fields: list[str]


def valid_position(position: Position) -> bool:
    """Whether a page position names a version a plan can have."""
    after: int = position["after"]
    return 0 <= after <= versions.MAX_VERSION


# A page of revisions continues after a version.
POSITION = PositionKind({"after": int}, valid_position)


def list_revisions(
    deps: Deps, principal: Principal, patient_id: str, request: PageRequest
) -> Page[Revision]:
    """One page of the revisions, oldest first, as the caller may see them."""
    _, role = versions.read_and_authorize(deps, principal, patient_id, Access.READ)
    viewer = versions.viewer_of(principal, role)
    with deps.uow() as uow:
        rows = uow.repo.revisions(patient_id, request.after(0), request.limit)
        if viewer is None:
            items = [_revision(r) for r in rows]
        else:
            first = rows[0].version if rows else 0
            before = uow.repo.revision(patient_id, first - 1) if first > 1 else None
            items = _parts(rows, before, viewer)
    return Page.after_key(items, request, lambda r: r.version)


def _revision(r: CarePlanRevisionRow) -> Revision:
    return view_of(Revision, r, changed_fields=[f for f in r.changed_fields.split(",") if f])


def _parts(
    rows: Sequence[CarePlanRevisionRow],
    before: CarePlanRevisionRow | None,
    viewer: minimisation.Viewer,
) -> list[Revision]:
    """The revisions as a part-viewer sees them: each described by the change between the
    viewer's parts of the version before it and of itself."""
    previous = _part(before, viewer) if before is not None else PlanContent()
    items = []
    for r in rows:
        current = _part(r, viewer)
        if r.version == 1:
            summary, changed = CREATED, [CREATED]
        else:
            summary, changed = describe(previous, current)
        own = bool(viewer.organisation_id) and r.organisation_id == viewer.organisation_id
        service = r.author.startswith(minimisation.SERVICE_AUTHOR_PREFIX)
        items.append(
            view_of(
                Revision,
                r,
                author=r.author if own or service else "",
                change_summary=summary or NO_VISIBLE_CHANGE,
                changed_fields=changed,
            )
        )
        previous = current
    return items


def _part(row: CarePlanRevisionRow, viewer: minimisation.Viewer) -> PlanContent:
    return minimisation.minimise(view_from_document(row.document).content, viewer)
