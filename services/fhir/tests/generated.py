"""Generated data for the round trip, written through the real gRPC APIs by the people who
write it in practice: a provider publishes offers (the care group's administrator lists
them), a GP registers patients, records their consents (given, for a later period,
withdrawn), makes their care plans and refers them, the provider moves each referral to
its state with feedback, the GP ingests measurements (one of them corrected), and the care
group's administrator computes a stratified outcomes report, the insurer one of its contract.

Everything varies with one seed (``CARENET_FHIR_SEED``, a fixed default so ``make test`` is
deterministic); the seed is printed so a failing run can be replayed.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc
import jwt
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from carenet.careplan.v1 import careplan_pb2 as cp
from carenet.careplan.v1 import careplan_service_pb2 as cp_rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as cp_grpc
from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from carenet.outcomes.v1 import outcomes_pb2 as oc
from carenet.outcomes.v1 import outcomes_service_pb2 as oc_rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as oc_grpc
from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rf_grpc

DEFAULT_SEED = 20261207
GP = ("carenet-kis", "dr.jansen")  # gp-de-linde
PROVIDER = ("carenet-kis", "coach.degroot")  # gli-beweegfit
ADMIN = ("carenet-kis", "admin.zuidoost")  # the care group's administrator
AUDITOR = ("carenet-kis", "auditor.dekker")
INSURER = ("carenet-insurer", "")  # the insurer's reporting client (client credentials)
OTHER_GP = ("carenet-kis", "dr.devries")  # gp-het-anker: no relationship with the patients
KIS_SYSTEM = ("carenet-kis", "")  # the practice's KIS as itself (a delegate)
NOW = dt.datetime.now(dt.UTC)

Token = Callable[[str, str], str]


def seed() -> int:
    value = int(os.environ.get("CARENET_FHIR_SEED", DEFAULT_SEED))
    print(f"round trip data: CARENET_FHIR_SEED={value}")  # to replay a run
    return value


def ts(when: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def bsn(rng: random.Random) -> str:
    """A nine-digit number passing the 11-test (a test number, issued to nobody)."""
    while True:
        digits = [rng.randrange(10) for _ in range(8)]
        total = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True))
        last = total % 11
        if last < 10 and digits[0] != 0:
            return "".join(map(str, digits)) + str(last)


@dataclass
class World:
    """What was written: names to read back over gRPC and FHIR."""

    seed: int
    patients: list[str] = field(default_factory=list)
    offers: list[str] = field(default_factory=list)
    referrals: dict[str, list[str]] = field(default_factory=dict)
    report: str = ""
    #: a report of the insurer's contract, computed by the insurer
    contract_report: str = ""
    #: the referral statuses reached (ReferralStatus numbers)
    statuses: set[int] = field(default_factory=set)


class Writer:
    def __init__(self, token: Token, target: Callable[[str], str], rng: random.Random) -> None:
        self.token = token
        self.rng = rng
        self.identity = id_grpc.IdentityServiceStub(grpc.insecure_channel(target("identity")))
        self.referral = rf_grpc.ReferralServiceStub(grpc.insecure_channel(target("referral")))
        self.careplan = cp_grpc.CarePlanServiceStub(grpc.insecure_channel(target("careplan")))
        self.outcomes = oc_grpc.OutcomesServiceStub(grpc.insecure_channel(target("outcomes")))

    def md(self, who: tuple[str, str]) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.token(*who)}"),)

    # ------------------------------------------------------------------ offers

    def offer(self, index: int) -> str:
        rng = self.rng
        days = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
        schedules = [
            rf.Schedule(
                freq="WEEKLY",
                interval=1,
                byday=sorted(rng.sample(days, rng.randint(1, 3)), key=days.index),
                opens_at=f"{rng.randint(8, 12):02d}:{rng.choice(['00', '30'])}",
                closes_at=f"{rng.randint(13, 20):02d}:00",
                description=rng.choice(["", "niet in de schoolvakanties", "op afspraak"]),
            )
            for _ in range(rng.randint(1, 2))
        ]
        costs = [
            rf.CostOption(
                funding=funding,
                amount_cents=rng.choice([0, 2500, 12000]),
                currency="EUR",
                description=rng.choice(["", "per blok van 8 weken"]),
            )
            for funding in rng.sample(
                [
                    rf.FUNDING_BASIC_INSURANCE,
                    rf.FUNDING_MUNICIPALITY,
                    rf.FUNDING_OWN_PAYMENT,
                    rf.FUNDING_SUPPLEMENTARY_INSURANCE,
                ],
                rng.randint(1, 2),
            )
        ]
        offer = rf.Offer(
            display_name=f"Gegenereerd aanbod {self.world_seed % 1000}-{index}",
            description=rng.choice(["Samen bewegen in de wijk", "Leefstijlbegeleiding in groep"]),
            category=rng.choice(
                [
                    rf.OFFER_CATEGORY_GLI,
                    rf.OFFER_CATEGORY_PHYSICAL_ACTIVITY,
                    rf.OFFER_CATEGORY_NUTRITION,
                    rf.OFFER_CATEGORY_PEER_SUPPORT,
                ]
            ),
            target_conditions=rng.sample(["T90", "K86", "T82", "R95"], rng.randint(0, 2)),
            service_area=rf.ServiceArea(municipality_codes=["GM0772"]),
            schedules=schedules,
            languages=rng.sample(["nl", "en", "tr", "ar"], rng.randint(1, 3)),
            application_process=rng.choice(["", "Verwijzing door de huisarts"]),
            contact=rf.Contact(
                name="Balie",
                email=rng.choice(["", f"info{index}@beweegfit.example"]),
                phone=rng.choice(["", "040-1234567"]),
                url=rng.choice(["", "https://beweegfit.example/aanbod"]),
            ),
            cost_options=costs,
            recognition=rf.Recognition(
                level=rng.choice(
                    [
                        rf.RECOGNITION_LEVEL_UNSPECIFIED,
                        rf.RECOGNITION_LEVEL_WELL_DESCRIBED,
                        rf.RECOGNITION_LEVEL_EFFECTIVE_STRONG_EVIDENCE,
                    ]
                ),
                valid_until=ts(NOW + dt.timedelta(days=365)),
            ),
            capacity=rf.Capacity(
                status=rf.CAPACITY_STATUS_CAPACITY,
                total_places=200,
                notes=rng.choice(["", "start elke maand"]),
            ),
            eligibility_description=rng.choice(["", "Vanaf 18 jaar met overgewicht"]),
        )
        created = self.referral.CreateOffer(
            rf_rpc.CreateOfferRequest(
                offer=offer, request_id=f"gen-offer-{self.world_seed}-{index}"
            ),
            metadata=self.md(PROVIDER),
        )
        self.referral.ProposeOffer(
            rf_rpc.ProposeOfferRequest(name=created.name), metadata=self.md(PROVIDER)
        )
        self.referral.PublishOffer(
            rf_rpc.PublishOfferRequest(name=created.name), metadata=self.md(ADMIN)
        )
        return str(created.name)

    world_seed = 0

    # ------------------------------------------------------------------ patients, consents

    def patient(self, index: int) -> str:
        """A patient the GP registers (identity chooses the id; the practice coordinates)."""
        registered = self.identity.RegisterPatient(
            id_rpc.RegisterPatientRequest(
                bsn=bsn(self.rng), request_id=f"gen-{self.world_seed}-patient-{index}"
            ),
            metadata=self.md(GP),
        )
        return str(registered.name).removeprefix("patients/")

    def consents(self, patient_id: str) -> None:
        """The consent the provider needs for the referrals, and more: for a period that
        begins later, one that ends, one by organisation, and withdrawn ones."""
        rng = self.rng
        parent = f"patients/{patient_id}"
        kinds = [
            id_pb.ORGANISATION_TYPE_HOSPITAL,
            id_pb.ORGANISATION_TYPE_MUNICIPALITY,
            id_pb.ORGANISATION_TYPE_LIFESTYLE_PROVIDER,
        ]
        wanted = [
            id_pb.Consent(
                record_holder=id_pb.OrganisationSelector(
                    category=id_pb.ORGANISATION_TYPE_GP_PRACTICE
                ),
                data_category=id_pb.DATA_CATEGORY_REFERRAL,
                requester=id_pb.OrganisationSelector(
                    category=id_pb.ORGANISATION_TYPE_LIFESTYLE_PROVIDER
                ),
                start_time=ts(NOW - dt.timedelta(days=30)),
            )
        ]
        for _ in range(rng.randint(2, 4)):
            start = NOW + dt.timedelta(days=rng.choice([-60, -5, 10, 40]))
            end = start + dt.timedelta(days=rng.choice([0, 90, 365]))
            requester = (
                id_pb.OrganisationSelector(
                    organisation=rng.choice(
                        ["organisations/hosp-catharina", "organisations/gm-eindhoven"]
                    )
                )
                if rng.random() < 0.4
                else id_pb.OrganisationSelector(category=rng.choice(kinds))
            )
            holder = (
                id_pb.OrganisationSelector(organisation="organisations/gp-de-linde")
                if rng.random() < 0.5
                else id_pb.OrganisationSelector(category=id_pb.ORGANISATION_TYPE_GP_PRACTICE)
            )
            wanted.append(
                id_pb.Consent(
                    record_holder=holder,
                    data_category=rng.choice(
                        [
                            id_pb.DATA_CATEGORY_CARE_PLAN,
                            id_pb.DATA_CATEGORY_MEASUREMENTS,
                            id_pb.DATA_CATEGORY_REFERRAL,
                        ]
                    ),
                    requester=requester,
                    start_time=ts(start),
                    end_time=ts(end) if end > start else None,
                )
            )
        for index, consent in enumerate(wanted):
            created = self.identity.CreateConsent(
                id_rpc.CreateConsentRequest(
                    parent=parent, consent=consent, request_id=f"gen-{patient_id}-consent-{index}"
                ),
                metadata=self.md(GP),
            )
            if index and rng.random() < 0.4:
                self.identity.WithdrawConsent(
                    id_rpc.WithdrawConsentRequest(name=created.name), metadata=self.md(GP)
                )

    # ------------------------------------------------------------------ referrals

    PATHS: dict[int, list[int]] = {
        rf.REFERRAL_STATUS_DRAFT: [],
        rf.REFERRAL_STATUS_REQUESTED: [],
        rf.REFERRAL_STATUS_ACCEPTED: [rf.REFERRAL_STATUS_ACCEPTED],
        rf.REFERRAL_STATUS_REJECTED: [rf.REFERRAL_STATUS_REJECTED],
        rf.REFERRAL_STATUS_CANCELLED: [rf.REFERRAL_STATUS_ACCEPTED, rf.REFERRAL_STATUS_CANCELLED],
        rf.REFERRAL_STATUS_IN_PROGRESS: [
            rf.REFERRAL_STATUS_ACCEPTED,
            rf.REFERRAL_STATUS_IN_PROGRESS,
        ],
        rf.REFERRAL_STATUS_ON_HOLD: [rf.REFERRAL_STATUS_ACCEPTED, rf.REFERRAL_STATUS_ON_HOLD],
        rf.REFERRAL_STATUS_FAILED: [
            rf.REFERRAL_STATUS_ACCEPTED,
            rf.REFERRAL_STATUS_IN_PROGRESS,
            rf.REFERRAL_STATUS_FAILED,
        ],
        rf.REFERRAL_STATUS_COMPLETED: [
            rf.REFERRAL_STATUS_ACCEPTED,
            rf.REFERRAL_STATUS_IN_PROGRESS,
            rf.REFERRAL_STATUS_COMPLETED,
        ],
        rf.REFERRAL_STATUS_ENTERED_IN_ERROR: [rf.REFERRAL_STATUS_ENTERED_IN_ERROR],
    }

    def outcome(self) -> rf.ReferralOutcome:
        rng = self.rng
        planned = rng.choice([0, 8, 12])
        return rf.ReferralOutcome(
            attendance=rng.choice(
                [
                    rf.ATTENDANCE_UNSPECIFIED,
                    rf.ATTENDANCE_NONE,
                    rf.ATTENDANCE_PARTIAL,
                    rf.ATTENDANCE_FULL,
                ]
            ),
            sessions_planned=planned,
            sessions_attended=rng.randint(0, planned),
            result_summary=rng.choice(["", "Doelen grotendeels gehaald", "Gestopt na 3 weken"]),
            enrolment=rng.choice([rf.ENROLMENT_UNSPECIFIED, rf.ENROLMENT_ENROLLED]),
            measurements=[
                rf.Measurement(code="WEIGHT", value=round(rng.uniform(60, 120), 1), unit="kg")
            ]
            if rng.random() < 0.5
            else [],
        )

    def refer(self, patient_id: str, offer: str, status: int, index: int) -> str:
        rng = self.rng
        created = self.referral.CreateReferral(
            rf_rpc.CreateReferralRequest(
                parent=f"patients/{patient_id}",
                referral=rf.Referral(
                    offer=offer,
                    reason=rng.choice(["DM2, overgewicht", "Meer bewegen", "Eenzaamheid"]),
                    draft=status == rf.REFERRAL_STATUS_DRAFT,
                    profile=rf.PatientProfile(
                        conditions=["T90"],
                        age=rng.randint(30, 80),
                        bmi=round(rng.uniform(25, 38), 1),
                        risk_factors=["smoking"],
                        postcode="5611",
                        municipality_code="GM0772",
                        languages=["nl"],
                    ),
                ),
                request_id=f"gen-{patient_id}-referral-{index}",
            ),
            metadata=self.md(GP),
        )
        name = str(created.name)
        for step in self.PATHS[status]:
            by_gp = step == rf.REFERRAL_STATUS_ENTERED_IN_ERROR or (
                step == rf.REFERRAL_STATUS_CANCELLED and rng.random() < 0.5
            )
            reason = ""
            business = rf.BUSINESS_STATUS_UNSPECIFIED
            if step in (
                rf.REFERRAL_STATUS_REJECTED,
                rf.REFERRAL_STATUS_CANCELLED,
                rf.REFERRAL_STATUS_ON_HOLD,
                rf.REFERRAL_STATUS_FAILED,
            ):
                reason = rng.choice(["Patiënt niet bereikt", "Past niet", "Op verzoek"])
                if not by_gp and rng.random() < 0.6:
                    business = rng.choice(
                        [
                            rf.BUSINESS_STATUS_COULD_NOT_CONTACT,
                            rf.BUSINESS_STATUS_NOT_ELIGIBLE,
                            rf.BUSINESS_STATUS_NO_LONGER_INTERESTED,
                        ]
                    )
            outcome = (
                self.outcome()
                if step in (rf.REFERRAL_STATUS_COMPLETED, rf.REFERRAL_STATUS_FAILED)
                else None
            )
            self.referral.TransitionReferral(
                rf_rpc.TransitionReferralRequest(
                    name=name,
                    status=rf.ReferralStatus.ValueType(step),
                    reason=reason,
                    business_status=business,
                    outcome=outcome,
                ),
                metadata=self.md(GP if by_gp else PROVIDER),
            )
        if (
            status in (rf.REFERRAL_STATUS_ACCEPTED, rf.REFERRAL_STATUS_IN_PROGRESS)
            and rng.random() < 0.5
        ):
            self.referral.RecordReferralOutcome(
                rf_rpc.RecordReferralOutcomeRequest(name=name, outcome=self.outcome()),
                metadata=self.md(PROVIDER),
            )
        return name

    # ------------------------------------------------------------------ care plans

    def care_plan(self, patient_id: str, referrals: list[str]) -> None:
        rng = self.rng
        goals = []
        for g in range(rng.randint(1, 4)):
            target = cp.GoalTarget()
            shape = rng.choice(["none", "low", "high", "range", "due"])
            if shape != "none":
                target.measure = rng.choice(["gewicht", "HbA1c", "stappen per dag"])
                target.unit = rng.choice(["", "kg", "mmol/mol"])
            if shape in ("low", "range"):
                target.low = float(rng.randint(1, 50))
            if shape in ("high", "range"):
                target.high = float(rng.randint(60, 120))
            if shape != "none" and rng.random() < 0.6:
                target.due_time.CopyFrom(ts(NOW + dt.timedelta(days=rng.randint(30, 300))))
            goals.append(
                cp.Goal(
                    id=f"goal-{g}",
                    description=rng.choice(["Elke dag wandelen", "Afvallen", "Stoppen met roken"]),
                    target=target,
                    lifecycle_status=rng.choice(list(cp.GoalLifecycleStatus.values())[1:]),
                    achievement_status=rng.choice(list(cp.GoalAchievementStatus.values())),
                    owner=rng.choice([f"patients/{patient_id}", "organisations/gp-de-linde"]),
                    notes=rng.choice(["", "Met de POH besproken"]),
                )
            )
        goal_ids = [g.id for g in goals]
        actions = [
            cp.Action(
                id=f"action-{a}",
                description=rng.choice(["Consult POH", "Thuisarts.nl module", "Medicatiereview"]),
                kind=rng.choice(
                    [
                        cp.ACTION_KIND_CONSULT,
                        cp.ACTION_KIND_EHEALTH_MODULE,
                        cp.ACTION_KIND_SELF_CARE,
                        cp.ACTION_KIND_MEDICATION_REVIEW,
                    ]
                ),
                status=rng.choice(list(cp.ActivityStatus.values())[1:]),
                responsible_organisation="organisations/gp-de-linde",
                schedule=rng.choice(["", "elke 3 maanden"]),
                goals=rng.sample(goal_ids, rng.randint(0, len(goal_ids))),
            )
            for a in range(rng.randint(0, 3))
        ]
        for r, name in enumerate(rng.sample(referrals, rng.randint(1, len(referrals)))):
            actions.append(
                cp.Action(
                    id=f"referral-{r}",
                    description="Verwijzing",
                    kind=cp.ACTION_KIND_REFERRAL,
                    responsible_organisation="organisations/gli-beweegfit",
                    referral=name,
                )
            )
        rng.shuffle(actions)
        plan = cp.CarePlan(
            status=rng.choice([cp.CARE_PLAN_STATUS_DRAFT, cp.CARE_PLAN_STATUS_ACTIVE]),
            what_matters=rng.sample(
                ["Weer fietsen met de kleinkinderen", "Zelfstandig blijven wonen", "Minder pijn"],
                rng.randint(0, 2),
            ),
            conditions=[
                cp.Condition(code=code, system=system, display=display)
                for code, system, display in rng.sample(
                    [
                        ("T90", "ICPC-1", "Diabetes mellitus type 2"),
                        ("K86", "ICPC-1", "Hypertensie zonder orgaanbeschadiging"),
                        ("", "", "Eenzaamheid"),
                        ("44054006", "SNOMED", "Diabetes mellitus type 2"),
                    ],
                    rng.randint(0, 3),
                )
            ],
            goals=goals,
            actions=actions,
            evaluations=[
                cp.EvaluationMoment(
                    id=f"evaluation-{e}",
                    review_time=ts(NOW + dt.timedelta(days=rng.randint(-100, 100))),
                    outcome=rng.choice(["", "Doelen bijgesteld"]),
                    organisation="organisations/gp-de-linde",
                )
                for e in range(rng.randint(0, 2))
            ],
            consult_preparation=cp.ConsultPreparation(
                topics=rng.sample(["slapen", "voeding", "werk"], rng.randint(0, 2)),
                questions=rng.sample(["Mag ik weer sporten?"], rng.randint(0, 1)),
                agenda=rng.sample(["bloeddruk", "voetcontrole"], rng.randint(0, 2)),
            ),
        )
        self.careplan.CreateCarePlan(
            cp_rpc.CreateCarePlanRequest(parent=f"patients/{patient_id}", care_plan=plan),
            metadata=self.md(GP),
        )

    # ------------------------------------------------------------------ the access log

    def other_reads(self, patient_id: str) -> None:
        """Reads the access log records otherwise: one refused (another practice's GP) and
        one by the practice's KIS system acting for its GP (the responsible person)."""
        plan = cp_rpc.GetCarePlanRequest(name=f"patients/{patient_id}/carePlan")
        with pytest.raises(grpc.RpcError) as refused:
            self.careplan.GetCarePlan(plan, metadata=self.md(OTHER_GP))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, refused.value
        person = jwt.decode(self.token(*GP), options={"verify_signature": False})["sub"]
        self.careplan.GetCarePlan(
            plan, metadata=(*self.md(KIS_SYSTEM), ("x-carenet-on-behalf-of", person))
        )

    # ------------------------------------------------------------------ measurements, report

    def measurements(self, patient_ids: list[str]) -> None:
        rng = self.rng
        table = self.outcomes.ListMeasurementCodes(
            oc_rpc.ListMeasurementCodesRequest(), metadata=self.md(GP)
        ).codes
        rows = []
        for patient_id in patient_ids:
            self.outcomes.CreateEnrolment(
                oc_rpc.CreateEnrolmentRequest(
                    parent=f"patients/{patient_id}",
                    enrolment=oc.Enrolment(
                        programme=rng.choice([oc.PROGRAMME_DM2, oc.PROGRAMME_CVRM]),
                        practice="organisations/gp-de-linde",
                        practice_agb="01012345",
                        start_time=ts(NOW - dt.timedelta(days=400)),
                        birth_year=rng.randint(1940, 1990),
                        sex=rng.choice([oc.SEX_FEMALE, oc.SEX_MALE]),
                    ),
                ),
                metadata=self.md(GP),
            )
            for m in range(rng.randint(2, 6)):
                code = rng.choice(table)
                rows.append(
                    oc_rpc.MeasurementRow(
                        patient=f"patients/{patient_id}",
                        code=code.code,
                        value=min(
                            max(
                                round(rng.uniform(code.min_value, code.max_value), 1),
                                code.min_value,
                            ),
                            code.max_value,
                        ),
                        unit=code.unit,
                        measure_time=ts(NOW - dt.timedelta(days=rng.randint(1, 300))),
                        source=oc.MeasurementSource(
                            kind=oc.SOURCE_KIND_KIS, organisation="organisations/gp-de-linde"
                        ),
                        source_record_id=f"{patient_id}-m{m}",
                    )
                )
        # one corrected value: the same source record again, another value
        first = rows[0]
        corrected = oc_rpc.MeasurementRow()
        corrected.CopyFrom(first)
        limits = next(c for c in table if c.code == first.code)
        corrected.value = limits.min_value if first.value != limits.min_value else limits.max_value
        assert corrected.value != first.value, limits

        def stream(
            batch: list[oc_rpc.MeasurementRow],
        ) -> Iterator[oc_rpc.IngestMeasurementsRequest]:
            yield oc_rpc.IngestMeasurementsRequest(rows=batch)

        for batch in (rows, [corrected]):
            reply = self.outcomes.IngestMeasurements(stream(batch), metadata=self.md(GP))
            assert reply.rejected == 0, reply

    def contract_report(self) -> str:
        """A report of the insurer's own contract, computed by the insurer."""
        contract = self.outcomes.ListContracts(
            oc_rpc.ListContractsRequest(), metadata=self.md(INSURER)
        ).contracts[0]
        chosen = self.rng.sample(
            [oc.STRATIFIER_PRACTICE, oc.STRATIFIER_AGE_BAND, oc.STRATIFIER_SEX],
            self.rng.randint(1, 3),
        )
        report = self.outcomes.ComputeIndicators(
            oc_rpc.ComputeIndicatorsRequest(
                contract=contract.name,
                period_start=contract.period_start,
                period_end=contract.period_end,
                stratifiers=sorted(chosen),
            ),
            metadata=self.md(INSURER),
        )
        return str(report.name)

    def report(self) -> str:
        rng = self.rng
        stratifiers = [oc.STRATIFIER_PRACTICE, oc.STRATIFIER_AGE_BAND, oc.STRATIFIER_SEX]
        chosen = rng.sample(stratifiers, rng.randint(2, 3))
        year = rng.choice([2024, 2025])
        report = self.outcomes.ComputeIndicators(
            oc_rpc.ComputeIndicatorsRequest(
                period_start=ts(dt.datetime(year, 1, 1, tzinfo=dt.UTC)),
                period_end=ts(dt.datetime(year, 12, 31, tzinfo=dt.UTC)),
                stratifiers=sorted(chosen),
            ),
            metadata=self.md(ADMIN),
        )
        return str(report.name)


def generate(token: Token, target: Callable[[str], str], world_seed: int) -> World:
    rng = random.Random(world_seed)
    writer = Writer(token, target, rng)
    writer.world_seed = world_seed
    world = World(world_seed)
    # one open referral per patient and offer: each patient's referrals go to distinct offers
    world.offers = [writer.offer(i) for i in range(5)]
    statuses = list(Writer.PATHS)
    rng.shuffle(statuses)
    for index in range(3):
        patient_id = writer.patient(index)
        world.patients.append(patient_id)
        writer.consents(patient_id)
        # every status once over the patients, plus a few drawn at random
        mine = statuses[index::3] + rng.sample(list(Writer.PATHS), 1)
        offers = rng.sample(world.offers, len(mine))
        names = [
            writer.refer(patient_id, offer, status, r)
            for r, (offer, status) in enumerate(zip(offers, mine, strict=True))
        ]
        world.statuses.update(mine)
        world.referrals[patient_id] = names
        writer.care_plan(patient_id, names)
    writer.measurements(world.patients)
    world.report = writer.report()
    world.contract_report = writer.contract_report()
    writer.other_reads(world.patients[0])
    return world
