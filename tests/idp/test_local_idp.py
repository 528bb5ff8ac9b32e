"""The local issuer against the Keycloak realm export it serves.

The drift tests get a real token for every client (and every demo user) the realm export allows,
and compare its claims with what the export says. The expectations are computed here from the
export, independently of infra/local-idp/server.mjs, so the tests fail when the issuer hard-codes
something or stops following the export.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakError

from testkit.idp import LocalIdp, repo_root

PLATFORM_ROLES = {
    "gp",
    "practice-nurse",
    "specialist",
    "sport-coach",
    "municipality-officer",
    "provider",
    "insurer-analyst",
    "care-group-admin",
    "patient",
    "auditor",
    "service",
    "delegate",
}
CARENET_CLAIMS = ("carenet_org", "carenet_tenant", "carenet_patient")
IDENTITY, REFERRAL, CAREPLAN, OUTCOMES, FHIR = (
    "carenet-identity",
    "carenet-referral",
    "carenet-careplan",
    "carenet-outcomes",
    "carenet-fhir",
)
PLATFORM_AUDIENCES = {
    "carenet-kis": {IDENTITY, REFERRAL, CAREPLAN, OUTCOMES, FHIR},
    "carenet-municipality": {IDENTITY, REFERRAL},
    "carenet-provider": {IDENTITY, REFERRAL, CAREPLAN},
    "carenet-insurer": {OUTCOMES, FHIR},
    "carenet-patient-app": {IDENTITY, REFERRAL, CAREPLAN, FHIR},
    "carenet-web": {IDENTITY, REFERRAL, CAREPLAN, OUTCOMES},
    "svc-referral": {IDENTITY},
    "svc-careplan": {IDENTITY, REFERRAL},
    "svc-outcomes": {IDENTITY},
}

KEYCLOAK_DIR = repo_root(Path(__file__)) / "infra" / "keycloak"
REALM: dict[str, Any] = json.loads((KEYCLOAK_DIR / "demo-realm.json").read_text())
PRODUCTION_REALM: dict[str, Any] = json.loads((KEYCLOAK_DIR / "production-realm.json").read_text())
REALM_NAME: str = REALM["realm"]
KEYCLOAK_BUILTIN_ROLES = {"offline_access", "uma_authorization", f"default-roles-{REALM_NAME}"}


# ---------------------------------------------------------------- what the export says


def _enabled(client: dict[str, Any]) -> bool:
    return bool(client.get("enabled", True)) and not client.get("bearerOnly", False)


SERVICE_ACCOUNT_CLIENTS = [
    c["clientId"] for c in REALM["clients"] if _enabled(c) and c.get("serviceAccountsEnabled")
]
DIRECT_GRANT_CLIENTS = [
    c["clientId"] for c in REALM["clients"] if _enabled(c) and c.get("directAccessGrantsEnabled")
]
STANDARD_FLOW_CLIENTS = [
    c["clientId"] for c in REALM["clients"] if _enabled(c) and c.get("standardFlowEnabled")
]
NO_TOKEN_CLIENTS = [
    c["clientId"]
    for c in REALM["clients"]
    if c["clientId"] not in SERVICE_ACCOUNT_CLIENTS + DIRECT_GRANT_CLIENTS + STANDARD_FLOW_CLIENTS
]
LOGIN_USERS = [
    u["username"]
    for u in REALM["users"]
    if not u.get("serviceAccountClientId")
    and any(c.get("type") == "password" for c in u.get("credentials", []))
]


def client_rep(realm: dict[str, Any], client_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in realm["clients"] if c["clientId"] == client_id)
    return found


def user_rep(realm: dict[str, Any], username: str) -> dict[str, Any]:
    found: dict[str, Any] = next(u for u in realm["users"] if u["username"] == username)
    return found


def service_account_rep(realm: dict[str, Any], client_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        u for u in realm["users"] if u.get("serviceAccountClientId") == client_id
    )
    return found


def plain_password(user: dict[str, Any]) -> str:
    value: str = next(c["value"] for c in user["credentials"] if c["type"] == "password")
    return value


def mappers(client: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        m
        for m in client.get("protocolMappers", [])
        if m["protocolMapper"] == kind and m["config"].get("access.token.claim", "true") == "true"
    ]


def expected_audiences(client: dict[str, Any]) -> set[str]:
    return {
        m["config"].get("included.client.audience") or m["config"]["included.custom.audience"]
        for m in mappers(client, "oidc-audience-mapper")
    }


def expected_roles(realm: dict[str, Any], user: dict[str, Any]) -> set[str]:
    composites = {
        r["name"]: r.get("composites", {}).get("realm", []) for r in realm["roles"]["realm"]
    }
    roles: set[str] = set()
    todo = list(user.get("realmRoles", []))
    while todo:
        role = todo.pop()
        if role not in roles:
            roles.add(role)
            todo.extend(composites.get(role, []))
    return roles


def expected_claims(client: dict[str, Any], user: dict[str, Any]) -> dict[str, str]:
    claims: dict[str, str] = {}
    for m in mappers(client, "oidc-usermodel-attribute-mapper"):
        values = user.get("attributes", {}).get(m["config"]["user.attribute"], [])
        if values:
            claims[m["config"]["claim.name"]] = values[0]
    for m in mappers(client, "oidc-hardcoded-claim-mapper"):
        claims[m["config"]["claim.name"]] = m["config"]["claim.value"]
    return claims


def unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def assert_token_matches(
    realm: dict[str, Any], token: str, client: dict[str, Any], user: dict[str, Any]
) -> None:
    claims = unverified(token)
    assert claims["azp"] == client["clientId"]
    aud = claims["aud"]
    assert isinstance(aud, list)
    assert set(aud) == expected_audiences(client)
    assert set(claims.get("realm_access", {}).get("roles", [])) == expected_roles(realm, user)
    assert claims["preferred_username"] == user["username"]
    assert claims["sub"] == user["id"]
    assert claims["typ"] == "Bearer"
    wanted = expected_claims(client, user)
    for name in CARENET_CLAIMS:
        assert claims.get(name) == wanted.get(name), name


# ---------------------------------------------------------------- the export itself


def test_realm_roles_are_the_platform_roles(realm: dict[str, Any]) -> None:
    names = {r["name"] for r in realm["roles"]["realm"]} - KEYCLOAK_BUILTIN_ROLES
    assert names == PLATFORM_ROLES


def test_realm_clients_have_the_platform_audiences(realm: dict[str, Any]) -> None:
    callers = {
        c["clientId"]: expected_audiences(c) for c in realm["clients"] if c.get("protocolMappers")
    }
    assert callers == PLATFORM_AUDIENCES
    resource_servers = {c["clientId"] for c in realm["clients"] if c.get("bearerOnly")}
    assert resource_servers == {IDENTITY, REFERRAL, CAREPLAN, OUTCOMES, FHIR}


def test_realm_callers_map_every_carenet_claim(realm: dict[str, Any]) -> None:
    for client_id in PLATFORM_AUDIENCES:
        client = client_rep(realm, client_id)
        mapped = {
            m["config"]["claim.name"] for m in mappers(client, "oidc-usermodel-attribute-mapper")
        } | {m["config"]["claim.name"] for m in mappers(client, "oidc-hardcoded-claim-mapper")}
        assert set(CARENET_CLAIMS) <= mapped, client_id
        assert client.get("secret") == f"{client_id}-secret"


def test_realm_users_carry_tenant_org_and_patient(realm: dict[str, Any]) -> None:
    for user in realm["users"]:
        attrs = user.get("attributes", {})
        assert attrs.get("carenet_tenant") == ["cg-zuidoost"], user["username"]
        roles = set(user.get("realmRoles", [])) - KEYCLOAK_BUILTIN_ROLES
        assert roles <= PLATFORM_ROLES, user["username"]
        if "patient" in roles:
            assert attrs.get("carenet_patient"), user["username"]
        else:
            assert attrs.get("carenet_org"), user["username"]
            assert "carenet_patient" not in attrs, user["username"]
    for client_id in ("svc-referral", "svc-careplan", "svc-outcomes"):
        assert service_account_rep(realm, client_id)["realmRoles"] == ["service"]


def test_only_service_accounts_are_delegates(realm: dict[str, Any]) -> None:
    """The on-behalf-of header is taken only from delegates: registered systems, no people."""
    delegates = [u for u in realm["users"] if "delegate" in u.get("realmRoles", [])]
    assert [u.get("serviceAccountClientId") for u in delegates] == ["carenet-kis"]
    kis = service_account_rep(realm, "carenet-kis")
    assert kis["attributes"]["carenet_org"] == ["gp-de-linde"]  # a GP practice's KIS
    assert kis["attributes"]["carenet_tenant"] == ["cg-zuidoost"]


def test_the_kis_service_account_token_is_a_delegate_of_its_practice(
    local_idp: LocalIdp,
) -> None:
    claims = unverified(local_idp.client_token("carenet-kis"))
    assert claims["realm_access"]["roles"] == ["delegate"]
    assert claims["carenet_org"] == "gp-de-linde"
    personal = unverified(local_idp.password_token("carenet-kis", "dr.jansen"))
    assert "delegate" not in personal["realm_access"]["roles"]


# ---------------------------------------------------------------- the production realm

PRODUCTION_VALUES = {
    "CARENET_CARE_GROUP_ID": "cg-prod",
    "CARENET_KIS_ORGANISATION_ID": "gp-prod",
    "CARENET_MUNICIPALITY_ORGANISATION_ID": "gm-prod",
    "CARENET_PROVIDER_ORGANISATION_ID": "gli-prod",
    "CARENET_INSURER_ORGANISATION_ID": "ins-prod",
    "CARENET_WEB_URL": "https://carenet.example",
}


def _fill(text: str, values: dict[str, str]) -> str:
    """What Keycloak's import does with ${NAME} placeholders from its environment."""
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return text


