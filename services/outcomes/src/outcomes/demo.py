"""The demo region of ``make run``: a few hundred enrolled patients of the two demo
practices, measurements from two sources that sometimes disagree (KIS and lab; hospital and
insurer claims for exacerbations), a pay-for-performance contract with the demo insurer
(ins-vgz) and a computed report.

This is operator seeding (like identity's ``seed-demo``): the synthetic patients beyond
p-0001..p-0003 exist only here, so rows are written through the repository rather than
through IngestMeasurements, which would (rightly) have identity refuse unknown patients.
Running it again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from outcomes.contract_terms import ContractIndicatorInput, ContractInput
from outcomes.deps import Deps
from outcomes.models import Programme, Sex, SourceKind, Stratifier
from outcomes.repository import MeasurementTuple
from outcomes.use_cases import contracts, reports
from outcomes.use_cases.enrolments import EnrolmentInput, store_enrolment
from servicekit.principals import care_group_admin

CARE_GROUP = "cg-zuidoost"
INSURER = "ins-vgz"
PRACTICES = [("gp-de-linde", "01012345"), ("gp-het-anker", "01054321")]
LAB = "lab-eindhoven"
HOSPITAL = "hosp-catharina"
CONTRACT_ID = "vgz-zuidoost-2025"
PERIOD_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
PERIOD_END = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PATIENTS = 300
STAMP = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)

ADMIN = care_group_admin(CARE_GROUP, "seed-outcomes", client_id="outcomes-seed")

PRINCIPLES = {
    "scope": "Chain care for DM2, COPD and CVRM in the Zuidoost region",
    "financing_base": "Outcome indicators from agreed sources",
    "financing_goal": "Reward supported self-management that keeps patients well",
    "contract_form": "Bilateral contract care group - insurer, multi-year",
    "duration": "3 years (2025-2027), yearly evaluation",
    "risk_allocation": "Upside only: performance bonus on top of the chain-care fee",
    "chain_partners": "GP practices, Catharina hospital, municipality Eindhoven, BeweegFit",
    "reward_of_professionals": "Bonus shared with practices by their indicator scores",
    "condition_scope": "DM2, COPD, CVRM",
}


def _moment(rng: random.Random) -> dt.datetime:
    return PERIOD_START + dt.timedelta(days=rng.randrange(0, 364), hours=rng.randrange(8, 17))


class _Patient:
    """Collects one demo patient's rows."""

    def __init__(
        self, rng: random.Random, patient: str, practice: str, rows: list[MeasurementTuple]
    ) -> None:
        self.rng = rng
        self.patient = patient
        self.practice = practice
        self.rows = rows
        self.seq = 0

    def add(
        self, code: str, value: float, unit: str, kind: SourceKind, org: str, when: dt.datetime
    ) -> None:
        self.seq += 1
        self.rows.append(
            (
                CARE_GROUP,
                self.patient,
                code,
                value,
                unit,
                when,
                kind.value,
                org,
                f"{self.patient}-{code}-{self.seq}",
                STAMP,
            )
        )

    def maybe(
        self, p: float, code: str, value: float, unit: str, kind: SourceKind = SourceKind.KIS
    ) -> None:
        if self.rng.random() < p:
            org = HOSPITAL if kind is SourceKind.HOSPITAL else self.practice
            self.add(code, value, unit, kind, org, _moment(self.rng))

    def both(self, code: str, value: float, unit: str, disagree: float) -> None:
        """The lab result, and the KIS copy of it that sometimes carries another value."""
        when = _moment(self.rng)
        if self.rng.random() < 0.9:
            self.add(code, value, unit, SourceKind.LAB, LAB, when)
        if self.rng.random() < 0.8:
            kis_value = value + (disagree if self.rng.random() < 0.15 else 0)
            self.add(code, round(kis_value, 1), unit, SourceKind.KIS, self.practice, when)

    def dm2(self) -> None:
        rng = self.rng
        self.both("HBA1C", float(rng.randrange(40, 80)), "mmol/mol", 8)
        self.both("LDL", round(rng.uniform(1.4, 3.6), 1), "mmol/L", 0.6)
        self.both("EGFR", float(rng.randrange(35, 100)), "mL/min/{1.73_m2}", -10)
        self.maybe(0.85, "SBP", float(rng.randrange(115, 165)), "mm[Hg]")
        self.maybe(0.75, "FOOT_EXAM", float(rng.randrange(0, 3)), "{grade}")
        self.maybe(0.6, "FUNDUS_EXAM", 0.0, "{result}", SourceKind.HOSPITAL)

    def copd(self) -> None:
        rng = self.rng
        self.maybe(0.7, "SPIROMETRY", float(rng.randrange(30, 90)), "%")
        self.maybe(0.75, "INHALER_TECHNIQUE", 1.0, "{result}")
        self.maybe(0.9, "SMOKING_STATUS", float(rng.randrange(0, 3)), "{status}")
        self.maybe(0.7, "CCQ", round(rng.uniform(0.5, 4), 1), "{score}")
        self.maybe(0.8, "MRC", float(rng.randrange(1, 6)), "{grade}")
        self.maybe(0.85, "FLU_VACCINATION", 1.0, "{event}")
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
            when = _moment(rng)
            self.add("EXACERBATION", 1.0, "{event}", SourceKind.HOSPITAL, HOSPITAL, when)
            if rng.random() < 0.7:  # claims see most, not all, exacerbations
                self.add("EXACERBATION", 1.0, "{event}", SourceKind.INSURER_CLAIMS, INSURER, when)

    def cvrm(self) -> None:
        rng = self.rng
        self.maybe(0.8, "SMOKING_STATUS", float(rng.randrange(0, 3)), "{status}")
        self.maybe(0.6, "EXERCISE_STATUS", float(rng.randrange(0, 3)), "{status}")
        self.maybe(0.85, "SBP", float(rng.randrange(115, 165)), "mm[Hg]")


