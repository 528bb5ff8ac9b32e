"""The facts the table's rows are about, set up once through the public gRPC APIs, the way
the practice, the care-group admin and the operator would.

- **Scenario patients** ``az-<relationship>-<consent>``: registered by the GP of gp-de-linde
  (so the practice has an active coordinating relationship and holds every record: the
  care plan, two referrals, the DM2 enrolment and an HbA1c measurement from its KIS). Each
  requester organisation (gp-het-anker, hosp-catharina, gm-eindhoven, gli-beweegfit) has
  the same care relationship with the patient: none, active, or ended (yesterday). Consent,
  recorded by the practice's GP for the patient, from GP practices (the record holder's
  category) to each requester's category:

  - ``none``: no consent;
  - ``given``: for referral data, the care plan, measurements, the patient record and
    consent data;
  - ``withdrawn``: the same consents, all withdrawn;
  - ``other-m`` / ``other-c``: for measurements only / for the care plan only (a row whose
    consent is ``other`` uses the one that is *not* its data category).

  Every patient also has one consent that counts for nothing in the table (measurements to
  insurers, who never read patient data): the consent RPCs read and withdraw that one.
- **p-0001**, the patient of the patient persona (demo region), with the same records.
- **az-holder-ended**: the practice's own relationship has ended.
- **az-two-holders**: measurements of two record holders, the practice and the hospital
  (which has an active relationship), and a consent from hospitals to GP practices for
  measurements only.
- **p-noord-1**, a patient of the other care group, registered by its GP.

Writes that a row makes are harmless to the other rows (a conflict, an etag or state that is
checked only after authorization, a consent that counts for nothing), or use a patient of
their own (``Facts.scratch_patient``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import jwt
from google.protobuf.timestamp_pb2 import Timestamp

from carenet.careplan.v1 import careplan_pb2 as cp
from carenet.careplan.v1 import careplan_service_pb2 as cp_rpc
from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.outcomes.v1 import outcomes_pb2 as oc
from carenet.outcomes.v1 import outcomes_service_pb2 as oc_rpc
from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from servicekit.auth import Principal
from testkit.fixtures import Tokens

from .personas import FOREIGN, HOME, PERSONAS, PRACTICE, REQUESTER_ORGANISATIONS, Persona
from .servers import Platform

ON_BEHALF_OF = "x-carenet-on-behalf-of"
TIMEOUT = 10.0
# The other care group's admin (a user of the test issuer, no persona of the table).
FOREIGN_ADMIN = Persona("admin.noord", "", "care-group-admin", FOREIGN, "", FOREIGN, "admin.noord")
NOW = dt.datetime.now(dt.UTC)
LONG_AGO = NOW - dt.timedelta(days=60)
YESTERDAY = NOW - dt.timedelta(days=1)

RELATIONSHIPS = ("none", "active", "ended")
CONSENTS = ("none", "given", "withdrawn", "other-m", "other-c")
RELATIONSHIP_KINDS: dict[str, id_pb.CareRelationshipKind.ValueType] = {
    "gp-het-anker": id_pb.CARE_RELATIONSHIP_KIND_TREATING,
    "hosp-catharina": id_pb.CARE_RELATIONSHIP_KIND_TREATING,
    "gm-eindhoven": id_pb.CARE_RELATIONSHIP_KIND_SOCIAL_SUPPORT,
    "gli-beweegfit": id_pb.CARE_RELATIONSHIP_KIND_REFERRED,
}
GIVEN_CATEGORIES = (
    id_pb.DATA_CATEGORY_REFERRAL,
    id_pb.DATA_CATEGORY_CARE_PLAN,
    id_pb.DATA_CATEGORY_MEASUREMENTS,
    id_pb.DATA_CATEGORY_PATIENT_RECORD,
    id_pb.DATA_CATEGORY_CONSENT,
)
CONSENT_CATEGORIES = {
    "none": (),
    "given": GIVEN_CATEGORIES,
    "withdrawn": GIVEN_CATEGORIES,
    "other-m": (id_pb.DATA_CATEGORY_MEASUREMENTS,),
    "other-c": (id_pb.DATA_CATEGORY_CARE_PLAN,),
}
# The two referrals of every patient: to the lifestyle provider's GLI, and to the
# municipality's walking group.
OFFERS = {"gli": "offers/gli-beweegfit-cool", "walk": "offers/gm-eindhoven-wandelgroep"}
OFFER_TARGETS = {"gli": "gli-beweegfit", "walk": "gm-eindhoven"}
# The suffix of the copy of a patient that CreateReferral's rows refer.
REFER_COPY = "-refer"
PROFILE = rf.PatientProfile(
    conditions=["T90"],
    age=58,
    bmi=31.5,
    risk_factors=["dm2-risk"],
    postcode="5612",
    municipality_code="GM0772",
    languages=["nl"],
)
DEMO_BSNS = frozenset({"111222333", "123456782", "999990019"})


def ts(moment: dt.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(moment)
    return out


class BsnSource:
    """Distinct 9-digit numbers that pass the 11-test (test numbers, issued to nobody)."""

    def __init__(self, start: int) -> None:
        self._next = start
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            while True:
                candidate = f"{self._next:09d}"
                self._next += 1
                digits = [int(d) for d in candidate]
                weighted = sum(d * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))
                if (weighted - digits[8]) % 11 == 0 and candidate not in DEMO_BSNS:
                    return candidate


@dataclass
class PatientRecords:
    id: str
    bsn: str = ""
    referrals: dict[str, str] = field(default_factory=dict)  # "gli"/"walk" -> name
    spare_consent: str = ""  # the consent that counts for nothing
    relationships: dict[str, str] = field(default_factory=dict)  # organisation -> name

    @property
    def name(self) -> str:
        return f"patients/{self.id}"


class Callers:
    """Metadata (real tokens, and the on-behalf-of header) for each persona."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def token(self, persona: Persona) -> str:
        if persona.client:
            return self.tokens.client(persona.client)
        if persona.is_patient:
            return self.tokens.patient(persona.username)
        return self.tokens.user(persona.username)

    def sub(self, username: str) -> str:
        claims = jwt.decode(self.tokens.user(username), options={"verify_signature": False})
        return str(claims["sub"])

    def metadata(self, persona: Persona | str, acts_for: str | None = None) -> Any:
        p = PERSONAS[persona] if isinstance(persona, str) else persona
        md: list[tuple[str, str]] = [("authorization", f"Bearer {self.token(p)}")]
        person = p.acts_for if acts_for is None else acts_for
        if person:
            md.append((ON_BEHALF_OF, self.sub(person)))
        return tuple(md)