def test_the_production_realm_has_no_people_and_no_secrets() -> None:
    assert all(u.get("serviceAccountClientId") for u in PRODUCTION_REALM["users"])
    assert not any(u.get("credentials") for u in PRODUCTION_REALM["users"])
    for client in PRODUCTION_REALM["clients"]:
        if "secret" in client:
            placeholder = client["clientId"].upper().replace("-", "_") + "_CLIENT_SECRET"
            assert client["secret"] == "${" + placeholder + "}"


def test_the_filled_production_realm_issues_the_demo_realms_tokens(
    tmp_path: Path, idp_keys_file: Path
) -> None:
    """Filled in at deploy, the production realm gives every service account the audiences,
    roles and claims the demo realm gives it (with the deployment's organisation ids), and
    nobody can log in with a password."""
    secrets = {
        c["clientId"]: f"prod-{c['clientId']}-{index}"
        for index, c in enumerate(PRODUCTION_REALM["clients"])
        if "secret" in c
    }
    values = dict(PRODUCTION_VALUES)
    values |= {
        cid.upper().replace("-", "_") + "_CLIENT_SECRET": secret for cid, secret in secrets.items()
    }
    filled_text = _fill((KEYCLOAK_DIR / "production-realm.json").read_text(), values)
    assert "${CARENET_" not in filled_text and "${SVC_" not in filled_text
    realm_file = tmp_path / "production-realm.json"
    realm_file.write_text(filled_text)
    filled = json.loads(filled_text)

    with LocalIdp.start(keys_file=idp_keys_file, realm_file=realm_file) as idp:
        for client_id in SERVICE_ACCOUNT_CLIENTS:
            with pytest.raises(KeycloakError):
                idp.client_token(client_id)  # the demo secret does not work
            token = idp.client_token(client_id, secrets[client_id])
            account = service_account_rep(filled, client_id)
            assert_token_matches(filled, token, client_rep(filled, client_id), account)
            claims = unverified(token)
            assert set(claims["aud"]) == PLATFORM_AUDIENCES[client_id]
            demo_roles = service_account_rep(REALM, client_id).get("realmRoles", [])
            assert set(claims.get("realm_access", {}).get("roles", [])) == set(demo_roles)
            assert claims["carenet_tenant"] == "cg-prod"
        assert unverified(idp.client_token("carenet-kis", secrets["carenet-kis"]))[
            "carenet_org"
        ] == ("gp-prod")
        for username in LOGIN_USERS:
            with pytest.raises(KeycloakError):
                idp.password_token("carenet-kis", username, secret=secrets["carenet-kis"])


