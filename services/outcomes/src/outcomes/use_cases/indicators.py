"""Indicator definitions: the shipped versions stored at start-up, read by anyone signed
in. A stored (code, version) never changes."""

from __future__ import annotations

from collections.abc import Sequence

from outcomes import errors, indicators, positions
from outcomes.deps import Deps
from outcomes.models import IndicatorDefinitionRecord
from servicekit.auth import Principal
from servicekit.paging import Page, PageRequest

MAX_VERSION = 2**31 - 1


def load_definitions(deps: Deps, definitions: Sequence[indicators.Definition] | None = None) -> int:
    """Stores every shipped definition version not stored yet. A stored (code, version) is
    immutable: a file that changed it stops the service (add a new version instead)."""
    added = 0
    with deps.uow() as uow:
        for d in definitions if definitions is not None else indicators.load_files():
            record = uow.repo.definition(d.code, d.version)
            if record is None:
                uow.repo.add(
                    IndicatorDefinitionRecord(
                        code=d.code,
                        version=d.version,
                        title=d.title,
                        condition=d.condition,
                        definition_json=d.canonical,
                        content_hash=d.content_hash,
                        create_time=deps.clock(),
                    )
                )
                added += 1
            elif record.content_hash != d.content_hash:
                raise errors.IndicatorVersionChanged(
                    f"{d.name} differs from the stored version; add a new version instead",
                    metadata={"indicator": d.name},
                )
        uow.commit()
    return added


def get_definition(
    deps: Deps, principal: Principal, code: str, version: int
) -> IndicatorDefinitionRecord:
    if not 1 <= version <= MAX_VERSION:  # no stored version can have it (an int column)
        raise errors.IndicatorNotFound("indicator definition not found")
    with deps.uow() as uow:
        record = uow.repo.definition(code, version)
        if record is None:
            raise errors.IndicatorNotFound("indicator definition not found")
        return record


def list_definitions(
    deps: Deps, principal: Principal, page: PageRequest
) -> Page[IndicatorDefinitionRecord]:
    after = positions.after_definition(page.position)
    with deps.uow() as uow:
        items = uow.repo.definitions(after, page.limit)
    return Page.of(items, page, lambda d: {"c": d.code, "v": d.version})
