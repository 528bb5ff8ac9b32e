"""Fakes for unit tests only."""

from __future__ import annotations

from typing import Any


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