# ---------------------------------------------------------------- drift: issuer vs export


@pytest.mark.parametrize("client_id", SERVICE_ACCOUNT_CLIENTS)
def test_service_account_token_matches_realm(
    local_idp: LocalIdp, realm: dict[str, Any], client_id: str
) -> None:
    token = local_idp.client_token(client_id)
    client = client_rep(realm, client_id)
    assert_token_matches(realm, token, client, service_account_rep(realm, client_id))
    assert unverified(token)["client_id"] == client_id


@pytest.mark.parametrize("username", LOGIN_USERS)
@pytest.mark.parametrize("client_id", DIRECT_GRANT_CLIENTS)
def test_password_token_matches_realm(
    local_idp: LocalIdp, realm: dict[str, Any], client_id: str, username: str
) -> None:
    user = user_rep(realm, username)
    token = local_idp.password_token(client_id, username, plain_password(user))
    assert_token_matches(realm, token, client_rep(realm, client_id), user)
    assert "client_id" not in unverified(token)


@pytest.mark.parametrize("client_id", NO_TOKEN_CLIENTS)
def test_clients_without_a_token_grant_get_no_token(local_idp: LocalIdp, client_id: str) -> None:
    with pytest.raises(KeycloakError):
        local_idp.client_token(client_id, secret="anything")