class Facts:
    """Everything the rows refer to, and the means to set up more (scratch patients)."""

    def __init__(self, platform: Platform, callers: Callers) -> None:
        self.platform = platform
        self.callers = callers
        self.identity = platform.identity_stub
        self.referral = platform.referral_stub
        self.careplan = platform.careplan_stub
        self.outcomes = platform.outcomes_stub
        self.bsns = BsnSource(200_000_000)
        self.patients: dict[str, PatientRecords] = {}
        self._scratch = itertools.count(1)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ building blocks

    def md(self, persona: str) -> Any:
        return self.callers.metadata(persona)

    def register(self, patient_id: str, by: str = "gp", bsn: str = "") -> PatientRecords:
        """Registers the patient with the id ``patient_id``, chosen by the care group's admin
        (only the admin chooses ids), then by ``by``, whose practice so records its care
        relationship (coordinating)."""
        records = PatientRecords(patient_id, bsn or self.bsns.take())
        admin = (
            self.callers.metadata(FOREIGN_ADMIN)
            if PERSONAS[by].care_group == FOREIGN
            else self.md("admin")
        )
        for request, metadata in (
            (id_rpc.RegisterPatientRequest(bsn=records.bsn, patient_id=patient_id), admin),
            (id_rpc.RegisterPatientRequest(bsn=records.bsn), self.md(by)),
        ):
            self.identity.RegisterPatient(request, metadata=metadata, timeout=TIMEOUT)
        return records

    def relate(
        self,
        records: PatientRecords,
        organisation: str,
        state: str,
        kind: id_pb.CareRelationshipKind.ValueType = id_pb.CARE_RELATIONSHIP_KIND_TREATING,
    ) -> None:
        """Gives ``organisation`` a care relationship with the patient (created by the
        care-group admin): ``active`` (since 60 days), ``ended`` (yesterday) or ``none``."""
        if state == "none":
            return
        relationship = id_pb.CareRelationship(
            organisation=f"organisations/{organisation}",
            kind=kind,
            start_time=ts(LONG_AGO),
        )
        if state == "ended":
            relationship.end_time.CopyFrom(ts(YESTERDAY))
        created = self.identity.CreateCareRelationship(
            id_rpc.CreateCareRelationshipRequest(
                parent=records.name, care_relationship=relationship
            ),
            metadata=self.md("admin"),
            timeout=TIMEOUT,
        )
        records.relationships[organisation] = created.name

    def consent(
        self,
        records: PatientRecords,
        category: int,
        requester: str,
        *,
        withdraw: bool = False,
        holder: str = "GP_PRACTICE",
    ) -> id_pb.Consent:
        """A consent the practice's GP records for the patient: data of organisations of
        type ``holder`` (GP practices) in ``category`` to organisations of type
        ``requester``. One that opens data to GP practices, the practice's own type, only
        the patient may record (identity.consents): the table's patients have no app
        account, so it is recorded as the patient in the identity process."""
        if requester == "GP_PRACTICE":
            return self._patient_consent(records, category, requester, holder, withdraw)
        created: id_pb.Consent = self.identity.CreateConsent(
            id_rpc.CreateConsentRequest(
                parent=records.name,
                consent=id_pb.Consent(
                    record_holder=id_pb.OrganisationSelector(
                        category=id_pb.OrganisationType.Value(f"ORGANISATION_TYPE_{holder}")
                    ),
                    data_category=category,  # type: ignore[arg-type]
                    requester=id_pb.OrganisationSelector(
                        category=id_pb.OrganisationType.Value(f"ORGANISATION_TYPE_{requester}")
                    ),
                    start_time=ts(LONG_AGO),
                ),
            ),
            metadata=self.md("gp"),
            timeout=TIMEOUT,
        )
        if withdraw:
            self.identity.WithdrawConsent(
                id_rpc.WithdrawConsentRequest(name=created.name),
                metadata=self.md("gp"),
                timeout=TIMEOUT,
            )
        return created

    def _patient_consent(
        self, records: PatientRecords, category: int, requester: str, holder: str, withdraw: bool
    ) -> id_pb.Consent:
        from identity.models import DataCategory, OrganisationType
        from identity.use_cases import consents

        patient = Principal(
            subject=f"patient-of-{records.id}",
            client_id="carenet-patient-app",
            organisation="",
            care_group=f"organisations/{HOME}",
            roles=frozenset({"patient"}),
            patient=records.name,
        )
        deps = self.platform.identity.deps
        consent = consents.create_consent(
            deps,
            patient,
            records.id,
            consents.ConsentInput(
                data_category=DataCategory(
                    _kebab(id_pb.DataCategory.Name(category), "DATA_CATEGORY_")  # type: ignore[arg-type]
                ),
                record_holder_type=OrganisationType(_kebab(holder)),
                requester_type=OrganisationType(_kebab(requester)),
                start_time=LONG_AGO,
            ),
        )
        if withdraw:
            consent = consents.withdraw_consent(deps, patient, records.id, consent.id)
        return id_pb.Consent(name=f"{records.name}/consents/{consent.id}")

    def records_of_practice(self, records: PatientRecords) -> None:
        """What the practice holds: care plan, two referrals, DM2 enrolment, a measurement,
        and the consent that counts for nothing."""
        spare = self.consent(records, id_pb.DATA_CATEGORY_MEASUREMENTS, "INSURER")
        records.spare_consent = spare.name
        self.careplan.CreateCarePlan(
            cp_rpc.CreateCarePlanRequest(
                parent=records.name,
                care_plan=cp.CarePlan(what_matters=["Weer fietsen met de kleinkinderen"]),
            ),
            metadata=self.md("gp"),
            timeout=TIMEOUT,
        )
        for label, offer in OFFERS.items():
            referral = self.referral.CreateReferral(
                rf_rpc.CreateReferralRequest(
                    parent=records.name,
                    referral=rf.Referral(offer=offer, reason="DM2, overgewicht", profile=PROFILE),
                ),
                metadata=self.md("gp"),
                timeout=TIMEOUT,
            )
            records.referrals[label] = referral.name
        self.outcomes.CreateEnrolment(
            enrolment_request(records.id), metadata=self.md("gp"), timeout=TIMEOUT
        )
        result = self.outcomes.IngestMeasurements(
            iter([oc_rpc.IngestMeasurementsRequest(rows=[measurement_row(records.id)])]),
            metadata=self.md("gp"),
            timeout=TIMEOUT,
        )
        assert result.accepted == 1, f"the practice's measurement was not stored: {result}"

    # ------------------------------------------------------------------ the world

    def build(self) -> None:
        self._other_care_group()
        jobs: list[Callable[[], None]] = [
            lambda r=r, c=c: self._scenario(r, c)  # type: ignore[misc]
            for r, c in itertools.product(RELATIONSHIPS, CONSENTS)
        ]
        # CreateReferral's rows write on a copy: another organisation permitted to refer
        # gets a referral of its own, which no other row may find.
        jobs.append(lambda: self._scenario("active", "none", REFER_COPY))
        jobs.append(self._self_patient)
        jobs.append(self._holder_ended)
        jobs.append(self._two_holders)
        with ThreadPoolExecutor(max_workers=4) as pool:
            for future in [pool.submit(job) for job in jobs]:
                future.result()

    def _scenario(self, relationship: str, consent: str, suffix: str = "") -> None:
        records = self.register(f"az-{relationship}-{consent}{suffix}")
        for organisation in REQUESTER_ORGANISATIONS:
            self.relate(records, organisation, relationship, RELATIONSHIP_KINDS[organisation])
        for category, requester in itertools.product(
            CONSENT_CATEGORIES[consent], REQUESTER_ORGANISATIONS.values()
        ):
            self.consent(records, category, requester, withdraw=consent == "withdrawn")
        self.records_of_practice(records)
        with self._lock:
            self.patients[records.id] = records

    def _self_patient(self) -> None:
        # p-0001 is in the demo region: registered by gp-de-linde, related to the hospital
        # and the lifestyle provider, with the demo consents.
        records = PatientRecords("p-0001", "111222333")
        self.records_of_practice(records)
        with self._lock:
            self.patients[records.id] = records

    def _holder_ended(self) -> None:
        records = self.register("az-holder-ended")
        self.records_of_practice(records)
        listed = self.identity.ListCareRelationships(
            id_rpc.ListCareRelationshipsRequest(parent=records.name),
            metadata=self.md("gp"),
            timeout=TIMEOUT,
        )
        own = [r for r in listed.care_relationships if r.organisation.endswith(f"/{PRACTICE}")]
        for relationship in own:
            self.identity.EndCareRelationship(
                id_rpc.EndCareRelationshipRequest(name=relationship.name),
                metadata=self.md("admin"),
                timeout=TIMEOUT,
            )
        with self._lock:
            self.patients[records.id] = records

    def _two_holders(self) -> None:
        """A patient whose measurements have two record holders: the practice's, and one
        the hospital (active relationship) submitted; the patient consented to the
        hospital's measurements reaching GP practices, not the other way round."""
        records = self.register("az-two-holders")
        self.records_of_practice(records)
        self.relate(records, "hosp-catharina", "active")
        self.consent(records, id_pb.DATA_CATEGORY_MEASUREMENTS, "GP_PRACTICE", holder="HOSPITAL")
        row = measurement_row(records.id, "hosp-catharina")
        result = self.outcomes.IngestMeasurements(
            iter([oc_rpc.IngestMeasurementsRequest(rows=[row])]),
            metadata=self.md("specialist"),
            timeout=TIMEOUT,
        )
        assert result.accepted == 1, f"the hospital's measurement was not stored: {result}"
        with self._lock:
            self.patients[records.id] = records

    def _other_care_group(self) -> None:
        """cg-noord: bootstrapped by the operator (identity's CLI command does the same),
        its practice created by its admin, its patient registered by its GP."""
        from identity.models import OrganisationType
        from identity.use_cases import organisations

        organisations.bootstrap_care_group(
            self.platform.identity.deps,
            FOREIGN,
            organisations.OrganisationInput("Zorggroep Noord", OrganisationType.CARE_GROUP),
        )
        self.identity.CreateOrganisation(
            id_rpc.CreateOrganisationRequest(
                organisation_id="gp-noord",
                organisation=id_pb.Organisation(
                    display_name="Praktijk Noord",
                    type=id_pb.ORGANISATION_TYPE_GP_PRACTICE,
                    agb_code="01099999",
                ),
            ),
            metadata=self.callers.metadata(FOREIGN_ADMIN),
            timeout=TIMEOUT,
        )
        self.patients["p-noord-1"] = self.register("p-noord-1", by="foreign-gp")

    # ------------------------------------------------------------------ per-row patients

    def scratch_patient(
        self, relationships: Sequence[tuple[str, str]] = (), *, records: bool = False
    ) -> PatientRecords:
        """A patient of its own for a row whose write would change shared facts: registered
        by the practice, with ``relationships`` (organisation, state)."""
        patient = self.register(f"az-scratch-{next(self._scratch)}")
        for organisation, state in relationships:
            self.relate(
                patient,
                organisation,
                state,
                RELATIONSHIP_KINDS.get(organisation, id_pb.CARE_RELATIONSHIP_KIND_TREATING),
            )
        if records:
            self.records_of_practice(patient)
        return patient


