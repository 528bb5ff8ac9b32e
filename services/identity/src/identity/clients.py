"""Identity's outgoing dependency: Keycloak's admin API, for provisioning the
service-account client of a newly onboarded organisation and for reading the realm's users
into the people directory (identity.people)."""

from __future__ import annotations

from typing import Any, Protocol

from identity.models import Organisation


class KeycloakAdminClient(Protocol):
    """The part of python-keycloak's ``KeycloakAdmin`` that provisioning and the people
    directory's sync (identity.people) use."""

    def create_client(self, payload: dict[str, Any], skip_exists: bool = False) -> str: ...

    def get_client_service_account_user(self, client_id: str) -> dict[str, Any]: ...

    def update_user(self, user_id: str, payload: dict[str, Any]) -> dict[str, Any]: ...

    def get_users(self, query: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def get_composite_realm_roles_of_user(
        self, user_id: str, brief_representation: bool = True
    ) -> list[dict[str, Any]]: ...


AUDIENCES_BY_TYPE = {
    "gp-practice": ["carenet-identity", "carenet-referral", "carenet-careplan", "carenet-outcomes"],
    "hospital": ["carenet-identity", "carenet-referral", "carenet-careplan"],
    "municipality": ["carenet-identity", "carenet-referral"],
    "lifestyle-provider": ["carenet-identity", "carenet-referral", "carenet-careplan"],
    "insurer": ["carenet-outcomes"],
    "care-group": ["carenet-identity", "carenet-referral", "carenet-careplan", "carenet-outcomes"],
}


class KeycloakProvisioner:
    """Creates ``org-<id>`` as a confidential service-account client, with the audience
    mappers and the organisation/tenant attributes the realm export gives its own clients."""

    def __init__(self, admin: KeycloakAdminClient) -> None:
        self.admin = admin

    def client_payload(self, org: Organisation) -> dict[str, Any]:
        client_id = f"org-{org.id}"
        mappers: list[dict[str, Any]] = [
            {
                "name": f"audience {aud}",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "config": {"included.client.audience": aud, "access.token.claim": "true"},
            }
            for aud in AUDIENCES_BY_TYPE[org.type]
        ]
        for claim in ("carenet_org", "carenet_tenant"):
            mappers.append(
                {
                    "name": claim,
                    "protocol": "openid-connect",
                    "protocolMapper": "oidc-usermodel-attribute-mapper",
                    "config": {
                        "user.attribute": claim,
                        "claim.name": claim,
                        "jsonType.label": "String",
                        "access.token.claim": "true",
                    },
                }
            )
        return {
            "clientId": client_id,
            "name": org.display_name,
            "enabled": True,
            "publicClient": False,
            "serviceAccountsEnabled": True,
            "standardFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "protocol": "openid-connect",
            "protocolMappers": mappers,
        }

    def provision(self, organisation: Organisation) -> str:
        payload = self.client_payload(organisation)
        internal_id = self.admin.create_client(payload, skip_exists=True)
        user = self.admin.get_client_service_account_user(internal_id)
        self.admin.update_user(
            str(user["id"]),
            {
                "attributes": {
                    "carenet_org": [organisation.id],
                    "carenet_tenant": [organisation.care_group_id],
                }
            },
        )
        return str(payload["clientId"])


def keycloak_admin(
    url: str, realm: str, admin_realm: str, client_id: str, secret: str
) -> KeycloakAdminClient:
    from keycloak import KeycloakAdmin, KeycloakOpenIDConnection

    connection = KeycloakOpenIDConnection(
        server_url=url,
        realm_name=realm,
        user_realm_name=admin_realm,
        client_id=client_id,
        client_secret_key=secret,
        timeout=10,
    )
    admin: KeycloakAdminClient = KeycloakAdmin(connection=connection)
    return admin