@pytest.mark.parametrize(
    "client_id", [c for c in SERVICE_ACCOUNT_CLIENTS if c not in DIRECT_GRANT_CLIENTS]
)
def test_password_grant_needs_direct_access_grants(local_idp: LocalIdp, client_id: str) -> None:
    with pytest.raises(KeycloakError):
        local_idp.password_token(client_id, "dr.jansen")


def test_issuer_follows_an_edited_realm_export(
    tmp_path: Path, realm: dict[str, Any], idp_keys_file: Path, local_idp: LocalIdp
) -> None:
    edited = copy.deepcopy(realm)
    insurer = client_rep(edited, "carenet-insurer")
    for m in mappers(insurer, "oidc-audience-mapper"):
        m["config"]["included.client.audience"] = REFERRAL
    insurer["protocolMappers"].append(
        {
            "name": "fixed patient",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-hardcoded-claim-mapper",
            "config": {
                "claim.name": "carenet_patient",
                "claim.value": "p-hardcoded",
                "jsonType.label": "String",
                "access.token.claim": "true",
            },
        }
    )
    jansen = user_rep(edited, "dr.jansen")
    jansen["attributes"]["carenet_org"] = ["gp-elders"]
    jansen["realmRoles"] = ["gp", "team-lead"]
    del jansen["attributes"]["carenet_tenant"]
    service_account_rep(edited, "carenet-insurer")["attributes"]["carenet_tenant"] = ["cg-noord"]
    edited["roles"]["realm"].append(
        {"name": "team-lead", "composite": True, "composites": {"realm": ["auditor"]}}
    )
    client_rep(edited, "carenet-kis")["directAccessGrantsEnabled"] = False
    client_rep(edited, "svc-outcomes")["directAccessGrantsEnabled"] = True
    realm_file = tmp_path / "edited-realm.json"
    realm_file.write_text(json.dumps(edited))

    with LocalIdp.start(keys_file=idp_keys_file, realm_file=realm_file) as idp:
        insurer_token = idp.client_token("carenet-insurer")
        assert_token_matches(
            edited, insurer_token, insurer, service_account_rep(edited, "carenet-insurer")
        )
        assert unverified(insurer_token)["aud"] == [REFERRAL]
        assert unverified(insurer_token)["carenet_patient"] == "p-hardcoded"
        assert unverified(insurer_token)["carenet_tenant"] == "cg-noord"

        jansen_token = idp.password_token("svc-outcomes", "dr.jansen")
        assert_token_matches(edited, jansen_token, client_rep(edited, "svc-outcomes"), jansen)
        assert unverified(jansen_token)["carenet_org"] == "gp-elders"
        assert "carenet_tenant" not in unverified(jansen_token)
        assert set(unverified(jansen_token)["realm_access"]["roles"]) == {
            "gp",
            "team-lead",
            "auditor",
        }
        with pytest.raises(KeycloakError):
            idp.password_token("carenet-kis", "dr.jansen")
        # same keys file, same signing key
        assert (
            idp.keycloak_openid("svc-outcomes").certs()
            == local_idp.keycloak_openid("svc-outcomes").certs()
        )


