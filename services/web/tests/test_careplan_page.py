"""The care-plan page from the services' answers: careplan and identity stand-ins on a real
gRPC port. The page shows goals, actions, participants and evaluations with names, labels,
targets and dates in the reader's language, escapes what the services give, and offers the
patient their own wording."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from flask.testing import FlaskClient

from carenet.careplan.v1 import careplan_pb2 as cp
from carenet.careplan.v1 import careplan_service_pb2 as cp_rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as cp_grpc
from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from web.app import create_app
from web.config import Settings

MOMENT = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
NURSE = "0b6f1c1e-8a43-4c2b-9d6e-1f2a3b4c5d6e"
ORGANISATIONS = {"gp-de-linde": "Huisartsenpraktijk De Linde", "odd": "O'Brien & <Zn>"}


def _plan() -> cp.CarePlan:
    plan = cp.CarePlan(
        name="patients/p-0001/carePlan",
        patient="patients/p-0001",
        record_holder="organisations/gp-de-linde",
        etag='W/"3"',
        what_matters=["Fietsen met de kleinkinderen"],
        goals=[
            cp.Goal(
                description="Elke dag <wandelen>",
                lifecycle_status=cp.GOAL_LIFECYCLE_STATUS_ACTIVE,
                owner="patients/p-0001",
                target=cp.GoalTarget(measure="minutes walked a day", low=30, unit="min/d"),
            ),
            cp.Goal(
                description="HbA1c omlaag",
                lifecycle_status=cp.GOAL_LIFECYCLE_STATUS_PROPOSED,
                owner="organisations/odd",
                target=cp.GoalTarget(measure="HbA1c", high=53, unit="mmol/mol"),
            ),
        ],
        actions=[
            cp.Action(
                description="Leefstijlprogramma",
                status=cp.ACTIVITY_STATUS_SCHEDULED,
                responsible_organisation="organisations/gp-de-linde",
                responsible_person=NURSE,
                referral_state=cp.LinkedReferralState(feedback_summary="4 van 12 & meer"),
            )
        ],
        participants=[
            cp.Participant(
                organisation="organisations/odd",
                role=cp.PARTICIPANT_ROLE_HOSPITAL,
                persons=[NURSE, "dr. <Smit>"],
            )
        ],
        evaluations=[
            cp.EvaluationMoment(organisation="organisations/odd", outcome="Goed 'gegaan'")
        ],
    )
    plan.update_time.FromDatetime(MOMENT)
    plan.evaluations[0].review_time.FromDatetime(MOMENT)
    plan.consult_preparation.next_consult_time.FromDatetime(MOMENT)
    return plan


class CarePlans(cp_grpc.CarePlanServiceServicer):
    def GetCarePlan(  # noqa: N802
        self, request: cp_rpc.GetCarePlanRequest, context: grpc.ServicerContext
    ) -> cp.CarePlan:
        return _plan()


class Identity(id_grpc.IdentityServiceServicer):
    def GetOrganisation(  # noqa: N802
        self, request: id_rpc.GetOrganisationRequest, context: grpc.ServicerContext
    ) -> id_pb.Organisation:
        org = request.name.rsplit("/", 1)[-1]
        return id_pb.Organisation(name=request.name, display_name=ORGANISATIONS[org])

    def LookupPeople(  # noqa: N802
        self, request: id_rpc.LookupPeopleRequest, context: grpc.ServicerContext
    ) -> id_rpc.LookupPeopleResponse:
        return id_rpc.LookupPeopleResponse(
            people=[
                id_rpc.PersonSummary(user=u, display_name="Petra Bakker & co")
                for u in request.users
                if u == NURSE
            ]
        )


@pytest.fixture
def target() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    cp_grpc.add_CarePlanServiceServicer_to_server(CarePlans(), server)  # type: ignore[abstract]
    id_grpc.add_IdentityServiceServicer_to_server(Identity(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0).wait()


def _client(target: str, tmp_path: Path, lang: str, patient: bool) -> FlaskClient:
    settings = Settings(
        oidc_issuer="http://127.0.0.1:9/realms/carenet",
        oidc_client_secret="s",  # type: ignore[arg-type]
        identity_target=target,
        referral_target="127.0.0.1:9",
        careplan_target=target,
        outcomes_target="127.0.0.1:9",
        secret_key="k" * 32,  # type: ignore[arg-type]
        session_dir=str(tmp_path / "sessions"),
        secure_cookies=False,
    )
    client = create_app(settings).test_client()
    with client.session_transaction() as session:
        session["token"] = {
            "access_token": "a",
            "refresh_token": "r",
            "expires_at": time.time() + 3600,
        }
        session["user"] = {
            "subject": "s",
            "username": "u",
            "name": "Someone",
            "roles": ["patient"] if patient else ["gp"],
            "organisation": "" if patient else "gp-de-linde",
            "care_group": "cg-zuidoost",
            "patient": "patients/p-0001" if patient else "",
        }
        session["lang"] = lang
    return client


def test_the_care_plan_page_in_dutch(target: str, tmp_path: Path) -> None:
    page = _client(target, tmp_path, "nl", patient=False).get("/patienten/p-0001/zorgplan")
    assert page.status_code == 200
    html = page.text
    assert "<title>Zorgplan van patiënt p-0001 - carenet</title>" in html
    assert (
        "Dit zorgplan wordt bijgehouden door Huisartsenpraktijk De Linde."
        " Laatst veranderd: 1 december 2026, 10:30." in html
    )
    assert "<strong>Elke dag &lt;wandelen&gt;</strong>" in html
    assert "Doel: Minuten wandelen per dag: minstens 30 minuten per dag</span>" in html
    assert '<span class="carenet-muted">Doel van de patiënt</span>' in html
    assert "Doel: HbA1c (gemiddelde bloedsuiker): niet meer dan 53 mmol/mol</span>" in html
    assert '<span class="carenet-muted">Doel van O&#39;Brien &amp; &lt;Zn&gt;</span>' in html
    assert "Leefstijlprogramma<br>Terugkoppeling: 4 van 12 &amp; meer</td>" in html
    assert ">Huisartsenpraktijk De Linde (Petra Bakker &amp; co)</td>" in html
    assert 'utrecht-status-badge--neutral">Gepland</span></td>' in html
    assert (
        "<li>O&#39;Brien &amp; &lt;Zn&gt; · Ziekenhuis (Petra Bakker &amp; co, dr. &lt;Smit&gt;)"
        "</li>" in html
    )
    assert "<li>1 december 2026 · O&#39;Brien &amp; &lt;Zn&gt;: Goed &#39;gegaan&#39;</li>" in html
    assert "Het volgende gesprek is op 1 december 2026, 10:30.</p>" in html


def test_the_care_plan_page_in_english_for_the_patient(target: str, tmp_path: Path) -> None:
    page = _client(target, tmp_path, "en", patient=True).get("/zorgplan")
    assert page.status_code == 200
    html = page.text
    assert '<h1 class="utrecht-heading-1">My care plan</h1>' in html
    assert '<span class="carenet-muted">Your own goal</span>' in html
    assert "Goal of O&#39;Brien &amp; &lt;Zn&gt;</span>" in html
    assert 'href="/zorgplan" aria-current="page">My care plan</a>' in html
