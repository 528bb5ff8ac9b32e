"""Fakes for unit tests only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from identity.models import LogRecord, Organisation, Person, RequestRecord
from identity.use_cases.deps import Deps
from testkit.fakes import FakeRequestRecords

T = TypeVar("T")


class FakeKeycloakAdmin:
    """Records what provisioning asks of Keycloak's admin API, and answers the user listing
    the people directory's sync reads."""

    def __init__(self, users: list[dict[str, Any]] | None = None) -> None:
        self.clients: dict[str, dict[str, Any]] = {}
        self.user_updates: list[tuple[str, dict[str, Any]]] = []
        # The realm's users as the admin API lists them, each with "realmRoles" standing for
        # its effective realm roles (which the API gives per user).
        self.users: list[dict[str, Any]] = users or []

    def create_client(self, payload: dict[str, Any], skip_exists: bool = False) -> str:
        internal_id = f"internal-{payload['clientId']}"
        if internal_id in self.clients and not skip_exists:
            raise RuntimeError("client exists")
        self.clients[internal_id] = payload
        return internal_id

    def get_client_service_account_user(self, client_id: str) -> dict[str, Any]:
        assert client_id in self.clients
        return {"id": f"user-of-{client_id}"}

    def update_user(self, user_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.user_updates.append((user_id, payload))
        return {}

    def get_users(self, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return [{k: v for k, v in u.items() if k != "realmRoles"} for u in self.users]

    def get_composite_realm_roles_of_user(
        self, user_id: str, brief_representation: bool = True
    ) -> list[dict[str, Any]]:
        (user,) = (u for u in self.users if u["id"] == user_id)
        return [{"name": role} for role in user.get("realmRoles", [])]


class FakeIdentityRepository(FakeRequestRecords[RequestRecord]):
    """The identity repository's organisations, people and request records in memory, for
    unit tests of the use cases that touch only those (the SQL is covered on PostgreSQL by
    the integration and API tests). What is added becomes visible to later units of work
    only once committed."""

    request_record_row = RequestRecord

    def __init__(self, store: FakeStore) -> None:
        self._store = store
        self.pending: list[object] = []

    def _all(self, kind: type[T]) -> list[T]:
        return [o for o in [*self._store.rows, *self.pending] if isinstance(o, kind)]

    def add(self, obj: object) -> None:
        self.pending.append(obj)

    def organisation(self, org_id: str) -> Organisation | None:
        return next((o for o in self._all(Organisation) if o.id == org_id), None)

    def organisations(
        self, care_group_id: str, type_: str | None, after: str | None, limit: int
    ) -> Sequence[Organisation]:
        found = sorted(
            (
                o
                for o in self._all(Organisation)
                if o.care_group_id == care_group_id
                and (type_ is None or o.type == type_)
                and (after is None or o.id > after)
            ),
            key=lambda o: o.id,
        )
        return found[:limit]

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self._all(Person) if p.id == person_id), None)

    def people(self) -> Sequence[Person]:
        return sorted(self._all(Person), key=lambda p: p.id)

    def people_by_ids(self, person_ids: Sequence[str]) -> Sequence[Person]:
        wanted = set(person_ids)
        return [p for p in self.people() if p.id in wanted]

    def keep_request_record(self, record: RequestRecord) -> None:
        self.add(record)

    def organisation_names(self, care_group_id: str, org_ids: Sequence[str]) -> dict[str, str]:
        return {
            o.id: o.display_name
            for o in self._all(Organisation)
            if o.care_group_id == care_group_id and o.id in org_ids
        }

    def users_in_patient_log(
        self, patient_id: str, care_group_id: str, user_ids: Sequence[str]
    ) -> set[str]:
        return {
            user
            for entry in self._store.log
            if entry.patient_id == patient_id and entry.care_group_id == care_group_id
            for user in (entry.user_id, entry.responsible_user)
            if user in user_ids
        }

    def request_record(self, caller: str, request_id: str) -> RequestRecord | None:
        return next(
            (
                r
                for r in self._all(RequestRecord)
                if r.caller == caller and r.request_id == request_id
            ),
            None,
        )


@dataclass
class FakeStore:
    rows: list[object] = field(default_factory=list)
    # The access log's entries (only who appears in whose log is read).
    log: list[LogRecord] = field(default_factory=list)


class FakeUnitOfWork:
    """A unit of work over a :class:`FakeStore`: commit keeps what was added, leaving the
    block without commit drops it."""

    def __init__(self, store: FakeStore) -> None:
        self.repo = FakeIdentityRepository(store)
        self._store = store
        self.log_stripe = 0

    def __enter__(self) -> FakeUnitOfWork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.repo.pending.clear()

    def commit(self) -> None:
        self._store.rows.extend(self.repo.pending)
        self.repo.pending.clear()

    def rollback(self) -> None:
        self.repo.pending.clear()


def fake_deps(store: FakeStore | None = None) -> Deps:
    """Use-case dependencies over an in-memory store."""
    held = store or FakeStore()
    return Deps(uow=lambda: FakeUnitOfWork(held), bsn_pepper=b"pepper")  # type: ignore[arg-type,return-value]