def test_extra_users_can_log_in(idp_keys_file: Path, realm: dict[str, Any]) -> None:
    extra = {
        "username": "test.huisarts",
        "enabled": True,
        "attributes": {"carenet_org": ["gp-test"], "carenet_tenant": ["cg-test"]},
        "realmRoles": ["gp", "auditor"],
        "credentials": [{"type": "password", "value": "s3cret", "temporary": False}],
    }
    with LocalIdp.start(keys_file=idp_keys_file, extra_users=[extra]) as idp:
        claims = unverified(idp.password_token("carenet-kis", "test.huisarts", "s3cret"))
        assert claims["carenet_org"] == "gp-test"
        assert claims["carenet_tenant"] == "cg-test"
        assert set(claims["realm_access"]["roles"]) == {"gp", "auditor"}
        assert claims["preferred_username"] == "test.huisarts"
        # realm users are still there
        assert unverified(idp.password_token("carenet-kis", "dr.smit"))["carenet_org"] == (
            "hosp-catharina"
        )


# ---------------------------------------------------------------- python-keycloak


def test_well_known(local_idp: LocalIdp) -> None:
    doc = local_idp.keycloak_openid("carenet-kis").well_known()
    assert doc["issuer"] == local_idp.issuer
    assert doc["issuer"].endswith(f"/realms/{REALM_NAME}")
    assert doc["token_endpoint"] == local_idp.token_url
    assert doc["token_endpoint"].endswith(f"/realms/{REALM_NAME}/protocol/openid-connect/token")
    assert doc["jwks_uri"] == local_idp.jwks_url
    assert doc["jwks_uri"].endswith(f"/realms/{REALM_NAME}/protocol/openid-connect/certs")
    assert {"client_credentials", "password"} <= set(doc["grant_types_supported"])


def test_certs_publish_one_sig_and_one_enc_key(local_idp: LocalIdp) -> None:
    keys = local_idp.keycloak_openid("carenet-kis").certs()["keys"]
    assert sorted(k["use"] for k in keys) == ["enc", "sig"]
    sig = next(k for k in keys if k["use"] == "sig")
    enc = next(k for k in keys if k["use"] == "enc")
    assert (sig["kty"], sig["alg"]) == ("RSA", "RS256")
    assert (enc["kty"], enc["alg"]) == ("RSA", "RSA-OAEP")
    assert sig["kid"] != enc["kid"]
    assert all("d" not in k and "p" not in k for k in keys)
    # the private file holds the same keys
    private = {k["kid"]: k for k in local_idp.private_jwks()["keys"]}
    assert set(private) == {sig["kid"], enc["kid"]}
    assert private[sig["kid"]]["n"] == sig["n"]
    assert private[sig["kid"]]["use"] == "sig"
    assert "d" in private[sig["kid"]]
    assert "d" in private[enc["kid"]]


