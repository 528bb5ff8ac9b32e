"""Fakes for unit tests only."""

from __future__ import annotations

from typing import Any


class FakeKeycloakAdmin:
    """Records what provisioning asks of Keycloak's admin API."""

    def __init__(self) -> None:
        self.clients: dict[str, dict[str, Any]] = {}
        self.user_updates: list[tuple[str, dict[str, Any]]] = []

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
