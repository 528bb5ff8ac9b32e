"""The FHIR column of the authorization table: every row whose RPC has a FHIR read or
search (see FHIR below) played again through the FHIR API (``services/fhir``, in this
process, over the same servers, with the same caller's token and on-behalf-of person); the
HTTP status must be the one of the row's gRPC code and the OperationOutcome must carry the
row's reason. One oracle: the rows, and the fixed code -> status mapping of the FHIR API:

- ``OK`` -> 200; ``INVALID_ARGUMENT`` -> 400; ``PERMISSION_DENIED`` -> 403;
  ``NOT_FOUND`` -> 404; a service's ``UNAUTHENTICATED`` (the token passed the FHIR API's own
  check but does not name that service) -> 401 with ``WWW-Authenticate: Bearer
  error="invalid_token"`` and the row's reason;
- a caller whose token is not issued for the FHIR API (the services' own accounts) -> 401
  before any service is asked.

Where the row says what a ListReferrals caller sees, the Tasks found must be those
referrals. A patient who does not exist and one the caller may not see answer alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

from .calls import Player
from .facts import Facts
from .personas import PERSONAS
from .table import Row, load

# rpc -> FHIR interaction (the first of _paths; GetCarePlan also as the CarePlan and Goal
# searches, GetReferral also as the ServiceRequest read)
FHIR = {
    "identity.GetPatient": "Patient read",
    "identity.GetConsent": "Consent read",
    "identity.ListConsents": "Consent search",
    "identity.ListAccessLogEntries": "AuditEvent search",
    "careplan.GetCarePlan": "CarePlan read",
    "referral.GetReferral": "Task read",
    "referral.ListReferrals": "Task search",
    "outcomes.ListMeasurements": "Observation search",
}
HTTP = {
    "OK": 200,
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
}
FHIR_CLIENTS = frozenset({"carenet-kis", "carenet-patient-app", "carenet-insurer"})
ROWS = [r for r in load() if r.rpc in FHIR]


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: dict[str, Any]
    challenge: str = ""


@pytest.fixture(scope="module")
def fhir_client(facts: Facts) -> Iterator[FlaskClient]:
    from fhir_api.app import create_app
    from fhir_api.config import Settings

    from servicekit.platform_api import Channels

    platform = facts.platform
    idp = facts.callers.tokens.idp
    settings = Settings(
        oidc_issuer=idp.issuer,
        identity_target=platform.targets["identity"],
        referral_target=platform.targets["referral"],
        careplan_target=platform.targets["careplan"],
        outcomes_target=platform.targets["outcomes"],
    )
    channels = Channels(**{name: platform.channels[name] for name in FHIR_SERVICES})
    app = create_app(settings, channels)
    with app.test_client() as client:
        yield client


FHIR_SERVICES = ("identity", "referral", "careplan", "outcomes")


@pytest.fixture(scope="module")
def player(facts: Facts) -> Player:
    return Player(facts)


def _paths(player: Player, row: Row) -> list[str]:
    """The FHIR interactions that ask what the row's RPC asks (each must answer alike)."""
    p = player.patient(row)
    if row.rpc == "identity.GetPatient":
        return [f"Patient/{p.id}"]
    if row.rpc == "identity.GetConsent":
        name = player._consent_name(row)  # the same consent the row reads
        return [f"Consent/{p.id}.{name.rsplit('/', 1)[-1]}"]
    if row.rpc == "careplan.GetCarePlan":
        return [f"CarePlan/{p.id}", f"CarePlan?patient={p.id}", f"Goal?patient=Patient/{p.id}"]
    if row.rpc == "referral.GetReferral":
        name = player.referral_name(row, p)
        inner = f"{p.id}.{name.rsplit('/', 1)[-1]}"
        return [f"Task/{inner}", f"ServiceRequest/{inner}"]
    kind = FHIR[row.rpc].split()[0]
    count = {"referral.ListReferrals": 50, "identity.ListAccessLogEntries": 1}.get(row.rpc, 20)
    return [f"{kind}?patient=Patient/{p.id}&_count={count}"]


def _headers(player: Player, row: Row) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in player.metadata(row):
        if key == "authorization":
            headers["Authorization"] = value
        else:
            headers["X-Carenet-On-Behalf-Of"] = value
    return headers


def _play(client: FlaskClient, player: Player, row: Row, path: str = "") -> Answer:
    path = path or _paths(player, row)[0]
    response = client.get(f"/fhir/R4/{path}", headers=_headers(player, row))
    body: dict[str, Any] = response.get_json(force=True)
    reason = ""
    if body.get("resourceType") == "OperationOutcome":
        details = body["issue"][0].get("details", {})
        reason = details.get("coding", [{}])[0].get("code", "")
    return Answer(response.status_code, reason, body, response.headers.get("WWW-Authenticate", ""))


def _want(row: Row) -> tuple[int, str]:
    persona = PERSONAS[row.caller]
    if persona.client and persona.client not in FHIR_CLIENTS:
        return 401, ""
    if row.expected == "OK":
        return 200, ""
    code, reason = row.expected.split(" ", 1)
    return HTTP[code], reason


def _sees(player: Player, row: Row, body: dict[str, Any]) -> str:
    """The referrals a Task search found, labelled like the table's ``sees``."""
    p = player.patient(row)
    names = [
        f"patients/{p.id}/referrals/{e['resource']['id'].split('.', 1)[1]}"
        for e in body.get("entry", [])
        if e["search"]["mode"] == "match"
    ]
    return player._labels(p, names)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_the_row_holds_through_fhir(fhir_client: FlaskClient, player: Player, row: Row) -> None:
    status, reason = _want(row)
    for path in _paths(player, row):
        got = _play(fhir_client, player, row, path)
        where = f"{path.split('/')[0].split('?')[0]} for {row.id} [table line {row.line}]"
        assert got.status == status, f"{where}: HTTP {got.status}, expected {status}: {got.body}"
        if status == 401:
            assert got.challenge.startswith("Bearer"), where
        if status == 401 and not reason:
            continue  # refused by the FHIR API's own token check, before any service
        if status == 401:
            assert 'error="invalid_token"' in got.challenge, where
        assert got.reason == reason, f"{where}: reason {got.reason!r}, expected {reason!r}"
        if status == 200 and row.rpc == "referral.ListReferrals" and row.sees:
            assert _sees(player, row, got.body) == row.sees, where


def _twins() -> list[tuple[Row, Row]]:
    """(nonexistent patient, existing patient the caller may not see) rows expecting the
    same refusal, per RPC and caller."""
    pairs = []
    for row in ROWS:
        if row.patient != "nonexistent" or row.expected == "OK":
            continue
        for other in ROWS:
            if (
                other.rpc == row.rpc
                and other.caller == row.caller
                and other.case == row.case
                and other.patient != "nonexistent"
                and other.expected == row.expected
            ):
                pairs.append((row, other))
                break
    return pairs


TWINS = _twins()


@pytest.mark.parametrize(("absent", "hidden"), TWINS, ids=[a.id for a, _ in TWINS])
def test_a_missing_patient_answers_like_a_hidden_one_through_fhir(
    fhir_client: FlaskClient, player: Player, absent: Row, hidden: Row
) -> None:
    first = _play(fhir_client, player, absent)
    second = _play(fhir_client, player, hidden)
    assert (first.status, first.body) == (second.status, second.body)
