"""Settings of the identity service, read once from ``IDENTITY_*`` environment variables."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_")

    grpc_port: int = 50051
    oidc_audience: str = "carenet-identity"
    # Key for the keyed hash under which BSNs are stored and looked up (required).
    bsn_pepper: SecretStr
    # How many hash chains the access log is striped over (1..64); more lets more
    # concurrent Authorize calls commit in parallel.
    access_log_stripes: int = 16
    # The access log's chain keys (identity.access_log): a directory with one file per key,
    # named by its key id, holding >= 32 random bytes in base64 (a mounted Secret). Empty: the
    # chain key is derived from the BSN pepper (key id "bsn-pepper").
    access_log_hmac_keys_dir: str = ""
    # The key id new entries are chained with; required when the directory is set.
    access_log_hmac_key_id: str = ""
    # The Ed25519 private key (PKCS#8 PEM, a mounted Secret) that signs checkpoints, and its id.
    access_log_signing_key_file: str = ""
    access_log_signing_key_id: str = ""
    # Public keys checkpoints may be signed with: a directory of "<key id>.pem" files (the
    # current signing key's public key is always known).
    access_log_public_keys_dir: str = ""
    # Where checkpoints are published: a directory outside the database. Empty: no
    # checkpoints (only for development: removing a stripe's last entries together with its
    # head row then goes unnoticed).
    access_log_checkpoint_dir: str = ""
    # A checkpoint once this process appended that many entries since the last one ...
    access_log_checkpoint_every_entries: int = 10_000
    # ... and at the latest this many seconds after the last one, if the log moved.
    access_log_checkpoint_every_seconds: float = 300.0
    # Between checkpoints, the heads this process saw committed are signed and appended to
    # its head journal in the checkpoint store this often (0: never; see the README).
    access_log_journal_every_seconds: float = 1.0
    # Journal segments a checkpoint superseded are removed once this old (0: kept for ever).
    access_log_journal_keep_seconds: float = 7 * 24 * 3600.0
    # The most entries one VerifyAccessLog call checks; a longer walk goes on by page token.
    access_log_verify_max_entries: int = 200_000
    # The client id of the referral service's account: the only caller whose referral
    # context (the Mitz referral exception) Authorize believes.
    referral_service_client_id: str = "svc-referral"
    # The demo realm export that ``identity seed-demo`` reads the people directory from;
    # empty: infra/keycloak/demo-realm.json of the repository this runs from.
    demo_realm_file: str = ""
    # Keycloak admin access for provisioning organisations' service-account clients, and
    # for ``identity sync-people`` (the people directory a delegate may act for).
    keycloak_admin_url: str = ""
    keycloak_admin_realm: str = "master"
    keycloak_admin_client_id: str = ""
    keycloak_admin_client_secret: SecretStr = SecretStr("")
    keycloak_realm: str = "carenet"