def _kebab(name: str, prefix: str = "") -> str:
    """``DATA_CATEGORY_CARE_PLAN`` -> ``care-plan``: a proto enum name as identity's value."""
    return name.removeprefix(prefix).lower().replace("_", "-")


def enrolment_request(patient_id: str) -> oc_rpc.CreateEnrolmentRequest:
    return oc_rpc.CreateEnrolmentRequest(
        parent=f"patients/{patient_id}",
        enrolment=oc.Enrolment(
            programme=oc.PROGRAMME_DM2,
            practice=f"organisations/{PRACTICE}",
            practice_agb="01012345",
            start_time=ts(dt.datetime(2020, 3, 1, tzinfo=dt.UTC)),
            main_practitioner="kis-user-1",
            birth_year=1958,
            sex=oc.SEX_FEMALE,
        ),
    )


def measurement_row(patient_id: str, organisation: str = PRACTICE) -> oc_rpc.MeasurementRow:
    """An HbA1c measurement of the patient by the practice's KIS (sent again: a duplicate),
    or by the hospital."""
    hospital = organisation != PRACTICE
    return oc_rpc.MeasurementRow(
        patient=f"patients/{patient_id}",
        code="HBA1C",
        value=50.0 if hospital else 52.0,
        unit="mmol/mol",
        measure_time=ts(dt.datetime(2025, 7 if hospital else 6, 1, tzinfo=dt.UTC)),
        source=oc.MeasurementSource(
            kind=oc.SOURCE_KIND_HOSPITAL if hospital else oc.SOURCE_KIND_KIS,
            organisation=f"organisations/{organisation}",
        ),
        source_record_id=f"{'hosp' if hospital else 'kis'}-hba1c-{patient_id}",
    )