def test_public_key_is_the_signing_key(local_idp: LocalIdp) -> None:
    der = base64.b64decode(local_idp.keycloak_openid("carenet-kis").public_key())
    public = load_der_public_key(der)
    assert isinstance(public, rsa.RSAPublicKey)
    sig = local_idp.private_key("sig")
    n = int.from_bytes(base64.urlsafe_b64decode(sig["n"] + "=" * (-len(sig["n"]) % 4)), "big")
    assert public.public_numbers().n == n


def test_python_keycloak_tokens_and_decode(local_idp: LocalIdp) -> None:
    kis = local_idp.keycloak_openid("carenet-kis")
    service = kis.token(grant_type="client_credentials")
    assert service["token_type"] == "Bearer"
    assert service["expires_in"] == 300
    assert "openid" in service["scope"].split()
    user = kis.token("poh.bakker", "demo")
    decoded = kis.decode_token(user["access_token"])
    assert decoded["preferred_username"] == "poh.bakker"
    assert decoded["realm_access"]["roles"] == ["practice-nurse"]
    assert decoded["iss"] == local_idp.issuer
    assert decoded["exp"] - decoded["iat"] == 300
    assert set(decoded["scope"].split()) >= {"openid"}


def test_username_is_case_insensitive_and_email_works(local_idp: LocalIdp) -> None:
    by_name = unverified(local_idp.password_token("carenet-kis", "Dr.Jansen"))
    by_mail = unverified(local_idp.password_token("carenet-kis", "dr.jansen@carenet.example"))
    assert by_name["sub"] == by_mail["sub"]
    assert by_name["preferred_username"] == "dr.jansen"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("dr.jansen", "wrong"),
        ("dr.jansen", ""),
        ("nobody", "demo"),
        ("service-account-carenet-kis", "demo"),
    ],
)
def test_bad_user_credentials_are_refused(
    local_idp: LocalIdp, username: str, password: str
) -> None:
    with pytest.raises(KeycloakError):
        local_idp.password_token("carenet-kis", username, password)


@pytest.mark.parametrize("client_id", ["carenet-kis", "svc-referral", "no-such-client"])
def test_wrong_client_secret_is_refused(local_idp: LocalIdp, client_id: str) -> None:
    with pytest.raises(KeycloakError):
        local_idp.client_token(client_id, secret="wrong-secret")
    with pytest.raises(KeycloakError):
        KeycloakOpenID(
            server_url=local_idp.server_url, realm_name=REALM_NAME, client_id=client_id
        ).token(grant_type="client_credentials")


# ---------------------------------------------------------------- PyJWT verification


def test_pyjwt_verifies_with_jwks(local_idp: LocalIdp) -> None:
    token = local_idp.client_token("svc-careplan")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["typ"] == "JWT"
    assert header["kid"] == local_idp.private_key("sig")["kid"]

    signing_key = jwt.PyJWKClient(local_idp.jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256"],
        audience=REFERRAL,
        issuer=local_idp.issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    assert claims["azp"] == "svc-careplan"
    assert claims["realm_access"]["roles"] == ["service"]
    assert 0 < claims["exp"] - time.time() <= 300

    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(
            token, signing_key.key, algorithms=["RS256"], audience=OUTCOMES, issuer=local_idp.issuer
        )
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256"],
            audience=REFERRAL,
            issuer=local_idp.issuer + "x",
        )


def test_tokens_forged_with_the_enc_key_are_not_accepted_by_sig_key_selection(
    local_idp: LocalIdp,
) -> None:
    claims = unverified(local_idp.client_token("svc-referral"))
    enc = local_idp.private_key("enc")
    forged = jwt.encode(
        {**claims, "realm_access": {"roles": ["care-group-admin"]}},
        jwt.PyJWK(enc, algorithm="RS256").key,
        algorithm="RS256",
        headers={"kid": enc["kid"]},
    )
    # PyJWKClient only offers keys with use "sig" (or no use) for signature checks
    with pytest.raises(jwt.PyJWKClientError):
        jwt.PyJWKClient(local_idp.jwks_url).get_signing_key_from_jwt(forged)
