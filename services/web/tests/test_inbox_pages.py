"""The Inbox reads ListReferrals across patients a page at a time (newest first, as the
service orders them): a referral service stand-in on a real gRPC port answers two pages,
and the pages show what each holds, only the referrals addressed to the organisation, and
the link to the older page with the service's page token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from flask.testing import FlaskClient

from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rf_grpc
from web.app import create_app
from web.config import Settings

MINE = "organisations/gli-beweegfit"


def _referral(rid: str, status: int, target: str = MINE) -> rf.Referral:
    return rf.Referral(
        name=f"patients/p-{rid}/referrals/{rid}",
        offer="offers/gli-beweegfit-cool",
        status=status,  # type: ignore[arg-type]
        referrer_organisation="organisations/gp-de-linde",
        target_organisation=target,
    )


PAGES = {
    "": (
        [
            _referral("r3", rf.REFERRAL_STATUS_REQUESTED),
            _referral("r2", rf.REFERRAL_STATUS_COMPLETED),
            _referral("rx", rf.REFERRAL_STATUS_REQUESTED, target="organisations/gm-eindhoven"),
        ],
        "older",
    ),
    "older": ([_referral("r1", rf.REFERRAL_STATUS_ACCEPTED)], ""),
}


class Referrals(rf_grpc.ReferralServiceServicer):
    def __init__(self) -> None:
        self.asked: list[rf_rpc.ListReferralsRequest] = []

    def ListReferrals(  # noqa: N802
        self, request: rf_rpc.ListReferralsRequest, context: grpc.ServicerContext
    ) -> rf_rpc.ListReferralsResponse:
        self.asked.append(request)
        referrals, token = PAGES[request.page_token]
        return rf_rpc.ListReferralsResponse(referrals=referrals, next_page_token=token)


@pytest.fixture
def service() -> Iterator[tuple[str, Referrals]]:
    servicer = Referrals()  # type: ignore[abstract]  # only ListReferrals is asked
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    rf_grpc.add_ReferralServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(0).wait()


@pytest.fixture
def client(service: tuple[str, Referrals], tmp_path: Path) -> Iterator[FlaskClient]:
    target, _ = service
    settings = Settings(
        oidc_issuer="http://127.0.0.1:9/realms/carenet",
        oidc_client_secret="s",  # type: ignore[arg-type]
        identity_target="127.0.0.1:9",
        referral_target=target,
        careplan_target="127.0.0.1:9",
        outcomes_target="127.0.0.1:9",
        secret_key="k" * 32,  # type: ignore[arg-type]
        session_dir=str(tmp_path / "sessions"),
        secure_cookies=False,
    )
    app = create_app(settings)
    test_client = app.test_client()
    with test_client.session_transaction() as session:
        session["token"] = {
            "access_token": "access",
            "refresh_token": "refresh",
            "expires_at": time.time() + 3600,
            "id_token": "id",
        }
        session["user"] = {
            "subject": "s",
            "username": "coach.degroot",
            "name": "Sanne de Groot",
            "roles": ["provider"],
            "organisation": "gli-beweegfit",
            "care_group": "cg-zuidoost",
            "patient": "",
        }
    yield test_client
    app.extensions["carenet_channels"].close()


def test_the_inbox_pages_through_list_referrals_newest_first(
    client: FlaskClient, service: tuple[str, Referrals]
) -> None:
    _, servicer = service
    first = client.get("/inbox")
    assert first.status_code == 200, first.text
    (asked,) = servicer.asked
    assert (asked.parent, asked.page_size, asked.page_token) == ("patients/-", 50, "")
    html = first.text
    # open first, then the closed ones, each in the service's order (newest first)
    assert html.index("/inbox/p-r3/r3") < html.index("/inbox/p-r2/r2")
    assert "/inbox/p-rx/rx" not in html  # not addressed to this organisation
    assert "/inbox/p-r1/r1" not in html  # on the next page
    assert 'href="/inbox?page=older"' in html
    assert "Naar de nieuwste" not in html

    older = client.get("/inbox?page=older")
    assert older.status_code == 200, older.text
    assert servicer.asked[-1].page_token == "older"
    assert "/inbox/p-r1/r1" in older.text
    assert "/inbox/p-r3/r3" not in older.text
    assert "Oudere verwijzingen" not in older.text
    assert 'href="/inbox"' in older.text


def test_the_inbox_is_for_the_organisations_that_receive_referrals(
    client: FlaskClient, service: tuple[str, Referrals]
) -> None:
    with client.session_transaction() as session:
        session["user"] = {**session["user"], "roles": ["gp"]}
    assert client.get("/inbox").status_code == 403
    assert service[1].asked == []
