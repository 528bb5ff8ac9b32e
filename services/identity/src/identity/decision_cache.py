"""The decision inputs identity keeps in the process, owned by the repository.

An organisation's type and care group and a patient's care group are kept for the life of
the process, because nothing can change them. A patient's care relationships and consents
can change: they are kept with the facts version they were read at, every access-log append
checks that version in the database in the same statement, and a stale entry is dropped and
read again (see :func:`identity.use_cases.decisions.decide_and_append`). One cache serves
all units of work of a process (identity.main.deps_for); replicas each have their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from identity.models import OrgRef, PatientFacts

V = TypeVar("V")


class _Store(Generic[V]):
    """Found values are kept; a miss is asked again next time (it may exist by then)."""

    def __init__(self, max_entries: int) -> None:
        self._values: dict[str, V] = {}
        self._max = max_entries

    def get(self, key: str, load: Callable[[], V | None]) -> V | None:
        value = self._values.get(key)
        if value is None:
            value = load()
            if value is not None:
                if len(self._values) >= self._max:
                    self._values.clear()
                self._values[key] = value
        return value

    def peek(self, key: str) -> V | None:
        return self._values.get(key)

    def forget(self, key: str) -> None:
        self._values.pop(key, None)


class DecisionCache:
    MAX_ENTRIES = 200_000

    def __init__(self) -> None:
        self.organisations: _Store[OrgRef] = _Store(self.MAX_ENTRIES)
        self.patient_care_groups: _Store[str] = _Store(self.MAX_ENTRIES)
        self.patient_facts: _Store[PatientFacts] = _Store(self.MAX_ENTRIES)
