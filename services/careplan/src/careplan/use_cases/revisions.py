"""The plan's history: its immutable revisions, oldest first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from careplan.clients import Access
from careplan.deps import Deps
from careplan.use_cases import versions
from servicekit.auth import Principal


@dataclass(frozen=True)
class Revision:
    patient_id: str
    version: int
    author: str
    organisation_id: str
    create_time: dt.datetime
    change_summary: str
    changed_fields: list[str]


@dataclass(frozen=True)
class Page:
    items: Sequence[Revision]
    last: int | None


def list_revisions(
    deps: Deps, principal: Principal, patient_id: str, after: int, limit: int
) -> Page:
    """The revisions after version ``after``, at most ``limit``; ``last`` is the version to
    continue after when there are more."""
    versions.read_and_authorize(deps, principal, patient_id, Access.READ)
    with deps.uow() as uow:
        rows = uow.repo.revisions(patient_id, after, limit + 1)
        more = len(rows) > limit
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
            for r in rows[:limit]
        ]
        return Page(items, items[-1].version if more and items else None)