def population(
    rng: random.Random,
) -> tuple[list[EnrolmentInput], list[MeasurementTuple]]:
    enrolments: list[EnrolmentInput] = []
    rows: list[MeasurementTuple] = []
    for n in range(1, PATIENTS + 1):
        patient = f"p-{n:04d}"
        if n in (1, 2):
            practice, agb = PRACTICES[0]
        elif n == 3:
            practice, agb = PRACTICES[1]
        else:
            practice, agb = rng.choice(PRACTICES)
        programme = Programme.DM2 if n <= 180 else Programme.COPD if n <= 250 else Programme.CVRM
        enrolments.append(
            EnrolmentInput(
                patient_id=patient,
                programme=programme,
                practice_id=practice,
                practice_agb=agb,
                start_time=dt.datetime(
                    rng.randrange(2015, 2024), rng.randrange(1, 13), 1, tzinfo=dt.UTC
                ),
                main_practitioner=f"kis-user-{practice}",
                birth_year=rng.randrange(1940, 2000),
                sex=rng.choice([Sex.FEMALE, Sex.MALE]),
            )
        )
        one = _Patient(rng, patient, practice, rows)
        {Programme.DM2: one.dm2, Programme.COPD: one.copd, Programme.CVRM: one.cvrm}[programme]()
        one.maybe(0.5, "PAM_LEVEL", float(rng.randrange(1, 5)), "{level}", SourceKind.PATIENT)
    return enrolments, rows


def holders(enrolments: list[EnrolmentInput], rows: list[MeasurementTuple]) -> list[str]:
    """The record holder of each row: the organisation that would have submitted it. Lab
    results reach carenet through the practice that ordered them (the lab is no carenet
    organisation); the hospital and the insurer hold what they send themselves."""
    practice = {e.patient_id: e.practice_id for e in enrolments}
    return [practice[r[1]] if r[6] == SourceKind.LAB.value else r[7] for r in rows]


def contract_input() -> ContractInput:
    def term(
        code: str, sources: list[SourceKind], target: float, floor: float, payment: str
    ) -> ContractIndicatorInput:
        return ContractIndicatorInput(code, 0, sources, target, floor, payment)

    return ContractInput(
        display_name="VGZ - Zorggroep Zuidoost chain care 2025",
        insurer_id=INSURER,
        period_start=PERIOD_START,
        period_end=PERIOD_END,
        indicators=[
            term("DM2_HBA1C_MEASURED", [SourceKind.LAB, SourceKind.KIS], 90, 80, "25000"),
            term("DM2_HBA1C_AT_TARGET", [SourceKind.LAB, SourceKind.KIS], 60, 45, "40000"),
            term("DM2_LDL_BELOW_2_6", [SourceKind.LAB], 60, 45, "20000"),
            term("DM2_FOOT_EXAM_12M", [SourceKind.KIS], 85, 70, "15000"),
            term("COPD_INHALER_TECHNIQUE", [SourceKind.KIS], 75, 60, "15000"),
            term(
                "COPD_EXACERBATIONS",
                [SourceKind.HOSPITAL, SourceKind.INSURER_CLAIMS],
                40,
                70,
                "20000",
            ),
            term("CVRM_ROUTINE_CHECK", [SourceKind.KIS], 80, 65, "10000"),
        ],
        financing={"model": "pay-for-performance", "notes": "Bonus on top of the chain-care fee"},
        principles=dict(PRINCIPLES),
    )


def seed(deps: Deps) -> dict[str, Any]:
    rng = random.Random(772)  # noqa: S311 - demo data, not security
    enrolments, rows = population(rng)
    now = deps.clock()
    with deps.uow() as uow:
        fresh = uow.repo.enrolment(CARE_GROUP, "p-0001", Programme.DM2.value) is None
        if fresh:
            for item in enrolments:
                store_enrolment(uow, CARE_GROUP, item, now)
        inserted = uow.repo.insert_measurements(rows, holders(enrolments, rows))
        contract = uow.repo.contract(CONTRACT_ID)
        uow.commit()
    if contract is None:
        contract = contracts.create_contract(deps, ADMIN, CONTRACT_ID, contract_input())
    with deps.uow() as uow:
        report = uow.repo.latest_report(contract.id, PERIOD_START, PERIOD_END)
    if report is None:
        report = reports.compute_indicators(
            deps,
            ADMIN,
            contract.id,
            PERIOD_START,
            PERIOD_END,
            [Stratifier.PRACTICE, Stratifier.AGE_BAND, Stratifier.SEX],
        )
    return {
        "patients": len(enrolments),
        "measurements_added": len(inserted),
        "contract": f"contracts/{contract.id}",
        "report": f"reports/{report.id}",
    }
